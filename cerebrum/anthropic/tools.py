"""Anthropic's `tools` and `tool_choice` (pure), into the internal ones.

A custom tool (no `type`, or `"custom"`) is a function with a JSON schema, as every tier
runs them. Anthropic's own tools (`web_search_20250305`, `bash_20250124`,
`text_editor_20250728`, `code_execution_…`, `memory_…`, `tool_search_…`, …) are either run
by Anthropic's servers or defined by schemas only Claude knows: this server can do neither,
so they are a 400 naming the tool's type. Claude Code sends `web_search_…` only in the
request its WebSearch tool makes, and a refusal there reaches the model as that tool's
error, which is the truth; dropping the tool would have the model answer as if it had
searched.
"""

from __future__ import annotations

import re
from typing import Any

from cerebrum.generation.request import Tool, ToolChoice

from .blocks import cache_control
from .errors import InvalidRequest, kind_of

MAX_TOOLS = 512  # far above Claude Code's ~20 tools with a few MCP servers' beside them
_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_KEYS = {"type", "name", "description", "input_schema", "cache_control", "strict",
         "eager_input_streaming", "defer_loading", "input_examples", "allowed_callers"}
_CHOICES = {"auto": "auto", "any": "required", "tool": "named", "none": "none"}


def _refuse(i: int, message: str) -> InvalidRequest:
    return InvalidRequest(f"tools[{i}]{message}", "tools")


def _tool(value: Any, i: int) -> Tool:
    if not isinstance(value, dict):
        raise _refuse(i, f" must be an object, got {kind_of(value)}")
    kind = value.get("type")
    if kind not in (None, "custom"):
        raise _refuse(i, f": '{kind}' is one of Anthropic's server tools "
                      f"({value.get('name', 'unnamed')}): this server cannot run it; "
                      "offer it as a custom tool with an input_schema")
    extra = sorted(set(value) - _KEYS)
    if extra:
        raise _refuse(i, f" has a field this server does not know: '{extra[0]}'")
    name = value.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _refuse(i, ".name must be 1 to 128 letters, digits, '_' or '-'")
    description = value.get("description")
    if description is not None and not isinstance(description, str):
        raise _refuse(i, ".description must be a string")
    schema = value.get("input_schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _refuse(i, ".input_schema is required: a JSON Schema of \"type\": \"object\"")
    strict = value.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _refuse(i, ".strict must be a boolean")
    cache_control(value.get("cache_control"), f"tools[{i}]", "tools")
    if not isinstance(value.get("eager_input_streaming", False), bool | None):
        raise _refuse(i, ".eager_input_streaming must be a boolean")
    if value.get("defer_loading", False) is not False:
        raise _refuse(i, ".defer_loading: only false: every tool is shown to the model (this "
                      "server has no tool search)")
    if value.get("input_examples", []) != []:
        raise _refuse(i, ".input_examples are not supported: put examples in the "
                      "description")
    if value.get("allowed_callers", ["direct"]) != ["direct"]:
        raise _refuse(i, ".allowed_callers: only [\"direct\"]: this server runs no code "
                      "execution")
    return Tool(name, description, schema, strict)


def tools(body: dict[str, Any]) -> tuple[Tool, ...]:
    """The custom tools offered, checked."""
    value = body.get("tools")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidRequest(f"'tools' must be an array of up to {MAX_TOOLS} tools", "tools")
    out = tuple(_tool(t, i) for i, t in enumerate(value))
    names = [t.name for t in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _refuse(i, f".name {name!r} is offered twice")
    return out


def tool_choice(body: dict[str, Any], offered: tuple[Tool, ...]) -> tuple[ToolChoice | None,
                                                                          bool]:
    """The internal tool choice (None: the default) and whether calls may be parallel."""
    value = body.get("tool_choice")
    if value is None:
        return None, True
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in _CHOICES:
        raise InvalidRequest("'tool_choice' must be {\"type\": \"auto\" | \"any\" | \"none\"} "
                             "or {\"type\": \"tool\", \"name\": …}", "tool_choice")
    keys = {"type"} | ({"name"} if kind == "tool" else set()) | (
        {"disable_parallel_tool_use"} if kind != "none" else set())
    extra = sorted(set(value) - keys)
    if extra:
        raise InvalidRequest(f"'tool_choice' of type {kind} has a field it does not take: "
                             f"'{extra[0]}'", "tool_choice")
    single = value.get("disable_parallel_tool_use", False)
    if not isinstance(single, bool):
        raise InvalidRequest("'tool_choice.disable_parallel_tool_use' must be a boolean",
                             "tool_choice")
    if kind != "none" and not offered:
        raise InvalidRequest(f"'tool_choice' {kind} needs 'tools'", "tool_choice")
    name = value.get("name")
    if kind == "tool" and name not in [t.name for t in offered]:
        raise InvalidRequest(f"'tool_choice' names {name!r}, which is not in 'tools'",
                             "tool_choice")
    return ToolChoice(_CHOICES[kind], name), not single  # type: ignore[arg-type]
