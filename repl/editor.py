"""The line editor as a pure state machine: a key in, the new line and an action out."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from readchar import key as k

CTRL_A, CTRL_C, CTRL_D, CTRL_E = "\x01", "\x03", "\x04", "\x05"
CTRL_K, CTRL_L, CTRL_U, CTRL_W = "\x0b", "\x0c", "\x15", "\x17"
TAB, ENTER, CR, CTRL_H = "\t", "\n", "\r", "\x08"
HOME_KEYS = frozenset({k.HOME, "\x1b[1~", "\x1bOH", "\x1b[7~", CTRL_A})
END_KEYS = frozenset({k.END, "\x1b[4~", "\x1bOF", "\x1b[8~", CTRL_E})


class Action(enum.Enum):
    """What the caller does after a key."""

    EDIT = "edit"            # redraw the line
    SUBMIT = "submit"        # Enter: hand the line over
    EOF = "eof"              # Ctrl-D on an empty line
    INTERRUPT = "interrupt"  # Ctrl-C: the line was cleared
    CLEAR_SCREEN = "clear"   # Ctrl-L
    COMPLETE = "complete"    # Tab: the caller completes the line
    IGNORE = "ignore"        # a key the editor does not use


@dataclass(frozen=True)
class Editor:
    """A line being edited, its cursor (in characters) and the history it can browse."""

    text: str = ""
    cursor: int = 0
    history: tuple[str, ...] = ()
    index: int = 0      # into history; len(history) is the line being typed
    draft: str = ""     # the typed line, kept while browsing history

    @classmethod
    def new(cls, history: tuple[str, ...] = ()) -> Editor:
        """An empty line with `history` to browse (oldest first)."""
        return cls(history=history, index=len(history))


def insert(ed: Editor, text: str) -> Editor:
    """`text` inserted at the cursor, the cursor after it."""
    return replace(ed, text=ed.text[:ed.cursor] + text + ed.text[ed.cursor:],
                   cursor=ed.cursor + len(text))


def set_text(ed: Editor, text: str) -> Editor:
    """The line replaced by `text`, the cursor at its end."""
    return replace(ed, text=text, cursor=len(text))


def _word_start(text: str, cursor: int) -> int:
    i = cursor
    while i > 0 and text[i - 1].isspace():
        i -= 1
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return i


def _browse(ed: Editor, step: int) -> Editor:
    index = ed.index + step
    if not 0 <= index <= len(ed.history):
        return ed
    draft = ed.text if ed.index == len(ed.history) else ed.draft
    text = draft if index == len(ed.history) else ed.history[index]
    return replace(ed, text=text, cursor=len(text), index=index, draft=draft)


def feed(ed: Editor, key: str) -> tuple[Editor, Action]:
    """Apply one key (a character or an escape sequence) to the editor."""
    text, cur = ed.text, ed.cursor
    if key in (ENTER, CR):
        return ed, Action.SUBMIT
    if key == CTRL_D:
        if not text:
            return ed, Action.EOF
        return replace(ed, text=text[:cur] + text[cur + 1:]), Action.EDIT
    if key == CTRL_C:
        return replace(ed, text="", cursor=0, index=len(ed.history), draft=""), Action.INTERRUPT
    if key == CTRL_L:
        return ed, Action.CLEAR_SCREEN
    if key == TAB:
        return ed, Action.COMPLETE
    if key in (k.BACKSPACE, CTRL_H):
        if cur == 0:
            return ed, Action.EDIT
        return replace(ed, text=text[:cur - 1] + text[cur:], cursor=cur - 1), Action.EDIT
    if key == k.DELETE:
        return replace(ed, text=text[:cur] + text[cur + 1:]), Action.EDIT
    if key == k.LEFT:
        return replace(ed, cursor=max(0, cur - 1)), Action.EDIT
    if key == k.RIGHT:
        return replace(ed, cursor=min(len(text), cur + 1)), Action.EDIT
    if key in HOME_KEYS:
        return replace(ed, cursor=0), Action.EDIT
    if key in END_KEYS:
        return replace(ed, cursor=len(text)), Action.EDIT
    if key == CTRL_K:
        return replace(ed, text=text[:cur]), Action.EDIT
    if key == CTRL_U:
        return replace(ed, text=text[cur:], cursor=0), Action.EDIT
    if key == CTRL_W:
        start = _word_start(text, cur)
        return replace(ed, text=text[:start] + text[cur:], cursor=start), Action.EDIT
    if key == k.UP:
        return _browse(ed, -1), Action.EDIT
    if key == k.DOWN:
        return _browse(ed, +1), Action.EDIT
    if len(key) == 1 and key.isprintable():
        return insert(ed, key), Action.EDIT
    return ed, Action.IGNORE
