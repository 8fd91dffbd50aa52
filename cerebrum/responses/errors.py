"""The Responses API's error shape; the errors themselves are no format's
(`cerebrum.generation.errors`)."""

from __future__ import annotations

from typing import Any

from cerebrum.generation.errors import InvalidBody, InvalidRequest, kind_of

__all__ = ["InvalidBody", "InvalidRequest", "error_body", "invalid_request_body", "kind_of"]


def error_body(message: str, type_: str, code: str | None,
               param: str | None = None) -> dict[str, Any]:
    """The Responses API's error body: {"error": {message, type, param, code}}."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def invalid_request_body(exc: InvalidRequest) -> dict[str, Any]:
    """A refused request's 400 body, naming the field (`param`) it refuses."""
    return error_body(str(exc), "invalid_request_error", exc.code, exc.param)
