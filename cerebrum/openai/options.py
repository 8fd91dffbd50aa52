"""The generation options of OpenAI's requests beyond sampling (pure): structured output,
logit_bias, penalties, logprobs, n, stream_options and tools, validated for both tiers and
translated to the internal request's.

Only their shape is checked here; what a tier can do with a value (the backend's grammar, its
`max_n`, its vocabulary) is the tier's to check.
"""

from __future__ import annotations

import re
from typing import Any

from cerebrum.generation.request import Output, Sampling, Tool, ToolChoice

from .errors import InvalidRequest, kind_of
from .fields import Kind

MAX_N = 128  # OpenAI's limit on `n`
MAX_TOP_LOGPROBS = 20  # chat's top_logprobs
MAX_LEGACY_LOGPROBS = 5  # completions' logprobs
MAX_LOGIT_BIAS = 1024  # entries; OpenAI's vocabulary-wide limit is 300 per request
MAX_TOOLS = 128  # OpenAI's limit
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN_ID = re.compile(r"0|[1-9][0-9]{0,9}")
_FORMATS = ("text", "json_object", "json_schema")
_CHOICES = ("none", "auto", "required")


def response_format(value: Any) -> dict[str, Any] | None:
    """`{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema",
    "json_schema": {"name", "schema"?, "strict"?, "description"?}}`."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in _FORMATS or set(value) - {
            "type", "json_schema"}:
        raise InvalidRequest("'response_format' must be {\"type\": \"text\"}, {\"type\": "
                             "\"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": "
                             "{\"name\": …, \"schema\": {…}}}", "response_format")
    if value["type"] != "json_schema":
        return {"type": value["type"]}
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or set(spec) - {"name", "schema", "strict", "description"}:
        raise InvalidRequest("'response_format.json_schema' must be an object with 'name' and "
                             "'schema' (and optionally 'strict', 'description')",
                             "response_format")
    if not isinstance(spec.get("name"), str) or not _NAME.fullmatch(spec["name"]):
        raise InvalidRequest("'response_format.json_schema.name' must be 1 to 64 letters, "
                             "digits, '_' or '-'", "response_format")
    if not isinstance(spec.get("schema", {}), dict):
        raise InvalidRequest("'response_format.json_schema.schema' must be a JSON Schema "
                             "object", "response_format")
    if not isinstance(spec.get("strict", False), bool | None):
        raise InvalidRequest("'response_format.json_schema.strict' must be a boolean",
                             "response_format")
    if not isinstance(spec.get("description", ""), str):
        raise InvalidRequest("'response_format.json_schema.description' must be a string",
                             "response_format")
    return {"type": "json_schema", "json_schema": spec}


def logit_bias(value: Any) -> tuple[tuple[int, float], ...]:
    """Token id strings → bias in -100..100 (added to the token's logit)."""
    if value is None:
        return ()
    if not isinstance(value, dict) or len(value) > MAX_LOGIT_BIAS:
        raise InvalidRequest(f"'logit_bias' must be an object of up to {MAX_LOGIT_BIAS} token "
                             "ids (strings) → biases", "logit_bias")
    out = []
    for key, bias in value.items():
        if not _TOKEN_ID.fullmatch(key):
            raise InvalidRequest(f"'logit_bias' key {key!r} is not a token id", "logit_bias")
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise InvalidRequest(f"'logit_bias' value for {key} must be a number between -100 "
                                 "and 100", "logit_bias")
        out.append((int(key), float(bias)))
    return tuple(out)


def _penalty(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -2 <= value <= 2:
        raise InvalidRequest(f"'{key}' must be a number between -2 and 2", key)
    return float(value)


def _logprobs(kind: Kind, body: dict[str, Any]) -> tuple[bool, int]:
    value, top = body.get("logprobs"), body.get("top_logprobs")
    if kind == "completion":  # the legacy shape: an integer, how many alternatives
        if value is None:
            return False, 0
        if isinstance(value, bool) or not isinstance(value, int) or not (
                0 <= value <= MAX_LEGACY_LOGPROBS):
            raise InvalidRequest(f"'logprobs' must be an integer between 0 and "
                                 f"{MAX_LEGACY_LOGPROBS}", "logprobs")
        return True, value
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"'logprobs' must be a boolean, got {kind_of(value)}", "logprobs")
    if top is None:
        return bool(value), 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"'top_logprobs' must be an integer between 0 and "
                             f"{MAX_TOP_LOGPROBS}", "top_logprobs")
    if top and not value:
        raise InvalidRequest("'top_logprobs' needs \"logprobs\": true", "top_logprobs")
    return bool(value), top


def _n(body: dict[str, Any]) -> int:
    value = body.get("n")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_N:
        raise InvalidRequest(f"'n' must be an integer between 1 and {MAX_N}", "n")
    return value


def stream_options(body: dict[str, Any]) -> bool:
    """`stream_options.include_usage` (only with `stream: true`)."""
    value = body.get("stream_options")
    if value is None:
        return False
    if not isinstance(value, dict) or set(value) - {"include_usage"} or not isinstance(
            value.get("include_usage", False), bool):
        raise InvalidRequest("'stream_options' must be {\"include_usage\": true|false}",
                             "stream_options")
    if body.get("stream") is not True:
        raise InvalidRequest("'stream_options' is only allowed with \"stream\": true",
                             "stream_options")
    return bool(value.get("include_usage", False))


def _tools(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    value = body.get("tools")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidRequest(f"'tools' must be an array of up to {MAX_TOOLS} tools", "tools")
    names = set()
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or set(tool) - {
                "type", "function"} or not isinstance(function, dict):
            raise InvalidRequest(f"tools[{i}] must be {{\"type\": \"function\", \"function\": "
                                 "{name, description?, parameters?, strict?}}", "tools")
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in names:
            raise InvalidRequest(f"tools[{i}].function.name must be a unique name of 1 to 64 "
                                 "letters, digits, '_' or '-'", "tools")
        names.add(name)
        extra = set(function) - {"name", "description", "parameters", "strict"}
        if extra or not isinstance(function.get("description", ""), str) or not isinstance(
                function.get("parameters", {}), dict) or not isinstance(
                function.get("strict", False), bool | None):
            raise InvalidRequest(f"tools[{i}].function: description must be a string, "
                                 "parameters a JSON Schema object, strict a boolean"
                                 + (f"; unknown {sorted(extra)}" if extra else ""), "tools")
    return tuple(value)


def _tool_choice(body: dict[str, Any], tools: tuple[dict[str, Any], ...]
                 ) -> str | dict[str, Any] | None:
    value = body.get("tool_choice")
    if value is None:
        return None
    named = isinstance(value, dict) and value.get("type") == "function" and isinstance(
        value.get("function"), dict) and isinstance(value["function"].get("name"), str)
    if value not in _CHOICES and not named:
        raise InvalidRequest("'tool_choice' must be \"none\", \"auto\", \"required\" or "
                             "{\"type\": \"function\", \"function\": {\"name\": …}}",
                             "tool_choice")
    if value != "none" and not tools:
        raise InvalidRequest("'tool_choice' needs 'tools'", "tool_choice")
    if named and value["function"]["name"] not in {t["function"]["name"] for t in tools}:
        raise InvalidRequest(f"'tool_choice' names {value['function']['name']!r}, which is "
                             "not in 'tools'", "tool_choice")
    return value


def _parallel(body: dict[str, Any]) -> bool:
    value = body.get("parallel_tool_calls")
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"'parallel_tool_calls' must be a boolean, got {kind_of(value)}",
                             "parallel_tool_calls")
    return value is not False


def output(value: dict[str, Any] | None) -> Output:
    """A checked `response_format` as the internal answer shape."""
    if value is None or value["type"] == "text":
        return Output()
    if value["type"] == "json_object":
        return Output("json_object")
    spec = value["json_schema"]
    return Output("json_schema", name=spec["name"], schema=spec.get("schema", {}),
                  strict=bool(spec.get("strict")), description=spec.get("description"))


def tool(value: dict[str, Any]) -> Tool:
    """A checked OpenAI tool as the internal one."""
    fn = value["function"]
    return Tool(fn["name"], fn.get("description"), fn.get("parameters"), fn.get("strict"))


def tool_choice(value: str | dict[str, Any] | None) -> ToolChoice | None:
    """A checked `tool_choice` as the internal one."""
    if value is None:
        return None
    if isinstance(value, dict):
        return ToolChoice("named", value["function"]["name"])
    return ToolChoice(value)  # type: ignore[arg-type]


def sampling(body: dict[str, Any], **checked: Any) -> Sampling:
    """The request's sampling: `checked` fields (read by `request`) and the penalties and
    logit_bias read here."""
    return Sampling(logit_bias=logit_bias(body.get("logit_bias")),
                    presence_penalty=_penalty(body, "presence_penalty"),
                    frequency_penalty=_penalty(body, "frequency_penalty"), **checked)


def parse(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """The internal request's fields beyond sampling that a chat or completion body sets
    (absent ones at their defaults); `stream_options` is read by `stream_options`."""
    top = _logprobs(kind, body)
    stream_options(body)
    out: dict[str, Any] = dict(output=output(response_format(body.get("response_format"))),
                               logprobs=top[0], top_logprobs=top[1], n=_n(body))
    if kind == "chat":
        tools = _tools(body)
        out.update(tools=tuple(tool(t) for t in tools),
                   tool_choice=tool_choice(_tool_choice(body, tools)),
                   parallel_tool_calls=_parallel(body))
    return out
