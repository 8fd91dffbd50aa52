"""Model text made safe for a terminal: control characters and escape sequences removed.

A model's answer is untrusted text. Written to a terminal raw, it could set the clipboard
(OSC 52), the window title (OSC 0/2), move the cursor or clear the screen (CSI), overwrite
what was shown (CR, BS) or send device strings (DCS, SOS, PM, APC). `scrub` removes all of
them and keeps everything else:

- Kept: printable text (any script, emoji, combining marks), `\\n` and `\\t`.
- CR becomes a line break: `\\r\\n` is one `\\n`, a lone `\\r` is a `\\n` too, so text that a
  carriage return would have hidden is shown rather than overwritten or lost.
- Removed: every other C0 and C1 control character and DEL; whole escape sequences (ESC and
  what follows it: CSI `ESC [ … final`, `ESC` + intermediates + final, and the string
  sequences OSC/DCS/SOS/PM/APC up to BEL, ST, CAN or SUB), in their 7-bit and 8-bit (C1)
  forms. A string sequence that is never terminated swallows at most the rest of its line:
  a line break ends it and is kept, so a stray `ESC ]` cannot hide the rest of an answer.
- Lone surrogates (JSON can carry `\\ud800`) become U+FFFD, so the text always encodes.

It is incremental: the state after one piece is passed with the next, so a sequence split
across two streamed deltas is removed the same as when it arrives whole. One pass, constant
work per character. The REPL's own styling is written around this, never through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

ESC, BEL, CAN, SUB, ST8, CSI8 = "\x1b", "\x07", "\x18", "\x1a", "\x9c", "\x9b"
STRING_INTRODUCERS = "]PX^_"            # after ESC: OSC, DCS, SOS, PM, APC
STRING8 = "\x9d\x90\x98\x9e\x9f"        # the same as C1 characters
# What ground state cannot copy as is: controls except \t and \n, DEL, C1, surrogates.
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# What ends or interrupts a string sequence.
_STRING_STOP = re.compile("[\x07\x18\x1a\x1b\x9c\n\r]")


class State(Enum):
    """Where the scanner is between two pieces of text."""

    GROUND = "ground"
    AFTER_CR = "after_cr"       # a \r was shown as \n; a \n right after it is the same break
    ESCAPE = "escape"           # after ESC
    INTERMEDIATE = "intermediate"  # ESC then 0x20-0x2f bytes, waiting for the final
    CSI = "csi"                 # parameters and intermediates, waiting for the final
    STRING = "string"           # inside OSC/DCS/SOS/PM/APC
    STRING_ESC = "string_esc"   # ESC inside a string: ST if a backslash follows


def scrub(text: str, state: State = State.GROUND) -> tuple[str, State]:
    """The printable part of `text` and the state to pass with the next piece."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if state is State.GROUND:
            found = _SPECIAL.search(text, i)
            end = n if found is None else found.start()
            out.append(text[i:end])
            if found is None:
                break
            i = end
            state = _ground(text[i], out)
            i += 1
        elif state is State.STRING:
            found = _STRING_STOP.search(text, i)
            if found is None:
                break
            i = found.start()
            char = text[i]
            if char in "\n\r":
                state = State.GROUND  # the line break ends the sequence and is kept
                continue
            state = State.STRING_ESC if char == ESC else State.GROUND
            i += 1
        else:
            state, consumed = _step(state, text[i])
            if consumed:
                i += 1
    return "".join(out), state


def _ground(char: str, out: list[str]) -> State:
    """One special character met in ground state: what it starts."""
    if char == "\r":
        out.append("\n")
        return State.AFTER_CR
    if char == ESC:
        return State.ESCAPE
    if char == CSI8:
        return State.CSI
    if char in STRING8:
        return State.STRING
    if "\ud800" <= char <= "\udfff":
        out.append("\ufffd")
    return State.GROUND


def _step(state: State, char: str) -> tuple[State, bool]:
    """One character in a short state: the next state, and whether the character was used.

    A character that cannot continue the sequence ends it and is read again in ground state.
    """
    if state is State.AFTER_CR:
        return State.GROUND, char == "\n"
    if state is State.ESCAPE:
        if char == "[":
            return State.CSI, True
        if char in STRING_INTRODUCERS:
            return State.STRING, True
        if char == ESC:
            return State.ESCAPE, True
        if "\x20" <= char <= "\x2f":
            return State.INTERMEDIATE, True
        return State.GROUND, "\x30" <= char <= "\x7e"
    if state is State.INTERMEDIATE:
        if "\x20" <= char <= "\x2f":
            return State.INTERMEDIATE, True
        return State.GROUND, "\x30" <= char <= "\x7e"
    if state is State.CSI:
        if "\x20" <= char <= "\x3f":
            return State.CSI, True
        return State.GROUND, "\x40" <= char <= "\x7e"
    # STRING_ESC: ESC \ is the terminator; any other ESC starts a new escape sequence.
    if char == "\\":
        return State.GROUND, True
    return State.ESCAPE, False


_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """Text unchanged but for lone surrogates, which become U+FFFD (they cannot be encoded)."""
    return _SURROGATE.sub("\ufffd", text)


def clean(text: str) -> str:
    """A whole text scrubbed (an unfinished sequence at its end is dropped)."""
    return scrub(text)[0]


@dataclass
class Scrubber:
    """Scrubs a stream piece by piece, carrying the state between pieces."""

    state: State = State.GROUND

    def __call__(self, text: str) -> str:
        out, self.state = scrub(text, self.state)
        return out
