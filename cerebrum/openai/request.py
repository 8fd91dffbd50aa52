"""OpenAI chat and text completion requests (pure): validation into one typed request.

Both tiers parse with `parse`; `tier` says whose rules (`fields.FIELDS`) apply to the fields
the backend refuses: the backend refuses them, the orchestrator leaves them to its upstream.
Every error is an InvalidRequest naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import options as opts
from .errors import InvalidRequest, kind_of
from .fields import FIELDS, REFUSED, Kind, Tier

ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_STOPS = 4  # OpenAI's limit
# Fill in the middle (completions with suffix): editors send their FIM template's stops
# (Continue's Qwen template with its common stops: 12); llama-server sets no limit.
MAX_FIM_STOPS = 16
MAX_STOP_CHARS = 256  # the stop scanner holds back up to this much text per token
MAX_MESSAGES = 1024  # far beyond any context window; bounds the chat template's work
MAX_TOP_K = 2**31 - 1  # llama.cpp reads it as a C int
MAX_METADATA = 16  # OpenAI's limit on metadata pairs
# Ranges of the number fields both tiers check.
NUMBERS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
           "repeat_penalty": (0.0, 10.0)}
# Keys a message may have, by role; tool calls only where tool calling is honoured.
_MESSAGE_KEYS = frozenset({"role", "content"})
_TOOL_KEYS = {"assistant": "tool_calls", "tool": "tool_call_id"}


@dataclass(frozen=True)
class Request:
    """A validated chat or text completion request; None where the client sent nothing."""

    kind: Kind
    model: str | None
    stream: bool
    messages: tuple[dict[str, Any], ...] = ()  # chat: role as sent, content as text
    prompt: str = ""
    suffix: str | None = None  # completions: fill in the middle between prompt and suffix
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None  # as sent: 64 bits
    prediction: str = ""  # OpenAI's Predicted Outputs: text the answer will largely repeat
    speculative: bool | None = None  # None: the model's default
    options: opts.Options = field(default_factory=opts.Options)  # response_format, n, …

    @property
    def content(self) -> str:
        """The text a context pipeline works on: the last user message, or the prompt."""
        if self.kind == "completion":
            return self.prompt
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def json_object(body: Any) -> dict[str, Any]:
    """The body, when it is a JSON object."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {kind_of(body)}")
    return body


def number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    """A number field in [lo, hi], or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number, got {kind_of(value)}", key)
    if not lo <= value <= hi:
        raise InvalidRequest(f"'{key}' must be between {lo} and {hi}, got {value}", key)
    return float(value)


def integer(body: dict[str, Any], key: str) -> int | None:
    """An integer field, or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"'{key}' must be an integer, got {kind_of(value)}", key)
    return value


def boolean(body: dict[str, Any], key: str) -> bool | None:
    """A boolean field, or None when absent."""
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be a boolean, got {kind_of(value)}", key)
    return value


def model(body: dict[str, Any]) -> str | None:
    """The requested model name, or None when absent."""
    value = body.get("model")
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest("'model' must be a non-empty string", "model")
    return value


def stream(body: dict[str, Any]) -> bool:
    """Whether to stream (default false)."""
    return bool(boolean(body, "stream"))


def stop(body: dict[str, Any], limit: int = MAX_STOPS) -> tuple[str, ...]:
    """Up to `limit` non-empty stop strings of at most MAX_STOP_CHARS."""
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (not isinstance(stops, list) or len(stops) > limit
            or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops)):
        raise InvalidRequest(f"'stop' must be a non-empty string or an array of up to {limit} "
                             f"non-empty strings of at most {MAX_STOP_CHARS} characters", "stop")
    return tuple(stops)


def max_tokens(body: dict[str, Any], cap: int) -> int | None:
    """`max_tokens` (or `max_completion_tokens`) in 1..cap, or None when absent."""
    value = integer(body, "max_tokens")
    if value is None:
        value = integer(body, "max_completion_tokens")
    if value is not None and not 1 <= value <= cap:
        raise InvalidRequest(f"'max_tokens' must be between 1 and {cap}, got {value}",
                             "max_tokens")
    return value


def top_k(body: dict[str, Any]) -> int | None:
    """llama.cpp's top_k, 0 (off) to MAX_TOP_K."""
    value = integer(body, "top_k")
    if value is not None and not 0 <= value <= MAX_TOP_K:
        raise InvalidRequest(f"'top_k' must be between 0 and {MAX_TOP_K}, got {value}", "top_k")
    return value


def seed(body: dict[str, Any]) -> int | None:
    """A 64-bit seed, signed or not."""
    value = integer(body, "seed")
    if value is not None and not -(2**63) <= value < 2**64:
        raise InvalidRequest("'seed' must be a 64-bit integer", "seed")
    return value


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


def messages(body: dict[str, Any], tools: bool = False) -> tuple[dict[str, Any], ...]:
    """The conversation: roles checked, content as text; `tools`: tool-call keys allowed."""
    value = body.get("messages")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' is required: a non-empty array of {role, content}",
                             "messages")
    if len(value) > MAX_MESSAGES:
        raise InvalidRequest(f"'messages' has {len(value)} entries; at most {MAX_MESSAGES} "
                             "are accepted", "messages")
    return tuple(_message(m, i, tools) for i, m in enumerate(value))


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
    """Validate a chat or text completion request under `tier`'s rules."""
    body = json_object(body)
    check_fields(kind, body, tier)
    _no_ops(body)
    numbers = {key: number(body, key, lo, hi) for key, (lo, hi) in NUMBERS.items()}
    common = dict(model=model(body), stream=stream(body), max_tokens=max_tokens(
        body, max_tokens_cap), top_k=top_k(body), seed=seed(body), prediction=prediction(body),
        speculative=boolean(body, "speculative"), options=opts.parse(kind, body), **numbers)
    if kind == "chat":
        tools = FIELDS["tools"].status(tier) != REFUSED
        return Request(kind="chat", messages=messages(body, tools), stop=stop(body, max_stops),
                       **common)
    suffix = _suffix(body)
    return Request(kind="completion", prompt=_prompt(body, suffix), suffix=suffix,
                   stop=stop(body, max_stops if suffix is None else MAX_FIM_STOPS), **common)
