"""The row every wire format's field table is made of (pure): one request field, where it
belongs, and what each tier does with it — honoured, refused with a 400 naming it (unless its
value asks for nothing), a documented no-op, or (the orchestrator, where its upstream speaks
the same format) passed through for the upstream to judge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Tier = Literal["backend", "orchestrator"]
HONOURED = "honoured"
REFUSED = "refused"
NO_OP = "no-op"  # the format defines it as not affecting the answer; checked, then dropped
PASSED = "passed through"  # the orchestrator sends it upstream unchanged


@dataclass(frozen=True)
class Field:
    """One request field: where it belongs (`kinds`: the format's endpoints or request kinds),
    what the backend does, what the orchestrator does (None: as the backend)."""

    name: str
    kinds: frozenset[Any]
    backend: str  # HONOURED, REFUSED or NO_OP
    why: str  # what honouring means, or why it is refused
    neutral: tuple[Any, ...] = ()  # values that ask for nothing: accepted even when refused
    orchestrator: str | None = None  # PASSED, HONOURED, REFUSED, NO_OP; None: as the backend
    orchestrator_why: str = ""

    def status(self, tier: Tier) -> str:
        """What `tier` does with the field."""
        if tier == "orchestrator" and self.orchestrator is not None:
            return self.orchestrator
        return self.backend

    def is_neutral(self, value: Any) -> bool:
        """Whether `value` is one that asks for nothing (type-exact: `n: true` is not 1)."""
        return any(type(value) is type(v) and value == v for v in self.neutral)
