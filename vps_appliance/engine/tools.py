"""Tool calling with the model's own chat template: which templates know tools, the
conversation's tool calls made ready for the template, a grammar that forces calls
(`tool_choice` "required" or a named function), and the answer's `<tool_call>{json}</tool_call>`
blocks parsed into OpenAI's `tool_calls`, incrementally for streams.

The format is Hermes's, which Qwen2.5's template prompts for: each call is a JSON object
`{"name": …, "arguments": {…}}` between `<tool_call>` and `</tool_call>`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from cerebrum.generation.request import Request, Tool, Turn

from ..errors import BadRequest
from .structured import unsupported

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_ROOT = re.compile(r"^root ::=", re.M)


def supports(template: str | None) -> bool:
    """Whether a chat template renders `tools` (it reads the variable)."""
    return bool(template) and re.search(r"\btools\b", template or "") is not None


@dataclass(frozen=True)
class Tooling:
    """A request's tools and how they may be called."""

    tools: tuple[Tool, ...] = ()
    choice: str = "none"  # none, auto, required, or a function's name
    parallel: bool = True

    @property
    def active(self) -> bool:
        """Whether the model is offered the tools (and its answer parsed for calls)."""
        return bool(self.tools) and self.choice != "none"

    @classmethod
    def of(cls, req: Request) -> Tooling:
        """The tools of an internal request."""
        choice = req.choice
        return cls(req.tools, choice.name if choice.mode == "named" else choice.mode,
                   req.parallel_tool_calls)

    def offered(self) -> list[Tool]:
        """The tools the choice allows."""
        if not self.active:
            return []
        if self.choice in ("auto", "required"):
            return list(self.tools)
        return [t for t in self.tools if t.name == self.choice]

    @property
    def names(self) -> frozenset[str]:
        """The names of the tools offered."""
        return frozenset(t.name for t in self.offered())

    def template_tools(self) -> list[dict[str, Any]] | None:
        """What the template's `tools` gets: the function objects chat templates print."""
        if not self.active:
            return None
        out = []
        for t in self.offered():
            fn: dict[str, Any] = {"name": t.name}
            if t.description is not None:
                fn["description"] = t.description
            if t.parameters is not None:
                fn["parameters"] = t.parameters
            if t.strict is not None:
                fn["strict"] = t.strict
            out.append({"type": "function", "function": fn})
        return out

    def grammar(self) -> str | None:
        """GBNF forcing one call (or several, when parallel) for "required" and a named
        function; None when the model chooses."""
        if not self.active or self.choice == "auto":
            return None
        alternatives = []
        for tool in self.offered():
            params = tool.parameters or {"type": "object", "properties": {}}
            problems = list(unsupported(params, f"tools[{tool.name}].parameters"))
            if problems:
                raise BadRequest("a forced tool call's parameters use what this backend cannot "
                                 "enforce: " + "; ".join(problems), param="tools",
                                 code="unsupported_schema")
            alternatives.append({"type": "object", "properties": {
                "name": {"const": tool.name}, "arguments": params},
                "required": ["name", "arguments"]})
        schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
        try:
            body = _ROOT.sub("call-json ::=", json_schema_to_gbnf(json.dumps(schema)))
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise BadRequest(f"a forced tool call's parameters cannot be turned into a grammar: "
                             f"{exc or type(exc).__name__}", param="tools",
                             code="unsupported_schema") from None
        call = f'call ::= "{OPEN}\\n" call-json "\\n{CLOSE}"'
        root = 'root ::= call ("\\n" call)*' if self.parallel else "root ::= call"
        return "\n".join((root, call, body))


def template_messages(turns: Sequence[Turn], freeform: frozenset[str] = frozenset()
                      ) -> list[dict[str, Any]]:
    """The conversation as chat templates take it: a developer's turns as system ones, tool
    call arguments as objects (which is how templates print them); a call of a free-form tool
    (`freeform`: their names), whose arguments are its raw input, as the one string argument
    `input` it was offered with."""
    out: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        message: dict[str, Any] = {"role": "system" if turn.role == "developer" else turn.role,
                                   "content": turn.text}
        if turn.call_id is not None:
            message["tool_call_id"] = turn.call_id
        if turn.tool_calls:
            rendered = []
            for j, call in enumerate(turn.tool_calls):
                if call.name in freeform:
                    rendered.append({"id": call.id, "type": "function", "function": {
                        "name": call.name, "arguments": {"input": call.arguments}}})
                    continue
                try:
                    arguments = json.loads(call.arguments or "{}")
                except ValueError:
                    raise BadRequest(f"messages[{i}].tool_calls[{j}].function.arguments is "
                                     "not JSON", param="messages") from None
                rendered.append({"id": call.id, "type": "function",
                                 "function": {"name": call.name, "arguments": arguments}})
            message["tool_calls"] = rendered
        out.append(message)
    return out


@dataclass(frozen=True)
class ToolCall:
    """One parsed call, in OpenAI's shape by `as_dict`."""

    id: str
    name: str
    arguments: str  # a JSON string, as OpenAI sends it

    def as_dict(self, index: int | None = None) -> dict[str, Any]:
        """The call (`index`: as a stream's delta fragment)."""
        out: dict[str, Any] = {"id": self.id, "type": "function",
                               "function": {"name": self.name, "arguments": self.arguments}}
        return out if index is None else {"index": index, **out}


def _call(block: str) -> ToolCall | None:
    try:
        value = json.loads(block)
    except ValueError:
        return None
    if not (isinstance(value, dict) and isinstance(value.get("name"), str)):
        return None
    arguments = value.get("arguments", {})
    # Some models write the wire format's string instead of an object.
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ToolCall(f"call_{secrets.token_hex(12)}", value["name"], text)


@dataclass
class Parser:
    """Splits an answer, piece by piece, into content and tool calls.

    Calls are `<tool_call>{json}</tool_call>` blocks anywhere in the answer, or, as small
    models often write them, an answer that is nothing but such JSON objects (held back until
    the end, then taken as calls when each names an offered tool).
    """

    parallel: bool = True
    names: frozenset[str] = frozenset()  # the offered tools (for answers of bare JSON)
    calls: list[ToolCall] = field(default_factory=list)
    content: list[str] = field(default_factory=list)  # every piece of content given out
    _held: str = ""  # text that may be the start of a call, or a call's body so far
    _inside: bool = False
    _bare: bool | None = None  # the answer is bare JSON (None: not known yet)

    def _take(self, call: ToolCall) -> list[ToolCall]:
        if any(_same(call, taken) for taken in self.calls):
            return []  # the same call written again (RepeatGuard ends such an answer)
        if self.parallel or not self.calls:
            self.calls.append(call)
            return [call]
        return []

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """Content that is certainly not part of a call, and the calls completed."""
        self._held += text
        if self._bare is None:
            self._bare = _looks_bare(self._held)
            if self._bare is None:
                return "", []
        if self._bare:
            return "", []
        content, done = [], []
        while True:
            if self._inside:
                end = self._held.find(CLOSE)
                if end < 0:
                    break
                block, self._held = self._held[:end], self._held[end + len(CLOSE):]
                self._inside = False
                call = _call(block)
                if call is None:  # not a call after all: the text stands
                    content.append(OPEN + block + CLOSE)
                else:
                    done += self._take(call)
                continue
            start = self._held.find(OPEN)
            if start >= 0:
                content.append(self._held[:start])
                self._held, self._inside = self._held[start + len(OPEN):], True
                continue
            keep = _partial_suffix(self._held, OPEN)
            content.append(self._held[:len(self._held) - keep])
            self._held = self._held[len(self._held) - keep:]
            break
        self.content += content
        return "".join(content), done

    def flush(self) -> tuple[str, list[ToolCall]]:
        """At the end: what is held as text (an unfinished call stays text), and the calls
        of an answer of bare JSON."""
        held, self._held = ((OPEN if self._inside else "") + self._held), ""
        self._inside = False
        if self._bare:
            calls = _bare_calls(held, self.names)
            if calls:
                return "", [c for call in calls for c in self._take(call)]
        self.content.append(held)
        return held, []


def _same(a: ToolCall, b: ToolCall) -> bool:
    """Whether two calls name the same tool with the same arguments."""
    return a.name == b.name and _normal(a.arguments) == _normal(b.arguments)


def _normal(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


@dataclass
class RepeatGuard:
    """Ends an answer that writes the same tool call a second time: small models, after a
    tool's result, write the call they made again and again (as bare JSON, which is held back
    until the answer ends) until the context is full — minutes of silence for the agent.

    Fed the answer's text as it is generated; only an answer that starts as a bare call or
    holds a `<tool_call>` block is looked at, and only when a piece closes an object."""

    _text: str = ""
    _bare: bool | None = None
    stopped: bool = False

    def feed(self, text: str) -> bool:
        """Add `text`; whether the answer now repeats a call."""
        if self.stopped or not text:
            return self.stopped
        self._text += text
        if self._bare is None:
            self._bare = _looks_bare(self._text)
        if "}" not in text or not (self._bare or OPEN in self._text):
            return False
        payloads = _bare_payloads(self._text) if self._bare else [
            block for block in self._text.split(OPEN)[1:] if CLOSE in block]
        seen = [_normal(p.split(CLOSE)[0]) for p in payloads]
        self.stopped = any(v in seen[:i] for i, v in enumerate(seen) if isinstance(v, dict))
        return self.stopped


def _objects(text: str) -> tuple[list[str], str]:
    """The complete JSON objects `text` begins with, in order, and what follows them."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        try:
            _, end = decoder.raw_decode(text, at)
        except ValueError:
            return out, text[at:]
        out.append(text[at:end])
        at = end


def _bare_payloads(text: str) -> list[str]:
    """The complete JSON objects an answer of bare calls holds so far, in order."""
    return _objects(text.strip().removeprefix("```").removeprefix("json"))[0]


def _looks_bare(text: str) -> bool | None:
    """Whether an answer starts as a bare call, `{"name"`, maybe in a ```json fence (None:
    too little text to tell)."""
    s = text.lstrip()
    if s.startswith("`"):
        if len(s) < 3:
            return None if "```".startswith(s) else False
        if not s.startswith("```"):
            return False
        s = s[3:]
        if len(s) < 4 and "json".startswith(s):
            return None
        s = s.removeprefix("json").lstrip()
    if not s:
        return None
    if s[0] != "{":
        return False
    s = s[1:].lstrip()
    key = '"name"'
    if len(s) < len(key):
        return None if key.startswith(s) else False
    return s.startswith(key)


def _bare_calls(text: str, names: frozenset[str]) -> list[ToolCall]:
    """The calls of a text that is only JSON objects naming offered tools (maybe in a code
    fence); [] otherwise. An unfinished object that begins one of the calls again (where
    `RepeatGuard` ended the answer) is left out."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3].removeprefix("json")
    raws, rest = _objects(text)
    if rest and not any(raw.startswith(rest) for raw in raws):
        return []
    calls = []
    for raw in raws:
        call = _call(raw)
        if call is None or call.name not in names:
            return []
        calls.append(call)
    return calls


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that begins `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0
