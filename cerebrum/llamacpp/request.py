"""llama.cpp's own requests (pure): `/infill` (llama.vim, llama.vscode) and `/completion`
(Continue's llama.cpp provider) validated into the internal `Fill`, under either tier's
rules (`Tier`: the backend takes what it can run, the orchestrator what its upstreams take).

Every field llama.vim, llama.vscode and the orchestrator send is validated and honoured;
a field this format's parser does not know is a 400 naming it (llama-server ignores unknown
fields, Cerebrum ignores none). Two are accepted as no-ops by the backend because
llama-server b11434 treats them so for a one-slot server: `t_max_prompt_ms` (parsed but not
implemented upstream) and `id_slot` (0 or -1: there is one slot; the orchestrator passes any
slot on, for llama-server -np N). `n_cmpl` must be 1, as llama-server -np 1 answers.
`stop` takes up to 16 strings (llama-server sets no limit; the orchestrator passes on 16), and
`repeat_penalty` must be above 0, as llama-server requires (the penalties sampler divides by it);
`repeat_last_n` -1 is the whole context.

`/completion` takes the same fields but the FIM ones, its `prompt` required and sent to the
model as it is; `mirostat` is accepted only as 0 (off), the one value the sampler chain
honours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cerebrum.generation import checks
from cerebrum.generation.errors import InvalidRequest, kind_of
from cerebrum.generation.request import Controls, Fill, Sampling

Tier = Literal["backend", "orchestrator"]
MAX_EXTRA = 1024  # chunks; llama.vim's ring holds 16
MAX_SAMPLERS = 16
MAX_RESPONSE_FIELDS = 64
# llama.cpp's sampler names (`samplers`), as llama-server b11434 takes them.
SAMPLERS = frozenset({"penalties", "top_k", "typ_p", "top_p", "min_p", "temperature",
                      "typical_p", "infill", "dry", "xtc", "top_n_sigma", "adaptive_p"})
# The number fields: name -> (kind, low, high), for both tiers ...
_NUMBERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0), "min_p": (float, 0.0, 1.0),
    "typical_p": (float, 0.0, 1.0), "repeat_penalty": (float, 0.0, 10.0),
    "presence_penalty": (float, -2.0, 2.0), "frequency_penalty": (float, -2.0, 2.0),
    "repeat_last_n": (int, -1, 1 << 16), "n_cmpl": (int, 1, 1),
}
# ... and where they differ: the backend takes what it can run (one slot), the orchestrator
# what every upstream of it takes (llama-server -np N has N slots; b11434's ranges).
_TIER_NUMBERS: dict[Tier, dict[str, tuple[type, float, float]]] = {
    "backend": {"top_k": (int, 0, 2**31 - 1), "seed": (int, -(2**63), 2**64 - 1),
                "n_indent": (int, 0, 1 << 16), "t_max_predict_ms": (int, -1, 3_600_000),
                "t_max_prompt_ms": (int, -1, 3_600_000), "id_slot": (int, -1, 0)},
    "orchestrator": {"top_k": (int, 0, 1000), "seed": (int, -1, 2**32 - 1),
                     "n_indent": (int, 0, 1024), "t_max_predict_ms": (int, -1, 600_000),
                     "t_max_prompt_ms": (int, -1, 600_000), "id_slot": (int, -1, 1024)},
}
FIELDS = frozenset({"input_prefix", "input_suffix", "input_extra", "prompt", "n_predict",
                    "max_tokens", "stop", "stream", "cache_prompt", "samplers",
                    "response_fields", "model", *_NUMBERS, *_TIER_NUMBERS["backend"]})
_FIM_ONLY = frozenset({"input_prefix", "input_suffix", "input_extra"})
COMPLETION_FIELDS = (FIELDS - _FIM_ONLY) | {"mirostat"}


@dataclass(frozen=True)
class Native:
    """A validated `/infill` or `/completion` request: the internal one, and what shapes
    its reply (`response_fields`)."""

    fill: Fill
    response_fields: tuple[str, ...] | None = None


def _string(body: dict[str, Any], key: str, required: bool) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        what = ("is required: a string" if value is None
                else f"must be a string, got {kind_of(value)}")
        raise InvalidRequest(f"'{key}' {what}", key)
    return value


def _is_time(value: Any) -> bool:
    """A chunk's `time` (unused: the order of the chunks says how recent they are): absent,
    a number, or what llama.vim sends, Vim's `reltime()` list of two numbers."""
    def number(x: Any) -> bool:
        return not isinstance(x, bool) and isinstance(x, int | float)

    return value is None or number(value) or (
        isinstance(value, list) and 0 < len(value) <= 2 and all(number(x) for x in value))


def chunks(value: Any, key: str, limit: int) -> tuple[tuple[str, str], ...]:
    """`input_extra` (or the like): {filename?, text, time?} objects as (filename, text);
    a chunk without a name keeps "" (each upstream applies its default, llama-server's
    "tmp")."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidRequest(f"'{key}' must be an array of up to {limit} {{filename, text}} "
                             "objects", key)
    out = []
    for i, chunk in enumerate(value):
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            raise InvalidRequest(f"{key}[{i}] must be an object with a string 'text'", key)
        unknown = sorted(set(chunk) - {"text", "filename", "time"})
        if unknown:
            raise InvalidRequest(f"unknown field '{key}[{i}].{unknown[0]}'",
                                 f"{key}[{i}].{unknown[0]}", "unknown_parameter")
        if not isinstance(chunk.get("filename", ""), str):
            raise InvalidRequest(f"{key}[{i}].filename must be a string", key)
        if not _is_time(chunk.get("time")):
            raise InvalidRequest(f"{key}[{i}].time must be a number or Vim's reltime() "
                                 f"[seconds, microseconds], got {kind_of(chunk['time'])}", key)
        out.append((chunk.get("filename") or "", chunk["text"]))
    return tuple(out)


def _numbers(body: dict[str, Any], tier: Tier) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (kind, lo, hi) in {**_NUMBERS, **_TIER_NUMBERS[tier]}.items():
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind is int and not isinstance(value, int)):
            raise InvalidRequest(f"'{key}' must be {'an integer' if kind is int else 'a number'}"
                                 f", got {kind_of(value)}", key)
        if not lo <= value <= hi:
            raise InvalidRequest(f"'{key}' must be between {lo:g} and {hi:g}, got {value}", key)
        out[key] = value
    return out


def _samplers(body: dict[str, Any]) -> tuple[str, ...] | None:
    samplers = body.get("samplers")
    if samplers is None:
        return None
    if (not isinstance(samplers, list) or len(samplers) > MAX_SAMPLERS
            or not all(isinstance(s, str) and s in SAMPLERS for s in samplers)):
        raise InvalidRequest(f"'samplers' must be an array of up to {MAX_SAMPLERS} of "
                             f"{', '.join(sorted(SAMPLERS))}", "samplers")
    return tuple(samplers)


def _response_fields(body: dict[str, Any]) -> tuple[str, ...] | None:
    fields = body.get("response_fields")
    if fields is None:
        return None
    if (not isinstance(fields, list) or len(fields) > MAX_RESPONSE_FIELDS
            or not all(isinstance(f, str) and len(f) <= 256 for f in fields)):
        raise InvalidRequest(f"'response_fields' must be an array of up to "
                             f"{MAX_RESPONSE_FIELDS} strings", "response_fields")
    return tuple(fields) or None


def _known(body: dict[str, Any], fields: frozenset[str], endpoint: str) -> None:
    unknown = sorted(set(body) - fields)
    if unknown:
        raise InvalidRequest(f"unknown field '{unknown[0]}': {endpoint} takes "
                             f"{', '.join(sorted(fields))}", unknown[0], "unknown_parameter")


def model(body: Any) -> str | None:
    """The requested model; llama.vim sends `"model": ""` by default: any model, as
    llama-server takes it."""
    body = checks.json_object(body)
    return None if body.get("model") == "" else checks.model(body)


def _max_tokens(body: dict[str, Any], cap: int) -> int | None:
    """`n_predict` (or `max_tokens`): 0 to cap, or -1 (llama.cpp's "until the context is
    full": the model's default applies)."""
    for key in ("n_predict", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"'{key}' must be an integer, got {kind_of(value)}", key)
        if not -1 <= value <= cap:
            raise InvalidRequest(f"'{key}' must be between 0 and {cap} (or -1), got {value}",
                                 key)
        return None if value < 0 else value
    return None


def _parse(body: dict[str, Any], max_tokens_cap: int, tier: Tier, *, rendered: bool) -> Native:
    cache_prompt = body.get("cache_prompt", True)
    if not isinstance(cache_prompt, bool):
        raise InvalidRequest("'cache_prompt' must be a boolean", "cache_prompt")
    numbers = _numbers(body, tier)
    if numbers.get("repeat_penalty") == 0:  # llama-server refuses it; 1 is off
        raise InvalidRequest("'repeat_penalty' must be greater than 0 (1 is off)",
                             "repeat_penalty")
    sampling = Sampling(**{k: numbers.get(k) for k in (
        "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
        "frequency_penalty", "seed")})
    controls = Controls(samplers=_samplers(body), typical_p=float(numbers.get("typical_p", 1.0)),
                        repeat_last_n=int(numbers.get("repeat_last_n", 64)),
                        n_indent=int(numbers.get("n_indent", 0)),
                        t_max_predict_ms=int(numbers.get("t_max_predict_ms", 0)),
                        cache_prompt=cache_prompt)
    fill = Fill(model=model(body), stream=checks.stream(body),
                prefix="" if rendered else _string(body, "input_prefix", True),
                suffix="" if rendered else _string(body, "input_suffix", True),
                prompt=_string(body, "prompt", rendered),
                extra=chunks(body.get("input_extra"), "input_extra", MAX_EXTRA),
                rendered=rendered, max_tokens=_max_tokens(body, max_tokens_cap),
                stop=checks.stop(body, checks.MAX_FIM_STOPS), sampling=sampling,
                controls=controls)
    return Native(fill, _response_fields(body))


def parse_infill(body: Any, max_tokens_cap: int, tier: Tier = "backend") -> Native:
    """Validate an `/infill` request (llama-server's fields; unknown ones are a 400)."""
    body = checks.json_object(body)
    _known(body, FIELDS, "/infill")
    return _parse(body, max_tokens_cap, tier, rendered=False)


def parse_completion(body: Any, max_tokens_cap: int, tier: Tier = "backend") -> Native:
    """Validate a `/completion` request: a `prompt` string and /infill's other fields."""
    body = checks.json_object(body)
    _known(body, COMPLETION_FIELDS, "/completion")
    mirostat = body.get("mirostat", 0)
    if mirostat != 0 or isinstance(mirostat, bool):
        raise InvalidRequest("'mirostat' must be 0: Cerebrum does not sample with Mirostat",
                             "mirostat")
    if not isinstance(body.get("prompt"), str):
        raise InvalidRequest("'prompt' is required: a string (token arrays are not accepted)",
                             "prompt")
    return _parse({k: v for k, v in body.items() if k != "mirostat"}, max_tokens_cap, tier,
                  rendered=True)
