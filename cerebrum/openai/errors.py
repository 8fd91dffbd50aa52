"""The OpenAI wire format's error shape; the errors themselves are no format's
(`cerebrum.generation.errors`)."""

from __future__ import annotations

from typing import Any

from cerebrum.generation.errors import InvalidBody, InvalidRequest, kind_of

__all__ = ["InvalidBody", "InvalidRequest", "error_body", "kind_of"]


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {message, type, code, param}}."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}
