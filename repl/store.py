"""Saved conversations: `$XDG_STATE_HOME/cerebrum/conversations/ID.json`, private (0600 in a
0700 directory) and replaced atomically after each change."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

from . import state
from .conversation import Conversation, from_json, to_json


def default_dir() -> Path:
    """Where conversations are kept."""
    return state.state_dir() / "conversations"


def new(now: datetime | None = None) -> Conversation:
    """An empty conversation, its id sortable by when it started."""
    now = now or datetime.now(UTC)
    return Conversation(f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
                        now.isoformat(timespec="seconds"))


def save(directory: Path, conv: Conversation) -> None:
    """Write the conversation (one with no turns is removed instead: nothing to resume)."""
    path = directory / f"{conv.id}.json"
    if not conv.turns:
        path.unlink(missing_ok=True)
        return
    state.write_private(path, json.dumps(to_json(conv), ensure_ascii=False,
                                         indent=1).encode())


def listing(directory: Path) -> list[Conversation]:
    """The saved conversations, most recent first; unreadable files are skipped."""
    out = []
    for path in directory.glob("*.json"):
        try:
            conv = from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if conv.id == path.stem:
            out.append(conv)
    return sorted(out, key=lambda c: c.id, reverse=True)


def listing_text(convs: list[Conversation], current: str) -> str:
    """`:resume`: one numbered line per saved conversation, the current one marked."""
    if not convs:
        return "no saved conversations yet"
    lines = [f"{n:3}. {c.created[:16].replace('T', ' ')} · {len(c.turns)} turns · {c.title}"
             + (" (current)" if c.id == current else "") for n, c in enumerate(convs, 1)]
    return "\n".join(lines) + "\n:resume N reopens one"
