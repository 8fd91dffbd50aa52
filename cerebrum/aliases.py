"""Model-name aliases, for both tiers (pure): the names the agents send whatever the server —
Claude Code's `claude-sonnet-…` (and `claude-haiku-…` for its side requests), Codex's and
aider's `gpt-…`, `o3`, `codex-…` — as shell-style patterns mapped to a name the server knows
(a backend's model, an orchestrator's route; "" for the first model or the default route).
A configuration's own `[aliases]` come before these defaults, so it can send one elsewhere."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

Aliases = tuple[tuple[str, str], ...]
DEFAULT: Aliases = (("claude-*", ""), ("gpt-*", ""), ("o[0-9]*", ""), ("codex-*", ""))


def parse(table: Any) -> Aliases:
    """A TOML `[aliases]` table (`"pattern" = "name"`), checked; ValueError says why not."""
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in table.items()):
        raise ValueError("aliases: expected a table of \"pattern\" = \"name\"")
    return tuple(table.items())


def resolve(name: str, aliases: Aliases) -> tuple[str, str] | None:
    """The first (pattern, target) whose pattern matches `name`, or None."""
    return next(((p, t) for p, t in aliases if fnmatchcase(name, p)), None)
