"""The OpenAI wire format's shared pieces."""

from __future__ import annotations

import json
from typing import Any


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {message, type, code, param}}."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


class InvalidBody(ValueError):
    """A request body that is not UTF-8 JSON; `code` is the OpenAI-style error code."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def decode_json(raw: bytes) -> Any:
    """Parse a request body as UTF-8 JSON, or say which of the two it is not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"request body is not valid UTF-8 (byte {exc.start})",
                          "invalid_encoding") from None
    if not text.strip():
        raise InvalidBody("request body is empty; expected a JSON object", "invalid_json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBody(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}", "invalid_json") from None
