"""The prompt history file: `$XDG_STATE_HOME/cerebrum/history`, one JSON string a line."""

from __future__ import annotations

import json
from pathlib import Path

from . import state

LIMIT = 1000


def default_path() -> Path:
    """Where the history lives ($XDG_STATE_HOME, default ~/.local/state)."""
    return state.state_dir() / "history"


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
    """Write the entries (JSON-encoded, so multiline entries stay whole), privately and
    atomically (`state.write_private`)."""
    state.write_private(path, "".join(json.dumps(e, ensure_ascii=False) + "\n"
                                      for e in entries).encode())
