"""An answer's code blocks (pure): finding them, matching them to files, and the unified diff
between a file and the answer's version of it."""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass

from .errors import ReplError

_OPEN = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\n`]*)$")
NO_NEWLINE = "\\ No newline at end of file"


class NoBlock(ReplError):
    """The answer holds no code block that fits the file asked for."""


@dataclass(frozen=True)
class Block:
    """A fenced code block of an answer: its language tag, file name (if the fence gives
    one), its text (without the fences) and whether its closing fence came."""

    tag: str | None
    name: str | None
    text: str
    closed: bool = True


def _names(info: str) -> tuple[str | None, str | None]:
    """(tag, name) from a fence's info string: `py app.py`, `python:app.py`, `app.py`."""
    info = info.strip()
    if not info:
        return None, None
    first, _, rest = info.partition(" ")
    if rest.strip():
        return first, normal(rest.strip())
    if ":" in first:
        tag, _, name = first.partition(":")
        return tag or None, normal(name) if name else None
    if "." in first.strip(".") or "/" in first:
        ext = posixpath.splitext(first)[1].lstrip(".")
        return ext or None, normal(first)
    return first, None


def normal(name: str) -> str:
    """A file name as compared: posix, normalised, without a leading `./`."""
    return posixpath.normpath(name.strip().replace("\\", "/"))


def code_blocks(answer: str) -> list[Block]:
    """The fenced blocks of an answer, in order; an unclosed last one runs to the end."""
    out: list[Block] = []
    lines = answer.split("\n")
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        marker, (tag, name) = m.group(1), _names(m.group(2))
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(marker) and not stripped.strip(marker[0]):
                closed = True
                break
            body.append(lines[i])
            i += 1
        out.append(Block(tag, name, "\n".join(body), closed))
        i += 1
    return out


def _by_name(blocks: list[Block], name: str, attached: list[str]) -> Block | None:
    """The last block named `name`, or named by its base name when that names no other file."""
    want = normal(name)
    exact = [b for b in blocks if b.name == want]
    if exact:
        return exact[-1]
    base = posixpath.basename(want)
    if sum(posixpath.basename(normal(a)) == base for a in attached) > 1:
        return None
    loose = [b for b in blocks if b.name and posixpath.basename(b.name) == base]
    return loose[-1] if loose else None


def _sole(blocks: list[Block]) -> Block | None:
    """The block meant when none is named: the only one, else the longest (an answer often
    adds a short usage example after the code)."""
    if not blocks:
        return None
    return max(blocks, key=lambda b: len(b.text))


def pairs(answer: str | None, attached: list[str], target: str | None = None
          ) -> list[tuple[str, Block]]:
    """(file name, block) for each file the answer changes.

    With a target: the block named so, else the answer's only (or longest) block. Without:
    the blocks named by an attached file's name, else, with one file attached, the answer's
    only (or longest) block. NoBlock says why when nothing fits.
    """
    if answer is None:
        raise NoBlock("no answer yet: ask something first")
    blocks = code_blocks(answer)
    if not blocks:
        raise NoBlock("the last answer has no code block")
    if target is not None:
        found = _by_name(blocks, target, [*attached, target]) or _sole(blocks)
        assert found is not None
        return [(target, found)]
    named = [(name, b) for name in attached if (b := _by_name(blocks, name, attached))]
    if named:
        return named
    if len(attached) == 1:
        sole = _sole(blocks)
        assert sole is not None
        return [(attached[0], sole)]
    if not attached:
        raise NoBlock("no file attached: name one (PATH) or :add it")
    raise NoBlock(f"the answer's code blocks name none of the attached files "
                  f"({', '.join(attached)}): name one (PATH)")


def new_text(old: str | None, block: Block) -> str:
    """The file's new text from a block: its text, ending in a newline unless the old file's
    text did not (a file keeps its convention)."""
    if old is not None and old and not old.endswith("\n"):
        return block.text
    return block.text + "\n" if block.text else ""


def _lines(text: str) -> list[str]:
    """Lines as diff and git count them: split at \n only (not at \f, \x1c, U+2028 …)."""
    *whole, tail = text.split("\n")
    lines = [line + "\n" for line in whole]
    if tail:
        lines.append(tail + "\n" + NO_NEWLINE + "\n")
    return lines


def unified(old: str | None, new: str, name: str, context: int = 3) -> str:
    """A unified diff `git apply` takes (a/NAME, b/NAME; /dev/null for a new file); "" when
    nothing changes. Line ends are kept as they are; a last line without a newline is marked
    as diff marks it."""
    if old == new:
        return ""
    a = "/dev/null" if old is None else f"a/{name}"
    head = f"diff --git a/{name} b/{name}\n" + ("new file mode 100644\n" if old is None else "")
    body = "".join(difflib.unified_diff(_lines(old or ""), _lines(new), a, f"b/{name}",
                                        n=context))
    return head + body if body else ""
