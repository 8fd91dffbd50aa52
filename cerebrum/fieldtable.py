"""The row every wire format's field table is made of (pure): one request field, where it
belongs, and what each tier does with it — honoured, refused with a 400 naming it (unless its
value asks for nothing), a documented no-op, or (the orchestrator, where its upstream speaks
the same format) passed through for the upstream to judge."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def cell(status: str, why: str) -> str:
    """A table cell: the status, and why."""
    return f"{status}: {why}" if why else status


def as_the_backend(f: Field) -> str:
    """The orchestrator's cell of a row whose orchestrator does what the backend does unless
    it says otherwise."""
    return "as the backend" if f.orchestrator is None else cell(f.orchestrator,
                                                                 f.orchestrator_why)


def markdown_table(fields: Iterable[Field], where: Callable[[Field], str],
                   orchestrator: Callable[[Field], str] = as_the_backend) -> str:
    """A format's field table in Markdown (its docs page), one row per field."""
    rows = ["| field | endpoints | backend | orchestrator |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {where(f)} | {cell(f.backend, f.why)} | {orchestrator(f)} |"
             for f in fields]
    return "\n".join(rows) + "\n"
