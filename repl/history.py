"""The prompt history file: `$XDG_STATE_HOME/cerebrum/history`, one JSON string a line."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

LIMIT = 1000


def default_path() -> Path:
    """Where the history lives ($XDG_STATE_HOME, default ~/.local/state)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cerebrum" / "history"


def append(entries: tuple[str, ...], entry: str, limit: int = LIMIT) -> tuple[str, ...]:
    """`entries` with `entry` last (a repeat of the last entry is dropped), at most `limit`."""
    if not entry.strip() or (entries and entries[-1] == entry):
        return entries
    return (*entries, entry)[-limit:]


def load(path: Path, limit: int = LIMIT) -> tuple[str, ...]:
    """The saved entries, oldest first; none when the file is missing or unreadable."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    out: list[str] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, str):
            out.append(entry)
    return tuple(out[-limit:])


def save(path: Path, entries: tuple[str, ...]) -> None:
    """Write the entries (JSON-encoded, so multiline entries stay whole), atomically.

    Prompts are private: the directory is created 0700 and the file is 0600 whatever the
    umask. The text goes to a temporary file of a unique name beside the history, then
    replaces it in one rename, so REPLs saving at the same time never share a temporary
    file and a reader sees one whole version or the other.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates it 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
