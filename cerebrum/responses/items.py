"""A Responses body's `instructions` and `input` items as the internal conversation (pure).

Items in, turns out: user, system and developer messages are turns of their own; a run of
assistant-side items (reasoning, an assistant message, its calls) becomes one assistant turn,
carrying the reasoning summary as its `reasoning` and the calls as its tool calls; every
call's output is a tool turn answering its `call_id`. A new assistant turn starts where a
response would: at a reasoning item or an assistant message after text or calls.

What this server cannot honour is a 400 naming the item (`input[i]`) or its part
(`input[i].content[j]`): images, files and audio (the models read text), web_search_call (its
results exist only where the search ran), item_reference and compaction (stored or
encrypted state). A local_shell_call, which only OpenAI's models make, is carried as a call of
a tool `local_shell` with its action's JSON, so its output still answers a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cerebrum.generation.request import ToolCall, Turn
from cerebrum.jsonwire import dumps

from .errors import InvalidRequest, kind_of

MAX_ITEMS = 4096  # a long agent session: two items per tool call; bounds the template's work
ROLES = ("user", "system", "developer", "assistant")
LOCAL_SHELL = "local_shell"  # the name a local_shell_call is carried under
_TEXT_PARTS = ("input_text", "output_text")
_NOT_TEXT = ("input_image", "input_file", "input_audio")
_KEYS: dict[str, frozenset[str]] = {k: frozenset(v) | {"type", "id", "status"} for k, v in {
    "message": {"role", "content", "phase"},
    "reasoning": {"summary", "content", "encrypted_content"},
    "function_call": {"call_id", "name", "arguments"},
    "custom_tool_call": {"call_id", "name", "input"},
    "local_shell_call": {"call_id", "action"},
    "function_call_output": {"call_id", "output"},
    "custom_tool_call_output": {"call_id", "output"},
    "local_shell_call_output": {"output"},
}.items()}
_REFUSED = {
    "web_search_call": "a web search ran where the response was made; its results are not in "
                       "the item, so the conversation cannot go on here",
    "item_reference": "it refers to a stored item, and nothing is stored: send the item itself",
    "compaction": "its encrypted_content is readable only where it was made",
}


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string, got {kind_of(value)}", where)
    return value


def _parts(content: Any, where: str, allowed: tuple[str, ...] = _TEXT_PARTS) -> str:
    """A string, or text parts joined; other parts are a 400 naming their type."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of content parts", where)
    out = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _NOT_TEXT:
            raise InvalidRequest(f"'{kind}' content is not supported: the models read text "
                                 f"only ({at})", at, "unsupported_content")
        if kind not in allowed:
            raise InvalidRequest(f"{at} must be a part of type {' or '.join(allowed)}", at)
        extra = set(part) - {"type", "text", "annotations", "logprobs"}
        if extra:
            raise InvalidRequest(f"{at} has a field this server does not honour: "
                                 f"{sorted(extra)[0]!r}", at)
        out.append(_text(part.get("text"), f"{at}.text"))
    return "".join(out)


def _summary(item: dict[str, Any], where: str) -> str:
    """A reasoning item's summary text; its reasoning_text where it has no summary."""
    texts = {}
    for key, kinds in (("summary", ("summary_text",)), ("content", ("reasoning_text", "text"))):
        value = item.get(key)
        if value is None:
            value = []
        if not isinstance(value, list) or not all(
                isinstance(p, dict) and p.get("type") in kinds and isinstance(p.get("text"), str)
                for p in value):
            raise InvalidRequest(f"{where}.{key} must be null or an array of "
                                 f"{{type: {'|'.join(kinds)}, text}}", f"{where}.{key}")
        texts[key] = "\n\n".join(p["text"] for p in value if p["text"])
    if not isinstance(item.get("encrypted_content", ""), str | None):
        raise InvalidRequest(f"{where}.encrypted_content must be a string", where)
    return texts["summary"] or texts["content"]


def _call(item: dict[str, Any], kind: str, where: str) -> ToolCall:
    if kind == "local_shell_call":
        call_id = item.get("call_id") or item.get("id")
        if not isinstance(call_id, str) or not isinstance(item.get("action"), dict):
            raise InvalidRequest(f"{where} must have a call_id and an action object", where)
        return ToolCall(call_id, LOCAL_SHELL, dumps(item["action"]))
    value = "arguments" if kind == "function_call" else "input"
    return ToolCall(_text(item.get("call_id"), f"{where}.call_id"),
                    _text(item.get("name"), f"{where}.name"),
                    _text(item.get(value), f"{where}.{value}"))


def _output(item: dict[str, Any], kind: str, where: str) -> Turn:
    call_id = item.get("id" if kind == "local_shell_call_output" else "call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.call_id is required: the id of the call this answers",
                             where)
    return Turn("tool", _parts(item.get("output"), f"{where}.output", ("input_text",
                                                                        "output_text")),
                call_id=call_id)


@dataclass
class _Assistant:
    """The assistant turn being gathered from a run of assistant-side items."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    said: bool = False  # an assistant message was among the items

    def turn(self) -> Turn | None:
        if not (self.said or self.calls or self.reasoning):
            return None
        return Turn("assistant", "".join(self.text), tool_calls=tuple(self.calls),
                    reasoning="\n\n".join(self.reasoning))


def _kind(item: Any, where: str) -> str:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", where)
    kind = item.get("type", "message" if "role" in item else None)
    if kind in _REFUSED:
        raise InvalidRequest(f"'{kind}' items are not supported: {_REFUSED[kind]} ({where})",
                             where, "unsupported_item")
    if kind not in _KEYS:
        raise InvalidRequest(f"{where} has an item type this server does not know: "
                             f"{kind!r}", where, "unsupported_item")
    extra = set(item) - _KEYS[kind]
    if extra:
        raise InvalidRequest(f"{where} ({kind}) has a field this server does not honour: "
                             f"{sorted(extra)[0]!r}", where)
    return kind


def turns(instructions: str | None, items: Any) -> tuple[Turn, ...]:
    """The conversation: `instructions` as a leading system turn, then `input` (a string: one
    user turn)."""
    out: list[Turn] = [Turn("system", instructions)] if instructions else []
    if items is None:
        items = []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise InvalidRequest(f"'input' must be a string or an array of items, got "
                             f"{kind_of(items)}", "input")
    if len(items) > MAX_ITEMS:
        raise InvalidRequest(f"'input' has {len(items)} items; at most {MAX_ITEMS} are "
                             "accepted", "input")
    pending = _Assistant()

    def flush() -> None:
        nonlocal pending
        turn = pending.turn()
        if turn is not None:
            out.append(turn)
        pending = _Assistant()

    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = _kind(item, where)
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise InvalidRequest(f"{where}.role must be one of {', '.join(ROLES)}",
                                     f"{where}.role")
            text = _parts(item.get("content"), f"{where}.content")
            if role != "assistant":
                flush()
                out.append(Turn(role, text))
                continue
            if pending.said or pending.calls:
                flush()
            pending.text.append(text)
            pending.said = True
        elif kind == "reasoning":
            summary = _summary(item, where)
            if pending.said or pending.calls:
                flush()
            if summary:
                pending.reasoning.append(summary)
        elif kind.endswith("_call"):
            pending.calls.append(_call(item, kind, where))
        else:
            flush()
            out.append(_output(item, kind, where))
    flush()
    if not out:
        raise InvalidRequest("'input' is required: a string or a non-empty array of items "
                             "(or 'instructions')", "input")
    return tuple(out)
