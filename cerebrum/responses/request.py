"""OpenAI Responses requests (`POST /v1/responses`, `POST /v1/responses/input_tokens`) as the
one internal request (pure): a conversation (`kind` "chat") from `instructions` and `input`
(`items`), tools and tool_choice (`tools`), the answer's shape (`text.format`), sampling and
limits. Designed for what Codex CLI sends, and for the official `openai` SDK.

Both tiers parse with `parse`; `tier` says whose rules (`fields.FIELDS`) apply. Every error
is an InvalidRequest naming the field (`param`), as a dotted path for nested ones
(`text.format.name`, `input[3].content[0]`).
"""

from __future__ import annotations

import re
from typing import Any

from cerebrum.generation.checks import NUMBERS, boolean, integer, json_object, model, number
from cerebrum.generation.request import Output, Request, Sampling

from . import items
from . import tools as tooling
from .errors import InvalidRequest, kind_of
from .fields import ENDPOINTS, FIELDS, REFUSED, Kind, Tier

MAX_METADATA = 16  # OpenAI's limit on metadata pairs
MAX_CLIENT_METADATA = 64
MAX_CACHE_KEY = 1024
MAX_TOP_LOGPROBS = 20
LOGPROBS = "message.output_text.logprobs"
INCLUDES = frozenset({LOGPROBS, "reasoning.encrypted_content", "web_search_call.results",
                      "web_search_call.action.sources", "file_search_call.results",
                      "code_interpreter_call.outputs", "computer_call_output.output.image_url",
                      "message.input_image.image_url"})
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
VERBOSITIES = ("low", "medium", "high")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FORMATS = ("text", "json_object", "json_schema")


def check_fields(kind: Kind, body: dict[str, Any], tier: Tier) -> None:
    """A 400 naming the first field that is unknown for the endpoint, or that `tier` refuses
    (unless its value asks for nothing)."""
    for key, value in body.items():
        field = FIELDS.get(key)
        if field is None or kind not in field.kinds:
            raise InvalidRequest(f"unknown field '{key}' for {ENDPOINTS[kind]}", key,
                                 "unknown_parameter")
        if value is None or field.status(tier) != REFUSED or field.is_neutral(value):
            continue
        raise InvalidRequest(f"'{key}' is not supported: {field.why}", key,
                             "unsupported_parameter")


def _one_of(value: Any, allowed: tuple[str, ...], param: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"'{param}' must be one of {', '.join(allowed)}", param)


def _strings(body: dict[str, Any], key: str, limit: int) -> None:
    value = body.get(key)
    if value is not None and (not isinstance(value, dict) or len(value) > limit or not all(
            isinstance(v, str) for v in value.values())):
        raise InvalidRequest(f"'{key}' must be an object of up to {limit} string values", key)


def _no_ops(body: dict[str, Any]) -> None:
    """Fields that do not change the answer: checked, then dropped."""
    for key in ("user", "safety_identifier"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"'{key}' must be a string, got {kind_of(value)}", key)
    _strings(body, "metadata", MAX_METADATA)
    _strings(body, "client_metadata", MAX_CLIENT_METADATA)
    _one_of(body.get("service_tier"), SERVICE_TIERS, "service_tier")
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict) or set(reasoning) - {"effort", "summary",
                                                            "generate_summary"}:
        raise InvalidRequest("'reasoning' must be {effort?, summary?}", "reasoning")
    _one_of(reasoning.get("effort"), EFFORTS, "reasoning.effort")
    _one_of(reasoning.get("summary"), SUMMARIES, "reasoning.summary")
    _one_of(reasoning.get("generate_summary"), SUMMARIES, "reasoning.generate_summary")


def _string(body: dict[str, Any], key: str, limit: int | None = None) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string, got {kind_of(value)}", key)
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidRequest(f"'{key}' must be at most {limit} characters", key)
    return value


def output(text: Any) -> Output:
    """`text`: {format?: text | json_object | json_schema {name, schema, strict?,
    description?}, verbosity?} as the answer's shape."""
    if text is None:
        return Output()
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise InvalidRequest("'text' must be {format?, verbosity?}", "text")
    _one_of(text.get("verbosity"), VERBOSITIES, "text.verbosity")
    spec = text.get("format")
    if spec is None:
        return Output()
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in _FORMATS:
        raise InvalidRequest("'text.format' must be {type: text}, {type: json_object} or "
                             "{type: json_schema, name, schema, strict?}", "text.format")
    allowed = {"type", "name", "schema", "strict", "description"} if kind == "json_schema" \
        else {"type"}
    extra = set(spec) - allowed
    if extra:
        raise InvalidRequest(f"'text.format' ({kind}) has a field this server does not "
                             f"honour: {sorted(extra)[0]!r}", "text.format")
    if kind != "json_schema":
        return Output(kind)
    name, schema = spec.get("name"), spec.get("schema")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest("'text.format.name' must be 1 to 64 letters, digits, '_' or '-'",
                             "text.format.name")
    if not isinstance(schema, dict):
        raise InvalidRequest("'text.format.schema' must be a JSON Schema object",
                             "text.format.schema")
    if not isinstance(spec.get("strict", False), bool | None):
        raise InvalidRequest("'text.format.strict' must be a boolean", "text.format.strict")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest("'text.format.description' must be a string",
                             "text.format.description")
    return Output("json_schema", name=name, schema=schema, strict=bool(spec.get("strict")),
                  description=description)


def _logprobs(body: dict[str, Any]) -> tuple[bool, int]:
    include = body.get("include")
    if include is not None and (not isinstance(include, list) or not all(
            isinstance(v, str) for v in include)):
        raise InvalidRequest("'include' must be an array of strings", "include")
    unknown = sorted(set(include or ()) - INCLUDES)
    if unknown:
        raise InvalidRequest(f"'include' value {unknown[0]!r} is not one this server knows: "
                             f"{', '.join(sorted(INCLUDES))}", "include")
    top = integer(body, "top_logprobs")
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"'top_logprobs' must be between 0 and {MAX_TOP_LOGPROBS}",
                             "top_logprobs")
    wanted = LOGPROBS in (include or ())
    return wanted, (top or 0) if wanted else 0


def _max_output_tokens(body: dict[str, Any], cap: int) -> int | None:
    value = integer(body, "max_output_tokens")
    if value is not None and not 1 <= value <= cap:
        raise InvalidRequest(f"'max_output_tokens' must be between 1 and {cap}, got {value}",
                             "max_output_tokens")
    return value


def parse(body: Any, max_tokens_cap: int, tier: Tier = "backend",
          kind: Kind = "create") -> Request:
    """Validate a Responses body (of `kind`'s endpoint) under `tier`'s rules into the
    internal request; for input_tokens, the request whose prompt is counted."""
    body = json_object(body)
    check_fields(kind, body, tier)
    _no_ops(body)
    offered = tooling.tools(body.get("tools"))
    logprobs, top_logprobs = _logprobs(body)
    parallel = boolean(body, "parallel_tool_calls")
    temperature_range, top_p_range = NUMBERS["temperature"], NUMBERS["top_p"]
    return Request(
        kind="chat", model=model(body), stream=bool(boolean(body, "stream")),
        turns=items.turns(_string(body, "instructions"), body.get("input")),
        max_tokens=_max_output_tokens(body, max_tokens_cap),
        sampling=Sampling(temperature=number(body, "temperature", *temperature_range),
                          top_p=number(body, "top_p", *top_p_range)),
        output=output(body.get("text")), tools=offered,
        tool_choice=tooling.tool_choice(body.get("tool_choice"), offered),
        parallel_tool_calls=parallel is not False, logprobs=logprobs,
        top_logprobs=top_logprobs, cache_key=_string(body, "prompt_cache_key", MAX_CACHE_KEY))
