"""A Responses body's `tools` and `tool_choice` as the internal ones (pure).

`function` tools are functions; `custom` (free-form) tools are functions of one string
(`freeform.parameters`). Tools only their own server can run (`fields.DROPPED_TOOLS`: web
search, image generation, hosted MCP, OpenAI's built-in shell and patch tools, MCP
namespaces) are not offered to the model at all: it cannot call them, so none is ever
answered as if it had run.
"""

from __future__ import annotations

import re
from typing import Any

from cerebrum.generation.request import Tool, ToolChoice

from . import freeform
from .errors import InvalidRequest, kind_of
from .fields import DROPPED_TOOLS

MAX_TOOLS = 128  # OpenAI's limit
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEYS = {"function": {"type", "name", "description", "parameters", "strict"},
         "custom": {"type", "name", "description", "format"}}
_SYNTAXES = ("lark", "regex")
_MODES = ("auto", "none", "required")


def _format(value: Any, where: str) -> dict[str, Any] | None:
    """A custom tool's format: text (the default) or a grammar."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("type") == "text" and set(value) == {"type"}:
        return value
    if (isinstance(value, dict) and value.get("type") == "grammar"
            and set(value) <= {"type", "syntax", "definition"}
            and value.get("syntax") in _SYNTAXES and isinstance(value.get("definition"), str)):
        return value
    raise InvalidRequest(f"{where} must be {{\"type\": \"text\"}} or {{\"type\": \"grammar\", "
                         "\"syntax\": \"lark\"|\"regex\", \"definition\": …}", where)


def _tool(value: dict[str, Any], kind: str, where: str) -> Tool:
    extra = set(value) - _KEYS[kind]
    if extra:
        raise InvalidRequest(f"{where} ({kind}) has a field this server does not honour: "
                             f"{sorted(extra)[0]!r}", where)
    name = value.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(f"{where}.name must be 1 to 64 letters, digits, '_' or '-'",
                             f"{where}.name")
    description = value.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"{where}.description must be a string", f"{where}.description")
    if kind == "custom":
        return Tool(name, description, freeform.parameters(_format(value.get("format"),
                                                                    f"{where}.format")),
                    freeform=True)
    parameters, strict = value.get("parameters"), value.get("strict")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"{where}.parameters must be a JSON Schema object",
                             f"{where}.parameters")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequest(f"{where}.strict must be a boolean", f"{where}.strict")
    return Tool(name, description, parameters, strict)


def tools(value: Any) -> tuple[Tool, ...]:
    """The tools offered to the model: functions and free-form tools, the others dropped."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidRequest(f"'tools' must be an array of up to {MAX_TOOLS} tools", "tools")
    out: list[Tool] = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in DROPPED_TOOLS:
            continue
        if kind not in _KEYS:
            raise InvalidRequest(f"{where}.type must be function or custom (tools of type "
                                 f"{', '.join(DROPPED_TOOLS)} are not offered), got {kind!r}",
                                 f"{where}.type", "unsupported_tool")
        made = _tool(tool, kind, where)
        if any(t.name == made.name for t in out):
            raise InvalidRequest(f"{where}.name {made.name!r} is not unique", f"{where}.name")
        out.append(made)
    return tuple(out)


def tool_choice(value: Any, offered: tuple[Tool, ...]) -> ToolChoice | None:
    """auto, none, required, or a named function or custom tool of those offered."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _MODES:
            raise InvalidRequest("'tool_choice' must be auto, none, required or {type: "
                                 "function|custom, name}", "tool_choice")
        if value == "required" and not offered:
            raise InvalidRequest("'tool_choice' is required, but no tool is offered (tools of "
                                 f"type {', '.join(DROPPED_TOOLS)} are not)", "tool_choice")
        return ToolChoice(value) if offered else None  # type: ignore[arg-type]
    if not isinstance(value, dict):
        raise InvalidRequest(f"'tool_choice' must be a string or an object, got "
                             f"{kind_of(value)}", "tool_choice")
    kind, name = value.get("type"), value.get("name")
    if kind not in ("function", "custom") or set(value) != {"type", "name"} or not isinstance(
            name, str):
        raise InvalidRequest(f"'tool_choice' of type {kind!r} is not supported: name a "
                             "function or custom tool ({type: function|custom, name}); "
                             f"tools of type {', '.join(DROPPED_TOOLS)} are not offered",
                             "tool_choice", "unsupported_tool")
    if not any(t.name == name and t.freeform == (kind == "custom") for t in offered):
        raise InvalidRequest(f"'tool_choice' names the {kind} tool {name!r}, which is not "
                             "among the tools offered", "tool_choice")
    return ToolChoice("named", name)
