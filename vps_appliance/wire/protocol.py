"""The backend's side of the OpenAI wire format: the shared request (`cerebrum.openai`) with
this model's sampling defaults applied, tokenize requests, and the context budget."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cerebrum import openai
from cerebrum.openai import Envelope, Kind, Usage, sse
from cerebrum.openai import request as wire
from cerebrum.openai.request import MAX_FIM_STOPS, MAX_STOPS

from ..engine.params import GenerationParams
from ..errors import BadRequest, ContextLengthExceeded
from ..settings import Sampling

__all__ = ["MAX_FIM_STOPS", "CompletionRequest", "Envelope", "Kind", "TokenizeRequest", "Usage",
           "completion_budget", "decode_json", "model_of", "parse_chat", "parse_completion",
           "parse_tokenize", "sse"]

decode_json = openai.decode_json


def model_of(body: Any) -> str | None:
    """The requested model name, validated, before anything else is looked at."""
    return wire.model(wire.json_object(body))


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def params_of(req: openai.Request, defaults: Sampling) -> GenerationParams:
    """The request's sampling with the model's defaults where it sent none."""
    return GenerationParams(
        max_tokens=req.max_tokens, temperature=_or(req.temperature, defaults.temperature),
        top_p=_or(req.top_p, defaults.top_p), top_k=_or(req.top_k, defaults.top_k),
        min_p=_or(req.min_p, defaults.min_p),
        repeat_penalty=_or(req.repeat_penalty, defaults.repeat_penalty), stop=req.stop,
        seed=None if req.seed is None else req.seed % 2**32)  # llama.cpp's seed is 32 bits


def _params(body: dict[str, Any], defaults: Sampling, max_tokens_cap: int,
            max_stops: int = MAX_STOPS) -> GenerationParams:
    """GenerationParams from the sampling fields of a body (the /infill parser's use)."""
    numbers = {key: wire.number(body, key, lo, hi) for key, (lo, hi) in wire.NUMBERS.items()}
    req = openai.Request(kind="completion", model=None, stream=False,
                         max_tokens=wire.max_tokens(body, max_tokens_cap), top_k=wire.top_k(body),
                         seed=wire.seed(body), stop=wire.stop(body, max_stops), **numbers)
    return params_of(req, defaults)


@dataclass(frozen=True)
class CompletionRequest(openai.Request):
    """A validated /v1/chat/completions or /v1/completions request, with the model's
    sampling defaults (`params`); every field of `cerebrum.openai.Request` is on it."""

    defaults: Sampling = dataclasses.field(default_factory=Sampling)

    @property
    def params(self) -> GenerationParams:
        """Sampling and length with the defaults applied."""
        return params_of(self, self.defaults)


@dataclass(frozen=True)
class TokenizeRequest:
    """A validated /v1/tokenize request."""

    model: str | None
    text: str
    add_special: bool


def _backend(req: openai.Request, defaults: Sampling) -> CompletionRequest:
    # The chat templates know no `developer` role: it is OpenAI's new name for `system`.
    messages = tuple({**m, "role": "system"} if m["role"] == "developer" else m
                     for m in req.messages)
    fields = {f.name: getattr(req, f.name) for f in dataclasses.fields(req)}
    return CompletionRequest(**{**fields, "messages": messages}, defaults=defaults)


def parse_chat(body: Any, defaults: Sampling, max_tokens_cap: int) -> CompletionRequest:
    """Validate a chat completion request (fields the backend refuses are a 400)."""
    return _backend(openai.parse("chat", body, max_tokens_cap, "backend"), defaults)


def parse_completion(body: Any, defaults: Sampling, max_tokens_cap: int) -> CompletionRequest:
    """Validate a (legacy) text completion request; with `suffix`, fill in the middle."""
    return _backend(openai.parse("completion", body, max_tokens_cap, "backend"), defaults)


def parse_tokenize(body: Any) -> TokenizeRequest:
    """Validate a tokenize request: {model, text, add_special?}."""
    body = wire.json_object(body)
    text = body.get("text")
    if not isinstance(text, str):
        raise BadRequest("'text' is required: a string", param="text")
    add_special = body.get("add_special", True)
    if not isinstance(add_special, bool):
        raise BadRequest("'add_special' must be a boolean", param="add_special")
    return TokenizeRequest(model=wire.model(body), text=text, add_special=add_special)


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
            f"shorten it by at least {prompt_tokens - n_ctx + 1} tokens")
    room = n_ctx - prompt_tokens
    if requested is None:
        return min(default, room)
    if requested > room:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {requested}, together "
            f"{prompt_tokens + requested}, over the model's context of {n_ctx} tokens; "
            f"max_tokens can be at most {room}", param="max_tokens")
    return requested
