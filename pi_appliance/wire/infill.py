"""Fill-in-the-middle requests (pure): llama.cpp's `POST /infill` shape, and OpenAI's
`POST /v1/completions` with `suffix`, both validated into one `InfillRequest`; and
llama.cpp's `POST /completion` (Continue's llama.cpp provider: a prompt the client rendered,
sent on as it came), validated into the same shape with no prefix, suffix or chunks.

Every field is checked; a field we do not know is a 400 naming it, never ignored. The
llama.cpp options are forwarded to the backend's `/infill` as they came (they are that
endpoint's own); `input_extra` is replaced by the chunks the orchestrator selects, and
`response_fields` and `cerebrum` are answered here, never forwarded.

The ranges are what both upstreams accept (this project's backend and llama-server b11434):
`stop` up to 16 strings of at most 256 characters, `repeat_penalty` above 0. Two fields pass
on what only some upstreams take: `id_slot` (llama-server -np N takes any slot; the backend,
with one slot, only -1 and 0 and answers 400, which reaches the client as that 400) and
`repeat_last_n` -1 (the context size; `infill.payload` sends the route's n_ctx instead, as
llama-server b11434 refuses -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cerebrum.openai import options as wire_options
from cerebrum.openai.errors import kind_of

from ..errors import BadRequest
from ..pipeline.language import canonical
from ..settings import LANGUAGES

Shape = Literal["infill", "openai", "completion"]
MAX_EXTRA = 512  # chunks per request (llama.vim's ring holds 16, llama.vscode's 16)
MAX_FILES = 64  # whole files in `cerebrum.files`
MAX_SAMPLERS = 16
MAX_INFILL_STOPS = 16  # both shapes; llama-server sets no limit, the backend takes 16
MAX_STOP_CHARS = 256  # the backend's stop scanner holds back up to this much text
_SAMPLERS = frozenset({"dry", "top_k", "typ_p", "typical_p", "top_p", "min_p", "xtc",
                       "temperature", "infill", "penalties", "top_n_sigma", "adaptive_p"})
# llama.cpp options forwarded unchanged once checked: name -> (kind, low, high).
_INFILL_NUMBERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0), "min_p": (float, 0.0, 1.0),
    "typical_p": (float, 0.0, 1.0), "repeat_penalty": (float, 0.0, 10.0),
    "presence_penalty": (float, -2.0, 2.0), "frequency_penalty": (float, -2.0, 2.0),
    "top_k": (int, 0, 1000), "seed": (int, -1, 2**32 - 1), "repeat_last_n": (int, -1, 65536),
    "n_indent": (int, 0, 1024), "t_max_prompt_ms": (int, -1, 600_000),
    "t_max_predict_ms": (int, -1, 600_000), "id_slot": (int, -1, 1024),
    "n_cmpl": (int, 1, 1),  # llama-server b11434 accepts 1 only
}
_OPENAI_NUMBERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0),
    "presence_penalty": (float, -2.0, 2.0), "frequency_penalty": (float, -2.0, 2.0),
    "seed": (int, -1, 2**32 - 1),
}
_INFILL_FIELDS = frozenset({"input_prefix", "input_suffix", "input_extra", "prompt", "n_predict",
                            "max_tokens", "stop", "stream", "cache_prompt", "samplers",
                            "response_fields", "model", "cerebrum", *_INFILL_NUMBERS})
_OPENAI_FIELDS = frozenset({"model", "prompt", "suffix", "max_tokens", "stop", "stream", "n",
                            "echo", "logprobs", "best_of", "user", "stream_options",
                            "cerebrum", *_OPENAI_NUMBERS})
_COMPLETION_FIELDS = frozenset({"prompt", "n_predict", "max_tokens", "stop", "stream",
                                "cache_prompt", "samplers", "response_fields", "model",
                                "mirostat", "cerebrum", *_INFILL_NUMBERS})
_CEREBRUM_FIELDS = frozenset({"files", "language", "filename", "context"})


@dataclass(frozen=True)
class Extra:
    """One context chunk: a file's name and some of its text (the editor's `input_extra`)."""

    filename: str
    text: str


@dataclass(frozen=True)
class InfillRequest:
    """A validated fill-in-the-middle request, whichever shape it came in."""

    shape: Shape
    model: str  # "auto" lets routing choose
    stream: bool
    prefix: str
    suffix: str
    prompt: str  # text typed after the prefix on the cursor's line (llama.cpp's `prompt`)
    extra: tuple[Extra, ...]  # the editor's chunks, oldest first
    files: tuple[Extra, ...]  # whole files the client sent as `cerebrum.files`
    language: str | None  # explicit (`cerebrum.language`)
    filename: str | None  # the file being edited (`cerebrum.filename`)
    context: Literal["auto", "raw"]  # raw: the editor's chunks as they came
    n_predict: int | None
    response_fields: tuple[str, ...] | None
    options: dict[str, Any]  # llama.cpp options forwarded unchanged
    include_usage: bool = False  # OpenAI shape, streamed: a last `choices: []` chunk with usage


def _number(body: dict[str, Any], key: str, kind: type, lo: float, hi: float) -> Any:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            kind is int and not isinstance(value, int)):
        what = "an integer" if kind is int else "a number"
        raise BadRequest(f"'{key}' must be {what}, got {kind_of(value)}", param=key)
    if not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be between {lo:g} and {hi:g}, got {value}", param=key)
    return value


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string, got {kind_of(value)}", param=key)
    return value


def _unknown(body: dict[str, Any], known: frozenset[str], where: str = "") -> None:
    for key in body:
        if key not in known:
            raise BadRequest(f"unknown field '{where}{key}'", param=f"{where}{key}",
                             code="unknown_field")


def _is_time(value: Any) -> bool:
    """A chunk's `time` (unused, the order of the chunks says how recent they are): absent,
    a number, or what llama.vim sends, Vim's `reltime()` list of two numbers."""
    def number(x: Any) -> bool:
        return not isinstance(x, bool) and isinstance(x, int | float)

    return value is None or number(value) or (
        isinstance(value, list) and 0 < len(value) <= 2 and all(number(x) for x in value))


def _chunks(value: Any, key: str, limit: int) -> tuple[Extra, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > limit:
        raise BadRequest(f"'{key}' must be an array of up to {limit} {{filename, text}} "
                         "objects", param=key)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"'{key}[{i}]' must be an object {{filename, text}}", param=key)
        _unknown(item, frozenset({"filename", "text", "time"}), f"{key}[{i}].")
        for field in ("filename", "text"):
            if not isinstance(item.get(field, ""), str):
                raise BadRequest(f"'{key}[{i}].{field}' must be a string, got "
                                 f"{kind_of(item[field])}", param=key)
        if not isinstance(item.get("text"), str):
            raise BadRequest(f"'{key}[{i}].text' is required: a string", param=key)
        if not _is_time(item.get("time")):
            raise BadRequest(f"'{key}[{i}].time' must be a number or Vim's reltime() "
                             f"[seconds, microseconds], got {kind_of(item['time'])}",
                             param=key)
        out.append(Extra(item.get("filename") or "", item["text"]))
    return tuple(out)


def _stops(body: dict[str, Any], limit: int) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > limit or not all(
            isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops):
        raise BadRequest(f"'stop' must be a non-empty string or an array of up to {limit} "
                         f"non-empty strings of at most {MAX_STOP_CHARS} characters",
                         param="stop")
    return stops


def _cerebrum(body: dict[str, Any]) -> tuple[tuple[Extra, ...], str | None, str | None, str]:
    extra = body.get("cerebrum")
    if extra is None:
        return (), None, None, "auto"
    if not isinstance(extra, dict):
        raise BadRequest("'cerebrum' must be an object like {\"files\": [{filename, text}], "
                         "\"language\": \"python\"}", param="cerebrum")
    _unknown(extra, _CEREBRUM_FIELDS, "cerebrum.")
    files = _chunks(extra.get("files"), "cerebrum.files", MAX_FILES)
    language = extra.get("language")
    if language is not None and language != "auto" and (
            not isinstance(language, str) or canonical(language) is None):
        raise BadRequest(f"'cerebrum.language' must be one of {', '.join(LANGUAGES)} or auto",
                         param="cerebrum.language")
    filename = extra.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise BadRequest("'cerebrum.filename' must be a string", param="cerebrum.filename")
    context = extra.get("context", "auto")
    if context not in ("auto", "raw"):
        raise BadRequest("'cerebrum.context' must be \"auto\" or \"raw\"",
                         param="cerebrum.context")
    return (files, None if language in (None, "auto") else canonical(language), filename,
            context)


def _common(body: dict[str, Any], max_tokens_cap: int, numbers: dict[str, tuple[type, float,
            float]]) -> tuple[str, bool, dict[str, Any]]:
    model = body.get("model", "auto")
    if not isinstance(model, str):
        raise BadRequest("'model' must be a string ('auto' or '' lets routing choose)",
                         param="model")
    model = model or "auto"  # llama.vim sends its model_fim option, '' unless set
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(f"'stream' must be a boolean, got {kind_of(stream)}", param="stream")
    options = {key: _number(body, key, *spec) for key, spec in numbers.items()
               if body.get(key) is not None}
    return model, stream, options


def _n_predict(body: dict[str, Any], keys: tuple[str, ...], cap: int) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"'{key}' must be an integer, got {kind_of(value)}", param=key)
        if value == -1:  # llama.cpp's "until the context is full": the default applies
            return None
        if not 0 <= value <= cap:
            raise BadRequest(f"'{key}' must be between 0 and {cap} (or -1), got {value}",
                             param=key)
        return value
    return None


def parse_infill(body: dict[str, Any], max_tokens_cap: int) -> InfillRequest:
    """Validate a llama.cpp-style `/infill` request (what llama.vim and llama.vscode send)."""
    _unknown(body, _INFILL_FIELDS)
    model, stream, options = _common(body, max_tokens_cap, _INFILL_NUMBERS)
    for key in ("input_prefix", "input_suffix"):
        if key not in body:
            raise BadRequest(f"'{key}' is required: a string (may be empty)", param=key)
    prefix, suffix = _string(body, "input_prefix"), _string(body, "input_suffix")
    prompt = _string(body, "prompt")
    extra = _chunks(body.get("input_extra"), "input_extra", MAX_EXTRA)
    files, language, filename, context = _cerebrum(body)
    _llama_options(body, options)
    fields = _response_fields(body)
    return InfillRequest("infill", model, stream, prefix, suffix, prompt, extra, files,
                         language, filename, context,
                         _n_predict(body, ("n_predict", "max_tokens"), max_tokens_cap),
                         fields, options)


def parse_completion(body: dict[str, Any], max_tokens_cap: int) -> InfillRequest:
    """Validate a llama.cpp-style `/completion` request (Continue's llama.cpp provider)."""
    _unknown(body, _COMPLETION_FIELDS)
    model, stream, options = _common(body, max_tokens_cap, _INFILL_NUMBERS)
    if not isinstance(body.get("prompt"), str):
        raise BadRequest("'prompt' is required: a string (token arrays are not accepted)",
                         param="prompt")
    mirostat = body.get("mirostat", 0)
    if mirostat != 0 or isinstance(mirostat, bool):
        raise BadRequest("'mirostat' must be 0: the backends do not sample with Mirostat",
                         param="mirostat")
    files, language, filename, context = _cerebrum(body)
    _llama_options(body, options)
    return InfillRequest("completion", model, stream, "", "", body["prompt"], (), files,
                         language, filename, context,
                         _n_predict(body, ("n_predict", "max_tokens"), max_tokens_cap),
                         _response_fields(body), options)


def _llama_options(body: dict[str, Any], options: dict[str, Any]) -> None:
    """Check llama.cpp's own options (stop, cache_prompt, samplers) into `options`."""
    if options.get("repeat_penalty") == 0:  # llama-server refuses it; 1 is off
        raise BadRequest("'repeat_penalty' must be greater than 0 (1 is off)",
                         param="repeat_penalty")
    if (stops := _stops(body, MAX_INFILL_STOPS)) is not None:
        options["stop"] = stops
    if body.get("cache_prompt") is not None:
        if not isinstance(body["cache_prompt"], bool):
            raise BadRequest("'cache_prompt' must be a boolean", param="cache_prompt")
        options["cache_prompt"] = body["cache_prompt"]
    samplers = body.get("samplers")
    if samplers is not None:
        if not isinstance(samplers, list) or len(samplers) > MAX_SAMPLERS or not all(
                isinstance(s, str) and s in _SAMPLERS for s in samplers):
            raise BadRequest(f"'samplers' must be an array of up to {MAX_SAMPLERS} of "
                             f"{', '.join(sorted(_SAMPLERS))}", param="samplers")
        options["samplers"] = samplers


def _response_fields(body: dict[str, Any]) -> tuple[str, ...] | None:
    fields = body.get("response_fields")
    if fields is not None and (not isinstance(fields, list) or len(fields) > 64 or not all(
            isinstance(f, str) for f in fields)):
        raise BadRequest("'response_fields' must be an array of up to 64 strings "
                         "(paths like \"timings/prompt_n\")", param="response_fields")
    return tuple(fields) if fields else None


def parse_openai(body: dict[str, Any], max_tokens_cap: int) -> InfillRequest:
    """Validate an OpenAI `/v1/completions` request with `suffix` (Continue's autocomplete)."""
    _unknown(body, _OPENAI_FIELDS)
    model, stream, options = _common(body, max_tokens_cap, _OPENAI_NUMBERS)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string", param="prompt")
    suffix = _string(body, "suffix")
    for key, ok in (("n", body.get("n", 1) == 1), ("best_of", body.get("best_of", 1) in (1, None)),
                    ("echo", body.get("echo") in (False, None)),
                    ("logprobs", body.get("logprobs") is None),
                    ("user", isinstance(body.get("user", ""), str))):
        if not ok:
            raise BadRequest(f"'{key}' is not supported with 'suffix' (fill-in-the-middle) "
                             "beyond its default", param=key)
    if (stops := _stops(body, MAX_INFILL_STOPS)) is not None:  # Continue's Qwen FIM: 12
        options["stop"] = stops
    files, language, filename, context = _cerebrum(body)
    return InfillRequest("openai", model, stream, prompt, suffix, "", (), files, language,
                         filename, context, _n_predict(body, ("max_tokens",), max_tokens_cap),
                         None, options, include_usage=wire_options.stream_options(body))
