"""What one generation runs with: the internal request's sampling and length with the model's
defaults applied (`params_of`), and the room the context leaves for the answer."""

from __future__ import annotations

from dataclasses import dataclass

from cerebrum.generation.request import Sampling

from ..errors import BadRequest, ContextLengthExceeded
from ..settings import Sampling as Defaults


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length for one generation, after defaults are applied."""

    max_tokens: int | None  # None: the model's default, clipped to the free context
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    stop: tuple[str, ...]
    seed: int | None


def _or(value: object, default: object) -> object:
    return default if value is None else value


def params_of(sampling: Sampling, max_tokens: int | None, stop: tuple[str, ...],
              defaults: Defaults) -> GenerationParams:
    """A request's sampling with the model's defaults where it sent none."""
    return GenerationParams(
        max_tokens=max_tokens, temperature=_or(sampling.temperature, defaults.temperature),
        top_p=_or(sampling.top_p, defaults.top_p), top_k=_or(sampling.top_k, defaults.top_k),
        min_p=_or(sampling.min_p, defaults.min_p),
        repeat_penalty=_or(sampling.repeat_penalty, defaults.repeat_penalty), stop=stop,
        seed=None if sampling.seed is None else sampling.seed % 2**32,  # llama.cpp's: 32 bits
    )  # type: ignore[arg-type]


def completion_budget(prompt_tokens: int, requested: int | None, default: int, n_ctx: int) -> int:
    """max_tokens for a prompt of `prompt_tokens`: never truncate a request silently.

    An explicit max_tokens that does not fit is a 400 naming the numbers; the model's default
    is clipped to the room the context has left.
    """
    if prompt_tokens == 0:
        raise BadRequest("the prompt is empty", param="prompt")
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but the model's context is {n_ctx} tokens; "
            f"shorten it by at least {prompt_tokens - n_ctx + 1} tokens",
            tokens=prompt_tokens, maximum=n_ctx)
    room = n_ctx - prompt_tokens
    if requested is None:
        return min(default, room)
    if requested > room:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {requested}, together "
            f"{prompt_tokens + requested}, over the model's context of {n_ctx} tokens; "
            f"max_tokens can be at most {room}", param="max_tokens")
    return requested
