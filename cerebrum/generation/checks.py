"""Checks of JSON request fields that every wire format's parser shares (pure): each returns
the value, None when absent, or raises an InvalidRequest naming the field."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, kind_of

MAX_STOPS = 4  # OpenAI's limit
# Fill in the middle: editors send their FIM template's stops (Continue's Qwen template with
# its common stops: 12); llama-server sets no limit.
MAX_FIM_STOPS = 16
MAX_STOP_CHARS = 256  # the stop scanner holds back up to this much text per token
MAX_TOP_K = 2**31 - 1  # llama.cpp reads it as a C int
# Ranges of the number fields both tiers check.
NUMBERS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
           "repeat_penalty": (0.0, 10.0)}


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


