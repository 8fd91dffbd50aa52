"""The OpenAI wire format's shared pieces."""

from __future__ import annotations

from typing import Any


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {message, type, code, param}}."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}
