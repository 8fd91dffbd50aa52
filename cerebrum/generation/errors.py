"""A request a wire format refuses, in no format's shape: each format renders it as its own
error body, each tier as its 400."""

from __future__ import annotations

from typing import Any


class InvalidRequest(ValueError):
    """A request the wire format refuses: a 400 whose `param` names the field."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_request"):
        super().__init__(message)
        self.param = param
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the pipeline's process boundary
        return type(self), (str(self), self.param, self.code)


class InvalidBody(InvalidRequest):
    """A request body that is not UTF-8 JSON (or too deep, …); `code` says which."""

    def __init__(self, message: str, code: str):
        super().__init__(message, None, code)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.code)


def kind_of(value: Any) -> str:
    """A JSON value's type, as error messages name it."""
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "integer", float: "number", type(None): "null"}.get(type(value), "value")
