"""llama-server's own wire format (pure): `/infill` and `/completion` request validation and
response shapes.

Every field llama.vim, llama.vscode and the orchestrator send is validated and honoured;
a field this backend does not know is a 400 naming it (llama-server ignores unknown fields,
this backend ignores none). Two are accepted as no-ops because llama-server b11434 treats them
so for a one-slot server: `t_max_prompt_ms` (parsed but not implemented upstream) and
`id_slot` (0 or -1: there is one slot). `n_cmpl` must be 1, as llama-server -np 1 answers.
`stop` takes up to 16 strings (llama-server sets no limit; the orchestrator passes on 16), and
`repeat_penalty` must be above 0, as llama-server requires (the penalties sampler divides by it);
`repeat_last_n` -1 is the whole context (`SamplerSpec.for_context`).

`/completion` (Continue's llama.cpp provider) takes the same fields but the FIM ones, its
`prompt` required and sent to the model as it is; `mirostat` is accepted only as 0 (off), the
one value this backend's sampler chain honours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerebrum.openai import request as wire

from ..engine.params import GenerationParams
from ..engine.sampling import KNOWN, SamplerSpec
from ..errors import BadRequest
from ..settings import Sampling
from .protocol import MAX_FIM_STOPS, _params, model_of

MAX_EXTRA = 1024  # chunks; llama.vim's ring holds 16
MAX_SAMPLERS = 16
MAX_RESPONSE_FIELDS = 64
_NUMBERS: dict[str, tuple[type, float, float]] = {
    "n_indent": (int, 0, 1 << 16), "t_max_predict_ms": (int, -1, 3_600_000),
    "t_max_prompt_ms": (int, -1, 3_600_000), "id_slot": (int, -1, 0), "n_cmpl": (int, 1, 1),
    "typical_p": (float, 0.0, 1.0), "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0), "repeat_last_n": (int, -1, 1 << 16),
}
# Read by protocol._params: the shared sampling fields.
_SAMPLING = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "stop",
             "max_tokens")
FIELDS = frozenset({"input_prefix", "input_suffix", "input_extra", "prompt", "n_predict",
                    "stream", "cache_prompt", "samplers", "response_fields", "model",
                    *_SAMPLING, *_NUMBERS})
_FIM_ONLY = frozenset({"input_prefix", "input_suffix", "input_extra"})
COMPLETION_FIELDS = (FIELDS - _FIM_ONLY) | {"mirostat"}


@dataclass(frozen=True)
class InfillRequest:
    """A validated /infill (or /completion: no prefix, suffix or extra) request."""

    model: str | None
    prefix: str
    suffix: str
    prompt: str
    extra: tuple[tuple[str, str], ...]  # (filename, text)
    stream: bool
    params: GenerationParams
    samplers: SamplerSpec
    n_indent: int
    t_max_predict_ms: int
    cache_prompt: bool
    response_fields: tuple[str, ...] | None


def _string(body: dict[str, Any], key: str, required: bool) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        what = ("is required: a string" if value is None
                else f"must be a string, got {wire.kind_of(value)}")
        raise BadRequest(f"'{key}' {what}", param=key)
    return value


def _extra(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    extra = body.get("input_extra")
    if extra is None:
        return ()
    if not isinstance(extra, list) or len(extra) > MAX_EXTRA:
        raise BadRequest(f"'input_extra' must be an array of at most {MAX_EXTRA} "
                         "{filename, text} objects", param="input_extra")
    out = []
    for i, chunk in enumerate(extra):
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            raise BadRequest(f"input_extra[{i}] must be an object with a string 'text'",
                             param="input_extra")
        filename = chunk.get("filename", "tmp")  # llama-server's default name
        if not isinstance(filename, str):
            raise BadRequest(f"input_extra[{i}].filename must be a string", param="input_extra")
        unknown = set(chunk) - {"text", "filename", "time"}  # llama.vim adds its ring's time
        if unknown:
            raise BadRequest(f"input_extra[{i}] has unknown field '{sorted(unknown)[0]}'",
                             param="input_extra")
        out.append((filename, chunk["text"]))
    return tuple(out)


def _numbers(body: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, (kind, lo, hi) in _NUMBERS.items():
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind is int and not isinstance(value, int)):
            raise BadRequest(f"'{key}' must be {'an integer' if kind is int else 'a number'}, "
                             f"got {wire.kind_of(value)}", param=key)
        if not lo <= value <= hi:
            raise BadRequest(f"'{key}' must be between {lo:g} and {hi:g}, got {value}", param=key)
        out[key] = value
    return out


def _samplers(body: dict[str, Any]) -> tuple[str, ...] | None:
    samplers = body.get("samplers")
    if samplers is None:
        return None
    if (not isinstance(samplers, list) or len(samplers) > MAX_SAMPLERS
            or not all(isinstance(s, str) and s in KNOWN for s in samplers)):
        raise BadRequest(f"'samplers' must be an array of up to {MAX_SAMPLERS} of "
                         f"{', '.join(sorted(KNOWN))}", param="samplers")
    return tuple(samplers)


def _response_fields(body: dict[str, Any]) -> tuple[str, ...] | None:
    fields = body.get("response_fields")
    if fields is None:
        return None
    if (not isinstance(fields, list) or len(fields) > MAX_RESPONSE_FIELDS
            or not all(isinstance(f, str) and len(f) <= 256 for f in fields)):
        raise BadRequest(f"'response_fields' must be an array of up to {MAX_RESPONSE_FIELDS} "
                         "strings", param="response_fields")
    return tuple(fields) or None


def parse_native_completion(body: Any, defaults: Sampling,
                            max_tokens_cap: int) -> InfillRequest:
    """Validate a /completion request: a `prompt` string and /infill's other fields."""
    body = wire.json_object(body)
    _known(body, COMPLETION_FIELDS, "/completion")
    mirostat = body.get("mirostat", 0)
    if mirostat != 0 or isinstance(mirostat, bool):
        raise BadRequest("'mirostat' must be 0: this backend does not sample with Mirostat",
                         param="mirostat")
    if not isinstance(body.get("prompt"), str):
        raise BadRequest("'prompt' is required: a string (token arrays are not accepted)",
                         param="prompt")
    fields = {k: v for k, v in body.items() if k != "mirostat"}
    return parse_infill({**fields, "input_prefix": "", "input_suffix": ""}, defaults,
                        max_tokens_cap)


def _known(body: dict[str, Any], fields: frozenset[str], endpoint: str) -> None:
    unknown = sorted(set(body) - fields)
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}': {endpoint} takes "
                         f"{', '.join(sorted(fields))}", param=unknown[0])


def parse_infill(body: Any, defaults: Sampling, max_tokens_cap: int) -> InfillRequest:
    """Validate an /infill request (llama-server's fields; unknown ones are a 400)."""
    body = wire.json_object(body)
    _known(body, FIELDS, "/infill")
    n_predict = body.get("n_predict")
    if n_predict is not None:
        if isinstance(n_predict, bool) or not isinstance(n_predict, int):
            raise BadRequest(f"'n_predict' must be an integer, got {wire.kind_of(n_predict)}",
                             param="n_predict")
        if not -1 <= n_predict <= max_tokens_cap:
            raise BadRequest(f"'n_predict' must be between -1 and {max_tokens_cap}, "
                             f"got {n_predict}", param="n_predict")
    cache_prompt = body.get("cache_prompt", True)
    if not isinstance(cache_prompt, bool):
        raise BadRequest("'cache_prompt' must be a boolean", param="cache_prompt")
    numbers = _numbers(body)
    params = _params({k: body[k] for k in _SAMPLING if k in body}, defaults, max_tokens_cap,
                     MAX_FIM_STOPS)
    if "repeat_penalty" in body and params.repeat_penalty <= 0:
        raise BadRequest("'repeat_penalty' must be greater than 0 (1 is off)",
                         param="repeat_penalty")
    if n_predict is not None:
        params = GenerationParams(**{**params.__dict__,
                                     "max_tokens": None if n_predict < 0 else n_predict})
    order = _samplers(body)
    spec = SamplerSpec(
        **({"order": order} if order is not None else {}),
        typical_p=float(numbers.get("typical_p", 1.0)),
        presence_penalty=float(numbers.get("presence_penalty", 0.0)),
        frequency_penalty=float(numbers.get("frequency_penalty", 0.0)),
        repeat_last_n=int(numbers.get("repeat_last_n", 64)),
    )
    return InfillRequest(
        model=model_of(body), prefix=_string(body, "input_prefix", True),
        suffix=_string(body, "input_suffix", True), prompt=_string(body, "prompt", False),
        extra=_extra(body), stream=wire.stream(body), params=params, samplers=spec,
        n_indent=int(numbers.get("n_indent", 0)),
        t_max_predict_ms=int(numbers.get("t_max_predict_ms", 0)), cache_prompt=cache_prompt,
        response_fields=_response_fields(body))


def generation_settings(req: InfillRequest, n_ctx: int, n_predict: int) -> dict[str, Any]:
    """llama-server's `generation_settings`: the parameters the reply was made with
    (llama.vscode reads `n_ctx` from it for its status bar)."""
    p = req.params
    return {"n_ctx": n_ctx, "n_predict": n_predict, "temperature": p.temperature,
            "top_k": p.top_k, "top_p": p.top_p, "min_p": p.min_p, "seed": p.seed,
            "stop": list(p.stop), "samplers": list(req.samplers.order),
            "n_indent": req.n_indent, "t_max_predict_ms": req.t_max_predict_ms}


def timings(prompt_n: int, prompt_s: float, predicted_n: int, predicted_s: float,
            cache_n: int) -> dict[str, float | int]:
    """llama-server's `timings` object."""
    prompt_ms, predicted_ms = prompt_s * 1000, predicted_s * 1000
    return {
        "cache_n": cache_n,
        "prompt_n": prompt_n, "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
        "prompt_per_second": prompt_n / prompt_s if prompt_s > 0 else 0.0,
        "predicted_n": predicted_n, "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / predicted_n if predicted_n else 0.0,
        "predicted_per_second": predicted_n / predicted_s if predicted_s > 0 else 0.0,
    }
