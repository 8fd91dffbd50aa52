"""Anthropic Messages requests (pure): `POST /v1/messages` (`parse`) and `POST
/v1/messages/count_tokens` (`parse_count_tokens`) validated into the one internal request
(`cerebrum.generation.request.Request`, kind "chat").

Each field's fate is in `fields.FIELDS`; the conversation's in `blocks`, the tools' in
`tools`. Every error is an InvalidRequest naming the field.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from cerebrum.generation.checks import (
    MAX_STOP_CHARS,
    integer,
    json_object,
    number,
    stream,
    top_k,
)
from cerebrum.generation.request import Output, Request, Sampling

from . import blocks
from . import tools as tooling
from .errors import InvalidRequest, kind_of
from .fields import FIELDS, PATHS, REFUSED, Endpoint, Tier

MAX_TOKENS = 2**31 - 1  # llama.cpp reads it as a C int; the tier clips it to the context
MAX_STOP_SEQUENCES = 16
MIN_THINKING_BUDGET = 1024  # Anthropic's
MAX_USER_ID = 512
EFFORTS = ("low", "medium", "high", "xhigh", "max")
SERVICE_TIERS = ("auto", "standard_only")
SPEEDS = ("standard", "fast")


def check_fields(endpoint: Endpoint, body: dict[str, Any], tier: Tier) -> None:
    """A 400 naming the first field that is unknown, or that `tier` refuses (unless its value
    asks for nothing)."""
    for key, value in body.items():
        field = FIELDS.get(key)
        if field is None or endpoint not in field.kinds:
            raise InvalidRequest(f"unknown field '{key}' for {PATHS[endpoint]}", key,
                                 "unknown_parameter")
        if field.status(tier) == REFUSED and not field.is_neutral(value):
            raise InvalidRequest(f"'{key}' is not supported: {field.why}", key,
                                 "unsupported_parameter")


def _model(body: dict[str, Any]) -> str:
    value = body.get("model")
    if not isinstance(value, str) or not value:
        raise InvalidRequest("'model' is required: a non-empty string", "model")
    return value


def _max_tokens(body: dict[str, Any]) -> int:
    value = integer(body, "max_tokens")
    if value is None:
        raise InvalidRequest("'max_tokens' is required: the most tokens to answer with",
                             "max_tokens")
    if not 1 <= value <= MAX_TOKENS:
        raise InvalidRequest(f"'max_tokens' must be between 1 and {MAX_TOKENS}, got {value}",
                             "max_tokens")
    return value


def _stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop_sequences")
    if value is None:
        return ()
    if (not isinstance(value, list) or len(value) > MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in value)):
        raise InvalidRequest(f"'stop_sequences' must be an array of up to "
                             f"{MAX_STOP_SEQUENCES} non-empty strings of at most "
                             f"{MAX_STOP_CHARS} characters", "stop_sequences")
    return tuple(value)


def _thinking(body: dict[str, Any], max_tokens: int | None) -> None:
    """Check `thinking` (a no-op: the models do not reason in hidden tokens)."""
    value = body.get("thinking")
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    keys = {"enabled": {"type", "budget_tokens", "display"}, "adaptive": {"type", "display"},
            "disabled": {"type"}, "between_tools": {"type"}}.get(str(kind))
    if keys is None or set(value) - keys:
        raise InvalidRequest("'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": "
                             "…}, {\"type\": \"adaptive\"}, {\"type\": \"disabled\"} or "
                             "{\"type\": \"between_tools\"}", "thinking")
    if value.get("display") not in (None, "summarized", "omitted"):
        raise InvalidRequest("'thinking.display' must be \"summarized\" or \"omitted\"",
                             "thinking")
    if kind != "enabled":
        return
    budget = value.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(f"'thinking.budget_tokens' must be an integer of at least "
                             f"{MIN_THINKING_BUDGET}", "thinking")
    if max_tokens is not None and budget >= max_tokens:
        raise InvalidRequest("'thinking.budget_tokens' must be less than 'max_tokens'",
                             "thinking")


def _output(body: dict[str, Any]) -> Output:
    value = body.get("output_config")
    if value is None:
        return Output()
    if not isinstance(value, dict) or set(value) - {"effort", "format"}:
        raise InvalidRequest("'output_config' must be an object of 'effort' and 'format'",
                             "output_config")
    if value.get("effort") not in (None, *EFFORTS):
        raise InvalidRequest(f"'output_config.effort' must be one of {', '.join(EFFORTS)}",
                             "output_config")
    spec = value.get("format")
    if spec is None:
        return Output()
    if not (isinstance(spec, dict) and spec.get("type") == "json_schema"
            and set(spec) <= {"type", "schema"} and isinstance(spec.get("schema"), dict)):
        raise InvalidRequest("'output_config.format' must be {\"type\": \"json_schema\", "
                             "\"schema\": {…}}", "output_config")
    return Output("json_schema", schema=spec["schema"], strict=True)


def _context_management(body: dict[str, Any]) -> None:
    """Check `context_management` (a no-op: the conversation is used as sent)."""
    value = body.get("context_management")
    if value is None:
        return
    edits = value.get("edits", []) if isinstance(value, dict) else None
    if (not isinstance(value, dict) or set(value) - {"edits"} or not isinstance(edits, list)
            or not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in edits)):
        raise InvalidRequest("'context_management' must be {\"edits\": [{\"type\": …}, …]}",
                             "context_management")


def session_key(user_id: str) -> str | None:
    """The session in a `metadata.user_id`: Claude Code's JSON (`{"device_id", "account_uuid",
    "session_id"}`, since 2.1.78) or its older `user_…_account_…_session_<id>`; else the id
    as it is."""
    try:
        value = json.loads(user_id)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("session_id"), str) and value[
            "session_id"]:
        return str(value["session_id"])
    _, marker, session = user_id.rpartition("_session_")
    return session if marker and session else user_id or None


def _cache_key(body: dict[str, Any]) -> str | None:
    value = body.get("metadata")
    if value is None:
        return None
    user_id = value.get("user_id") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or set(value) - {"user_id"}
            or not isinstance(user_id, str | None) or len(user_id or "") > MAX_USER_ID):
        raise InvalidRequest(f"'metadata' must be {{\"user_id\": a string of up to "
                             f"{MAX_USER_ID} characters}}", "metadata")
    return session_key(user_id) if user_id else None


def _no_ops(body: dict[str, Any]) -> None:
    """Check the fields that do not change the answer."""
    blocks.cache_control(body.get("cache_control"), "", "cache_control")
    for key, values in (("service_tier", SERVICE_TIERS), ("speed", SPEEDS)):
        if body.get(key) not in (None, *values):
            raise InvalidRequest(f"'{key}' must be one of {', '.join(values)}", key)
    if not isinstance(body.get("inference_geo"), str | None):
        raise InvalidRequest(f"'inference_geo' must be a string, got "
                             f"{kind_of(body['inference_geo'])}", "inference_geo")
    diagnostics = body.get("diagnostics")
    if diagnostics is not None and not (
            isinstance(diagnostics, dict) and set(diagnostics) <= {"previous_message_id"}
            and isinstance(diagnostics.get("previous_message_id"), str | None)):
        raise InvalidRequest("'diagnostics' must be {\"previous_message_id\": a string}",
                             "diagnostics")


def _sampling(body: dict[str, Any]) -> Sampling:
    return Sampling(temperature=number(body, "temperature", 0.0, 1.0),
                    top_p=number(body, "top_p", 0.0, 1.0), top_k=top_k(body))


def _common(endpoint: Endpoint, body: Any, tier: Tier) -> tuple[dict[str, Any], Request]:
    body = json_object(body)
    check_fields(endpoint, body, tier)
    _no_ops(body)
    _context_management(body)
    offered = tooling.tools(body)
    choice, parallel = tooling.tool_choice(body, offered)
    request = Request(kind="chat", model=_model(body), stream=False,
                      turns=blocks.conversation(body), output=_output(body), tools=offered,
                      tool_choice=choice, parallel_tool_calls=parallel)
    return body, request


def parse(body: Any, tier: Tier = "backend") -> Request:
    """Validate a `/v1/messages` body under `tier`'s rules into the internal request."""
    body, request = _common("messages", body, tier)
    max_tokens = _max_tokens(body)
    _thinking(body, max_tokens)
    return replace(request, stream=stream(body), max_tokens=max_tokens,
                   stop=_stop_sequences(body), sampling=_sampling(body),
                   cache_key=_cache_key(body))


def parse_count_tokens(body: Any, tier: Tier = "backend") -> Request:
    """Validate a `/v1/messages/count_tokens` body into the request whose prompt is counted
    (no answer: no max_tokens, no stream)."""
    body, request = _common("count_tokens", body, tier)
    _thinking(body, None)
    return request
