"""Free-form (`custom`) tools, such as Codex's `apply_patch`: how they are offered to the model
and how its calls are read back (pure).

The models call tools through their chat template's JSON function calls, so a free-form tool
is offered as a function with one string argument, `input` (`parameters`). The model's call
then arrives as the JSON arguments `{"input": "…"}`, and the client gets a custom_tool_call
whose `input` is that string, decoded as the arguments stream in (`Input`): deltas as soon as
they are whole characters, never a partial escape. Arguments that are not such an object (a
model that skipped the wrapper) are passed on as they are; either way the deltas joined are
the call's `input`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

ARGUMENT = "input"
_OPENING = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_OPENING_TEXT = '{"input":"'
MAX_OPENING = 64  # characters before the string starts; past them, the arguments are raw
_PLAIN = re.compile(r'[^"\\]++')
_HIGH = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW = re.compile(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_DECODER = json.JSONDecoder(strict=False)  # a raw newline in the string: taken as written


def parameters(format_: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON Schema a free-form tool is offered with: one string, `input`; a grammar's
    syntax and definition are told the model in its description (not enforced: llama.cpp's
    grammar sampler reads GBNF, not Lark or a regex)."""
    description = "The tool's whole input, as free-form text."
    if format_ is not None and format_.get("type") == "grammar":
        description += (f" It must match this {format_['syntax']} grammar:\n"
                        f"{format_['definition']}")
    return {"type": "object", "properties": {ARGUMENT: {"type": "string",
                                                        "description": description}},
            "required": [ARGUMENT], "additionalProperties": False}


def _decode(segment: str) -> str:
    """A piece of a JSON string's body, decoded; an invalid escape is kept as written."""
    try:
        text = _DECODER.decode(f'"{segment}"')
    except json.JSONDecodeError:
        text = segment
    return text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate: '?'


@dataclass
class Input:
    """A free-form call's arguments in, fragment by fragment (`feed`); its input out, as
    deltas. `finish` when the arguments are complete."""

    mode: Literal["opening", "string", "raw", "closed"] = "opening"
    held: str = ""  # arguments not yet decoded
    deltas: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The input so far."""
        return "".join(self.deltas)

    def feed(self, fragment: str) -> str:
        """The input's text that `fragment` completes ("" while it is held back)."""
        self.held += fragment
        if self.mode == "opening":
            match = _OPENING.match(self.held)
            if match:
                self.mode, self.held = "string", self.held[match.end():]
            elif len(self.held) > MAX_OPENING or not _OPENING_TEXT.startswith(
                    "".join(self.held.split())):
                self.mode = "raw"
            else:
                return ""
        if self.mode == "raw":
            return self._out(self.held, "")
        if self.mode == "string":
            return self._string(final=False)
        self.held = ""  # closed: what follows the string ("}") is not input
        return ""

    def finish(self) -> str:
        """The rest of the input once the arguments are complete."""
        if self.mode == "opening":
            self.mode = "raw"
            return self._out(self.held, "")
        if self.mode == "string":  # cut off (max_output_tokens): the whole characters
            return self._string(final=True)
        return ""

    def _out(self, text: str, held: str) -> str:
        self.held = held
        if text:
            self.deltas.append(text)
        return text

    def _string(self, final: bool) -> str:
        text, i, n = self.held, 0, len(self.held)
        while i < n:
            plain = _PLAIN.match(text, i)
            if plain:
                i = plain.end()
                continue
            if text[i] == '"':
                self.mode = "closed"
                return self._out(_decode(text[:i]), "")
            end = self._escape(text, i)
            if end is None:
                break
            i = end
        return self._out(_decode(text[:i]), "" if final else text[i:])

    @staticmethod
    def _escape(text: str, i: int) -> int | None:
        """Where the escape at `i` ends; None when it is not whole yet (at the end of the
        arguments: never will be)."""
        n = len(text)
        if i + 1 >= n:
            return None
        if text[i + 1] != "u":
            return i + 2
        if i + 6 > n:
            return None
        if _HIGH.match(text, i):  # half of a pair: wait for the other half (cut off: drop it)
            if i + 12 > n:
                return None
            return i + 12 if _LOW.match(text, i + 6) else i + 6
        return i + 6
