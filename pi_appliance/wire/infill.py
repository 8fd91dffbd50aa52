"""Fill-in-the-middle requests to the orchestrator (pure): llama.cpp's `POST /infill` and
`POST /completion` (checked by `cerebrum.llamacpp` under the orchestrator's rules), and
OpenAI's `POST /v1/completions` with `suffix`, with the orchestrator's own `cerebrum` field
(`files`, `language`, `filename`, `context`), as one `InfillRequest`.

Every field is checked; a field we do not know is a 400 naming it, never ignored. The
llama.cpp options go to the backend's `/infill` (or `/completion`) as they came (they are
that endpoint's own, and every upstream of the orchestrator speaks it: this project's backend
and llama-server); `input_extra` is replaced by the chunks the orchestrator selects, and
`response_fields` and `cerebrum` are answered here, never forwarded. `repeat_last_n` -1
(the context size) becomes the route's n_ctx (`infill.bodies`), as llama-server b11434
refuses -1; `id_slot` passes on (llama-server -np N takes any slot; the backend, with one
slot, only -1 and 0 and answers 400, which reaches the client as that 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cerebrum import llamacpp
from cerebrum.generation import checks
from cerebrum.generation.errors import kind_of
from cerebrum.llamacpp.request import Native
from cerebrum.openai import options as wire_options

from ..errors import BadRequest
from ..pipeline.language import canonical
from ..settings import LANGUAGES

Shape = Literal["infill", "openai", "completion"]
MAX_FILES = 64  # whole files in `cerebrum.files`
MAX_INFILL_STOPS = checks.MAX_FIM_STOPS  # both shapes; the backend takes 16
_OPENAI_NUMBERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0),
    "presence_penalty": (float, -2.0, 2.0), "frequency_penalty": (float, -2.0, 2.0),
    "seed": (int, -1, 2**32 - 1),
}
_OPENAI_FIELDS = frozenset({"model", "prompt", "suffix", "max_tokens", "stop", "stream", "n",
                            "echo", "logprobs", "best_of", "user", "stream_options",
                            "cerebrum", *_OPENAI_NUMBERS})
# What the orchestrator answers itself; every other llama.cpp field goes upstream as it came.
_OWN = frozenset({"input_prefix", "input_suffix", "input_extra", "prompt", "n_predict",
                  "max_tokens", "stream", "response_fields", "model", "cerebrum", "mirostat"})
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


def _cerebrum(body: dict[str, Any]) -> tuple[tuple[Extra, ...], str | None, str | None, str]:
    extra = body.get("cerebrum")
    if extra is None:
        return (), None, None, "auto"
    if not isinstance(extra, dict):
        raise BadRequest("'cerebrum' must be an object like {\"files\": [{filename, text}], "
                         "\"language\": \"python\"}", param="cerebrum")
    _unknown(extra, _CEREBRUM_FIELDS, "cerebrum.")
    files = tuple(Extra(*c) for c in llamacpp.request.chunks(extra.get("files"),
                                                             "cerebrum.files", MAX_FILES))
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


def _native(shape: Shape, body: dict[str, Any], native: Native) -> InfillRequest:
    fill = native.fill
    files, language, filename, context = _cerebrum(body)
    options = {k: v for k, v in body.items() if k not in _OWN and v is not None}
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    return InfillRequest(shape, fill.model or "auto", fill.stream, fill.prefix, fill.suffix,
                         fill.prompt, tuple(Extra(*chunk) for chunk in fill.extra), files,
                         language, filename, context, fill.max_tokens, native.response_fields,
                         options)


def _without_own(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "cerebrum"}


def parse_infill(body: dict[str, Any], max_tokens_cap: int) -> InfillRequest:
    """Validate a llama.cpp-style `/infill` request (what llama.vim and llama.vscode send)."""
    native = llamacpp.parse_infill(_without_own(body), max_tokens_cap, "orchestrator")
    return _native("infill", body, native)


def parse_completion(body: dict[str, Any], max_tokens_cap: int) -> InfillRequest:
    """Validate a llama.cpp-style `/completion` request (Continue's llama.cpp provider)."""
    native = llamacpp.parse_completion(_without_own(body), max_tokens_cap, "orchestrator")
    return _native("completion", body, native)


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
    if (stops := checks.stop(body, MAX_INFILL_STOPS)):  # Continue's Qwen FIM: 12
        options["stop"] = list(stops)
    files, language, filename, context = _cerebrum(body)
    return InfillRequest("openai", model, stream, prompt, suffix, "", (), files, language,
                         filename, context, _n_predict(body, ("max_tokens",), max_tokens_cap),
                         None, options, include_usage=wire_options.stream_options(body))
