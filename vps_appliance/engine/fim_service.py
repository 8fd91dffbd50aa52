"""Turning a fill-in-the-middle request into prompt tokens and generation controls."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ContextLengthExceeded, NotSupported
from ..settings import ModelSpec
from . import fim
from .decoding.job import Control
from .params import GenerationParams
from .sampling import SamplerSpec
from .slots import LoadedModel


@dataclass(frozen=True)
class Prepared:
    """A FIM prompt ready to generate from."""

    tokens: list[int]
    cut: fim.Cut
    max_tokens: int
    control: Control


def prepare(model: LoadedModel, spec: ModelSpec, params: GenerationParams, *, prefix: str,
            suffix: str, prompt: str = "", extra: tuple[tuple[str, str], ...] = (),
            samplers: SamplerSpec | None = None, n_indent: int = 0,
            t_max_predict_ms: int = 0, cache_prompt: bool = True) -> Prepared:
    """Build the prompt within n_ctx minus the prediction (runs in a worker thread)."""
    markers = fim.fim_tokens(model.vocab)
    if markers is None:
        missing = ", ".join(fim.missing_markers(model.vocab))
        raise NotSupported(f"model {spec.name!r} cannot fill in the middle: its vocabulary has "
                           f"no FIM {missing} token")
    n_ctx = model.n_ctx
    if params.max_tokens is None:
        predict = min(spec.sampling.max_tokens, n_ctx // 4)
    elif params.max_tokens >= n_ctx:
        raise ContextLengthExceeded(f"n_predict is {params.max_tokens} but the model's context "
                                    f"is {n_ctx} tokens", param="n_predict")
    else:
        predict = params.max_tokens

    def tokenize(text: str) -> list[int]:
        return model.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    built = fim.build(tokenize, markers, prefix=prefix, suffix=suffix, prompt=prompt,
                      extra=extra, room=n_ctx - predict, layout=spec.fim_layout,  # type: ignore[arg-type]
                      suffix_tokens=spec.fim_suffix_tokens)
    if built is None:
        raise ContextLengthExceeded(f"the typed prompt and FIM markers do not fit the model's "
                                    f"context of {n_ctx} tokens with {predict} to predict",
                                    param="prompt")
    control = Control(samplers=(samplers or SamplerSpec()).for_context(n_ctx),
                      stop_tokens=markers.stops, t_max_predict_ms=t_max_predict_ms,
                      n_indent=n_indent, cache_prompt=cache_prompt, interactive=True)
    return Prepared(built.tokens, built.cut, predict, control)
