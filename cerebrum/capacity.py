"""How a backend tells the orchestrator its capacity: every answer for a model carries the
generations that model runs at once (its `parallel` sequences), so the orchestrator admits and
spreads load by it without polling `/health`, which would wake a socket-activated backend."""

from __future__ import annotations

from collections.abc import Mapping

SEQUENCES_HEADER = "X-Cerebrum-Sequences"


def sequences(headers: Mapping[str, str]) -> int | None:
    """The sequences an answer reports (None: not said, as by llama-server, or not a sane
    number)."""
    value = headers.get(SEQUENCES_HEADER, "").strip()
    return int(value) if value.isdigit() and 0 < int(value) <= 1024 else None
