"""Files attached to a prompt: the rules for reading them, `@path` mentions, and the fenced
blocks they become in the user message.

Each file goes in as a fenced code block whose info string is its extension then its name
(```` ```py app.py ````): the orchestrator's pipeline takes the first word as the block's
language (`py` → python) and chunks, ranks and deduplicates the blocks of every file
together; the name tells the model (and `repl.blocks`, reading the answer) which file is which.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ReplError

LIMIT = 256 * 1024  # bytes a file may have to be attached

# `@app.py`, `@src/util.js`: after a blank or at the start, a path with a `/` or an extension;
# not followed by `(` (a decorator call such as `@app.route(...)` in pasted code).
_MENTION = re.compile(r"(?<!\S)@((?:[\w.-]+/)*[\w-][\w.-]*\.\w+|(?:[\w.-]+/)+[\w.-]+)(?![\w(/])")
_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.M)


class AttachError(ReplError):
    """A file cannot be attached (missing, not a file, too big, binary)."""


@dataclass(frozen=True)
class Attached:
    """A file as attached: its name (relative to the working directory when inside it, else as
    given), where it is, and its text."""

    name: str
    path: Path
    text: str


def name_of(cwd: Path, given: str) -> tuple[str, Path]:
    """(name, absolute path) of a path given relative to `cwd` (or absolute)."""
    path = Path(os.path.normpath(cwd / given))
    try:
        return path.relative_to(cwd).as_posix(), path
    except ValueError:
        return os.path.normpath(given), path


def text_of(name: str, data: bytes, limit: int = LIMIT) -> str:
    """The file's text, or AttachError: over `limit` bytes, or binary (a NUL, not UTF-8)."""
    if len(data) > limit:
        raise AttachError(f"{name}: {len(data)} bytes, over the {limit // 1024} KiB limit "
                          "for an attached file")
    if b"\0" in data:
        raise AttachError(f"{name}: a binary file (it holds NUL bytes); not attached")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachError(f"{name}: a binary file (not UTF-8 text); not attached") from None


def read(cwd: Path, given: str, limit: int = LIMIT) -> Attached:
    """Read a file to attach; AttachError with a one-line reason when it cannot be."""
    name, path = name_of(cwd, given)
    try:
        if not path.is_file():
            why = "no such file" if not path.exists() else "not a regular file"
            raise AttachError(f"{name}: {why}")
        size = path.stat().st_size
        if size > limit:  # do not read a huge file only to refuse it
            raise AttachError(f"{name}: {size} bytes, over the {limit // 1024} KiB limit "
                              "for an attached file")
        data = path.read_bytes()
    except OSError as exc:
        raise AttachError(f"{name}: cannot read it ({exc.strerror or type(exc).__name__})"
                          ) from None
    return Attached(name, path, text_of(name, data, limit))


def mentions(prompt: str) -> list[str]:
    """The `@path` mentions in a prompt's text outside fenced code, in order, once each."""
    out: dict[str, None] = {}
    fence: str | None = None
    for line in prompt.split("\n"):
        m = _FENCE_LINE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence) and not \
                    line.strip()[len(marker):].strip():
                fence = None
            continue
        if fence is None:
            for found in _MENTION.finditer(line):
                out[found.group(1)] = None
    return list(out)


def fence(text: str) -> str:
    """A backtick fence longer than any the text holds at the start of a line."""
    longest = max((len(m.group(1)) for m in _FENCE_LINE.finditer(text)
                   if m.group(1)[0] == "`"), default=0)
    return "`" * max(3, longest + 1)


def block(att: Attached) -> str:
    """The file as a fenced block: ```` ```EXT NAME ````, its text, the closing fence."""
    ext = Path(att.name).suffix.lstrip(".").lower()
    marker = fence(att.text)
    body = att.text if att.text.endswith("\n") or not att.text else att.text + "\n"
    return f"{marker}{ext or 'text'} {att.name}\n{body}{marker}"


def user_content(prompt: str, files: list[Attached]) -> str:
    """The user message: the prompt as typed, then each attached file's block."""
    return "\n\n".join([prompt, *(block(f) for f in files)])
