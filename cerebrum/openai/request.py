"""OpenAI chat and text completion requests (pure): validation into the one internal request
(`cerebrum.generation.request.Request`).

Both tiers parse with `parse`; `tier` says whose rules (`fields.FIELDS`) apply to the fields
the backend refuses: the backend refuses them, the orchestrator leaves them to its upstream.
Every error is an InvalidRequest naming the field.
"""

from __future__ import annotations

from typing import Any

from cerebrum.generation.checks import (
    MAX_FIM_STOPS,
    MAX_STOPS,
    NUMBERS,
    boolean,
    json_object,
    max_tokens,
    model,
    number,
    seed,
    stop,
    stream,
    top_k,
)
from cerebrum.generation.request import Request, ToolCall, Turn

from . import options as opts
from .errors import InvalidRequest, kind_of
from .fields import FIELDS, REFUSED, Kind, Tier

ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_MESSAGES = 1024  # far beyond any context window; bounds the chat template's work
MAX_METADATA = 16  # OpenAI's limit on metadata pairs
# Keys a message may have, by role; tool calls only where tool calling is honoured.
_MESSAGE_KEYS = frozenset({"role", "content"})
_TOOL_KEYS = {"assistant": "tool_calls", "tool": "tool_call_id"}


def text_parts(content: Any) -> str | None:
    """A string, or an array of OpenAI text parts joined; None when it is neither."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    return None


def prediction_text(value: Any) -> str | None:
    """The text of OpenAI's `prediction` (Predicted Outputs: {"type": "content", "content":
    a string or text parts}); None when `value` is not one."""
    if not isinstance(value, dict) or value.get("type") != "content" or set(value) - {
            "type", "content"}:
        return None
    return text_parts(value.get("content"))


def prediction(body: dict[str, Any]) -> str:
    """The text of the request's `prediction`, "" when absent."""
    value = body.get("prediction")
    if value is None:
        return ""
    text = prediction_text(value)
    if text is None:
        raise InvalidRequest("'prediction' must be {\"type\": \"content\", \"content\": a "
                             "string or an array of text parts}", "prediction")
    return text


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None and message["role"] == "assistant":
        return ""  # an assistant turn that only called tools
    if isinstance(content, list) and any(not isinstance(p, dict) or p.get("type") != "text"
                                         for p in content):
        raise InvalidRequest(f"messages[{i}].content must be a string or an array of text "
                             "parts: only text parts are supported", "messages")
    text = text_parts(content)
    if text is None:
        raise InvalidRequest(f"messages[{i}].content must be a string or an array of text "
                             "parts", "messages")
    return text


def _tool_calls(value: Any, i: int) -> tuple[ToolCall, ...]:
    if not isinstance(value, list):
        raise InvalidRequest(f"messages[{i}].tool_calls must be an array", "messages")
    calls = []
    for j, call in enumerate(value):
        fn = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)
                and isinstance(fn.get("arguments", "{}"), str)
                and isinstance(call.get("id", ""), str)):
            raise InvalidRequest(f"messages[{i}].tool_calls[{j}] must be {{id, type: "
                                 "\"function\", function: {name, arguments: a JSON string}}",
                                 "messages")
        calls.append(ToolCall(call.get("id") or "", fn["name"], fn.get("arguments") or "{}"))
    return tuple(calls)


def _message(message: Any, i: int, tools: bool) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"messages[{i}] must be an object", "messages")
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"messages[{i}].role must be one of {', '.join(ROLES)}",
                             "messages")
    tool_key = _TOOL_KEYS.get(role)
    for key in message:
        if key in _MESSAGE_KEYS or (key == tool_key and message[key] is None):
            continue
        if key == tool_key and not tools:
            raise InvalidRequest(f"messages[{i}].{key}: tool calling is not supported "
                                 "(see 'tools')", "messages")
        if key != tool_key:
            raise InvalidRequest(f"messages[{i}] has a field this server does not honour: "
                                 f"'{key}'", "messages")
    out = {**message, "content": _content(message, i)}
    return {k: v for k, v in out.items() if v is not None or k == "content"}


def _turn(message: dict[str, Any], i: int) -> Turn:
    role = message["role"]
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise InvalidRequest(f"messages[{i}].tool_call_id is required: the id of the call "
                                 "this answers", "messages")
        return Turn("tool", message["content"], call_id=call_id)
    calls = message.get("tool_calls")
    return Turn(role, message["content"],
                tool_calls=_tool_calls(calls, i) if calls is not None else ())


def messages(body: dict[str, Any], tools: bool = False) -> tuple[dict[str, Any], ...]:
    """The conversation as OpenAI messages: roles checked, content as text; `tools`: tool-call
    keys allowed."""
    value = body.get("messages")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' is required: a non-empty array of {role, content}",
                             "messages")
    if len(value) > MAX_MESSAGES:
        raise InvalidRequest(f"'messages' has {len(value)} entries; at most {MAX_MESSAGES} "
                             "are accepted", "messages")
    return tuple(_message(m, i, tools) for i, m in enumerate(value))


def turns(messages: tuple[dict[str, Any], ...]) -> tuple[Turn, ...]:
    """Checked messages (`messages`) as the internal conversation."""
    return tuple(_turn(m, i) for i, m in enumerate(messages))


def chat_messages(conversation: tuple[Turn, ...]) -> list[dict[str, Any]]:
    """The internal conversation as OpenAI messages (what an upstream of this format gets)."""
    out: list[dict[str, Any]] = []
    for turn in conversation:
        message: dict[str, Any] = {"role": turn.role, "content": turn.text}
        if turn.tool_calls:
            message["content"] = turn.text or None
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in turn.tool_calls]
        if turn.call_id is not None:
            message["tool_call_id"] = turn.call_id
        out.append(message)
    return out


def _prompt(body: dict[str, Any], suffix: str | None) -> str:
    value = body.get("prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str):
        raise InvalidRequest("'prompt' is required: a string", "prompt")
    if not value and suffix is None:
        raise InvalidRequest("'prompt' is empty", "prompt")
    return value


def _suffix(body: dict[str, Any]) -> str | None:
    value = body.get("suffix")
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'suffix' must be a string, got {kind_of(value)}", "suffix")
    return value


def _no_ops(body: dict[str, Any]) -> None:
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest(f"'user' must be a string, got {kind_of(user)}", "user")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > MAX_METADATA
                                 or not all(isinstance(v, str) for v in metadata.values())):
        raise InvalidRequest(f"'metadata' must be an object of up to {MAX_METADATA} string "
                             "values", "metadata")


def check_fields(kind: Kind, body: dict[str, Any], tier: Tier) -> None:
    """A 400 naming the first field that is unknown, or that `tier` refuses (unless its value
    asks for nothing); fields the orchestrator passes through are its upstream's to judge."""
    endpoint = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
    for key, value in body.items():
        field = FIELDS.get(key)
        if field is None or kind not in field.kinds:
            raise InvalidRequest(f"unknown field '{key}' for {endpoint}", key,
                                 "unknown_parameter")
        if value is None or field.status(tier) != REFUSED or field.is_neutral(value):
            continue
        raise InvalidRequest(f"'{key}' is not supported: {field.why}", key,
                             "unsupported_parameter")


def parse(kind: Kind, body: Any, max_tokens_cap: int, tier: Tier = "backend",
          max_stops: int = MAX_STOPS) -> Request:
    """Validate a chat or text completion request under `tier`'s rules into the internal
    request."""
    body = json_object(body)
    check_fields(kind, body, tier)
    _no_ops(body)
    numbers = {key: number(body, key, lo, hi) for key, (lo, hi) in NUMBERS.items()}
    options = opts.parse(kind, body)
    sampling = opts.sampling(body, top_k=top_k(body), seed=seed(body), **numbers)
    common = dict(model=model(body), stream=stream(body), max_tokens=max_tokens(
        body, max_tokens_cap), sampling=sampling, prediction=prediction(body),
        speculative=boolean(body, "speculative"), **options)
    if kind == "chat":
        tools = FIELDS["tools"].status(tier) != REFUSED
        return Request(kind="chat", turns=turns(messages(body, tools)),
                       stop=stop(body, max_stops), **common)
    suffix = _suffix(body)
    return Request(kind="completion", prompt=_prompt(body, suffix), suffix=suffix,
                   stop=stop(body, max_stops if suffix is None else MAX_FIM_STOPS), **common)
