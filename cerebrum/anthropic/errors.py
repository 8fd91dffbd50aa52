"""Anthropic's error shape; the errors themselves are no format's
(`cerebrum.generation.errors`).

`{"type": "error", "error": {"type": …, "message": …}}`, its `type` from the HTTP status as
Anthropic's API pairs them. A prompt that does not fit the model's context is said the way
Anthropic says it ("prompt is too long: …"): Claude Code compacts its conversation on that
message (a 400 before the stream, or an `error` event in it) instead of retrying or giving up.
"""

from __future__ import annotations

from typing import Any

from cerebrum.generation.errors import InvalidBody, InvalidRequest, kind_of

__all__ = ["InvalidBody", "InvalidRequest", "error_body", "error_type", "invalid",
           "kind_of", "prompt_too_long"]

# Anthropic's error types by HTTP status (its API's "Errors" page); 503 is Cerebrum's answer
# when it sheds load, which Anthropic's clients know as overloaded (529) and retry.
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
         500: "api_error", 503: "overloaded_error", 504: "timeout_error",
         529: "overloaded_error"}


def error_type(status: int) -> str:
    """The error type of an HTTP status: its own, else any 4xx is an invalid request and
    anything else an API error."""
    return TYPES.get(status) or ("invalid_request_error" if 400 <= status < 500
                                 else "api_error")


def error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    """The error body of an HTTP status (and of a stream's `error` event)."""
    out: dict[str, Any] = {"type": "error",
                           "error": {"type": error_type(status), "message": message}}
    if request_id is not None:
        out["request_id"] = request_id
    return out


def invalid(exc: InvalidRequest, request_id: str | None = None) -> dict[str, Any]:
    """A refused request's 400 body (the message names the field)."""
    return error_body(400, str(exc), request_id)


def prompt_too_long(tokens: int, maximum: int) -> str:
    """Anthropic's words for a conversation past the context, which Claude Code acts on."""
    return f"prompt is too long: {tokens} tokens > {maximum} maximum"
