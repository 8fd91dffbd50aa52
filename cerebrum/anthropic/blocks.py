"""Anthropic's conversation (pure): `system` and `messages` with their content blocks, into
the internal turns.

- Text blocks of one message (or of `system`) are joined by a blank line: a string and one
  text block are the same content, as Anthropic defines them.
- Claude Code's first system line, `x-anthropic-billing-header: cc_version=…;
  cc_entrypoint=…; cch=…;`, changes on every request (`cch` hashes the request); left in, the
  prompt would differ from the previous one at its first tokens and the model would evaluate
  the whole conversation again each turn. It is dropped wherever a system text starts with
  it, with the rest of its line: it is a client's accounting, not an instruction.
- A user message's `tool_result` blocks become tool turns, in place among its text; an
  `is_error` result's text gets an `Error: ` prefix, so the model is told what the client
  said.
- An assistant message is one turn: its text, its `tool_use` calls (input as JSON text), and
  its `thinking` text as the turn's reasoning; `redacted_thinking` is dropped (Anthropic
  encrypts it for its own models: there is nothing to read).
- A `role: "system"` message (newer Claude Code sends them) is a system turn. Those before the
  first assistant message go ahead of the user messages, after `system`: Claude Code sends its
  list of agent types (1.4k tokens, the same in every session) as a system message after the
  first user message, which holds the date. In its place the list would follow the date, and a
  new session's prompt could share only the part before the date with the last session's; moved,
  everything but the date and the question is a prefix the prefix cache keeps (on disk across
  restarts). Every turn of a session sends them in the same place, so each turn's prompt still
  extends the last one's. Later system messages stay where they are.
- Consecutive user (or assistant) turns are merged into one, as Anthropic merges them.
- Images, documents and server tools' blocks are a 400 naming the block type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cerebrum.generation.request import ToolCall, Turn

from .errors import InvalidRequest, kind_of

ROLES = ("user", "assistant", "system")
MAX_MESSAGES = 100_000  # Anthropic's limit
JOIN = "\n\n"
BILLING = "x-anthropic-billing-header:"
ERROR_PREFIX = "Error: "
CACHE_TTLS = ("5m", "1h")

# The block types each role may send, and each block type's keys.
_ALLOWED = {"user": ("text", "tool_result"),
            "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
            "system": ("text",)}
_KEYS = {"text": {"type", "text", "cache_control", "citations"},
         "tool_use": {"type", "id", "name", "input", "cache_control", "caller",
                      "toolset_name"},
         "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
         "thinking": {"type", "thinking", "signature"},
         "redacted_thinking": {"type", "data"}}
_UNSUPPORTED = {"image": "the models read text only",
                "document": "the models read text only: send the document's text",
                "search_result": "send the result's text",
                "container_upload": "this server runs no code-execution containers"}


def without_billing(text: str) -> str:
    """System text without Claude Code's billing line (see the module's docstring)."""
    if not text.startswith(BILLING):
        return text
    return text.partition("\n")[2]


def join(texts: Iterable[str]) -> str:
    """Texts of separate blocks as one, a blank line apart; empty ones left out."""
    return JOIN.join(t for t in texts if t)


def cache_control(value: Any, where: str, param: str) -> None:
    """Check a `cache_control` of the object at `where` (the body's own: "") (a no-op: the
    server reuses prompt prefixes by itself)."""
    if value is None:
        return
    if not (isinstance(value, dict) and value.get("type") == "ephemeral"
            and set(value) <= {"type", "ttl"} and value.get("ttl", "5m") in CACHE_TTLS):
        name = f"{where}.cache_control" if where else "'cache_control'"
        raise InvalidRequest(f"{name} must be {{\"type\": \"ephemeral\"}}, "
                             "with \"ttl\" \"5m\" or \"1h\" if any", param)


def _block(block: Any, where: str, param: str, role: str,
           allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise InvalidRequest(f"{where} must be a content block object, got {kind_of(block)}",
                             param)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{where}.type must be a string", param)
    if kind not in allowed:
        reason = _UNSUPPORTED.get(kind) or (
            f"{role} content takes {', '.join(allowed)} blocks" if kind in _KEYS
            else f"{role} content takes {', '.join(allowed)} blocks; this server runs no "
            "server tools")
        raise InvalidRequest(f"{where}: '{kind}' blocks are not supported: {reason}", param)
    extra = sorted(set(block) - _KEYS[kind])
    if extra:
        raise InvalidRequest(f"{where} ('{kind}') has a field this server does not know: "
                             f"'{extra[0]}'", param)
    cache_control(block.get("cache_control"), where, param)
    return block


def _text(block: dict[str, Any], where: str, param: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.text must be a string", param)
    citations = block.get("citations")
    if citations is not None and not isinstance(citations, list):
        raise InvalidRequest(f"{where}.citations must be an array", param)
    return text  # citations say where the text came from; the text is what the model reads


def _texts(content: Any, where: str, param: str, role: str, system: bool = False) -> str:
    """A string, or text blocks joined (`system`: each without the billing line)."""
    if isinstance(content, str):
        return without_billing(content) if system else content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of text blocks, got "
                             f"{kind_of(content)}", param)
    texts = (_text(_block(b, f"{where}[{j}]", param, role, ("text",)), f"{where}[{j}]", param)
             for j, b in enumerate(content))
    return join(map(without_billing, texts) if system else texts)


def system(value: Any) -> str:
    """The top-level `system`: a string or text blocks, without the billing line."""
    return "" if value is None else _texts(value, "system", "system", "system", system=True)


def _nonempty_string(block: dict[str, Any], key: str, where: str) -> str:
    value = block.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}.{key} must be a non-empty string", "messages")
    return value


def _tool_result(block: dict[str, Any], where: str) -> Turn:
    call_id = _nonempty_string(block, "tool_use_id", where)
    text = _texts(block.get("content", ""), f"{where}.content", "messages", "tool_result")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise InvalidRequest(f"{where}.is_error must be a boolean", "messages")
    return Turn("tool", ERROR_PREFIX + text if is_error else text, call_id=call_id)


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    call_id = _nonempty_string(block, "id", where)
    name = _nonempty_string(block, "name", where)
    arguments = block.get("input")
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"{where}.input must be an object, got {kind_of(arguments)}",
                             "messages")
    caller = block.get("caller")
    if caller is not None and caller != {"type": "direct"}:
        raise InvalidRequest(f"{where}.caller: only {{\"type\": \"direct\"}} calls are "
                             "supported: this server runs no server tools", "messages")
    if block.get("toolset_name") is not None:  # the SDK's model_dump() sends it as null
        raise InvalidRequest(f"{where}.toolset_name: MCP toolsets are not supported: this "
                             "server runs no server tools", "messages")
    # JSON as templates and models write it (", " and ": "), characters as they are.
    return ToolCall(call_id, name, json.dumps(arguments, ensure_ascii=False))


def _thinking(block: dict[str, Any], where: str) -> str:
    if block["type"] == "redacted_thinking":
        if not isinstance(block.get("data"), str):
            raise InvalidRequest(f"{where}.data must be a string", "messages")
        return ""
    if not isinstance(block.get("thinking"), str):
        raise InvalidRequest(f"{where}.thinking must be a string", "messages")
    if not isinstance(block.get("signature", ""), str):
        raise InvalidRequest(f"{where}.signature must be a string", "messages")
    return str(block["thinking"])


def _user(content: Any, where: str) -> list[Turn]:
    if isinstance(content, str):
        return [Turn("user", content)]
    turns: list[Turn] = []
    texts: list[str] = []
    for j, raw in enumerate(content):
        block = _block(raw, f"{where}[{j}]", "messages", "user", _ALLOWED["user"])
        if block["type"] == "text":
            texts.append(_text(block, f"{where}[{j}]", "messages"))
            continue
        if texts:
            turns.append(Turn("user", join(texts)))
            texts = []
        turns.append(_tool_result(block, f"{where}[{j}]"))
    if texts or not turns:
        turns.append(Turn("user", join(texts)))
    return turns


def _assistant(content: Any, where: str) -> Turn:
    if isinstance(content, str):
        return Turn("assistant", content)
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    for j, raw in enumerate(content):
        at = f"{where}[{j}]"
        block = _block(raw, at, "messages", "assistant", _ALLOWED["assistant"])
        if block["type"] == "text":
            texts.append(_text(block, at, "messages"))
        elif block["type"] == "tool_use":
            calls.append(_tool_use(block, at))
        else:
            thoughts.append(_thinking(block, at))
    return Turn("assistant", join(texts), tuple(calls), reasoning=join(thoughts))


def _message(message: Any, i: int, last: bool) -> list[Turn]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be an object, got {kind_of(message)}", "messages")
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of {', '.join(ROLES)}", "messages")
    extra = sorted(set(message) - {"role", "content"})
    if extra:
        raise InvalidRequest(f"{where} has a field this server does not know: '{extra[0]}'",
                             "messages")
    content = message.get("content")
    if not isinstance(content, str | list):
        raise InvalidRequest(f"{where}.content must be a string or an array of content "
                             f"blocks, got {kind_of(content)}", "messages")
    if not content and not (role == "assistant" and last):
        raise InvalidRequest(f"{where}.content is empty: only a final assistant message may "
                             "be", "messages")
    if role == "user":
        return _user(content, f"{where}.content")
    if role == "assistant":
        return [_assistant(content, f"{where}.content")]
    text = _texts(content, f"{where}.content", "messages", "system", system=True)
    return [Turn("system", text)] if text else []


def _merged(turns: Iterable[Turn]) -> tuple[Turn, ...]:
    out: list[Turn] = []
    for turn in turns:
        if out and turn.role in ("user", "assistant") and out[-1].role == turn.role:
            before = out[-1]
            turn = Turn(turn.role, join((before.text, turn.text)),
                        before.tool_calls + turn.tool_calls,
                        reasoning=join((before.reasoning, turn.reasoning)))
            out.pop()
        out.append(turn)
    return tuple(out)


def _system_first(turns: list[Turn]) -> list[Turn]:
    """The system turns before the first assistant turn moved ahead of the other turns
    before it, each kind in its order (see the module's docstring)."""
    end = next((i for i, t in enumerate(turns) if t.role == "assistant"), len(turns))
    opening = turns[:end]
    return ([t for t in opening if t.role == "system"]
            + [t for t in opening if t.role != "system"] + turns[end:])


def conversation(body: dict[str, Any]) -> tuple[Turn, ...]:
    """`system` then `messages`, as internal turns."""
    value = body.get("messages")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' is required: a non-empty array of {role, content}",
                             "messages")
    if len(value) > MAX_MESSAGES:
        raise InvalidRequest(f"'messages' has {len(value)} entries; at most {MAX_MESSAGES} "
                             "are accepted", "messages")
    first = system(body.get("system"))
    turns = [Turn("system", first)] if first else []
    for i, message in enumerate(value):
        turns += _message(message, i, i == len(value) - 1)
    return _merged(_system_first(turns))
