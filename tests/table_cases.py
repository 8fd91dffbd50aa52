"""What the table tests of wire formats share: a parsed value in the tables' JSON terms, and
where it differs from a case's expectations."""

from __future__ import annotations

import json
from typing import Any


def plain(value: Any) -> Any:
    """Tuples as lists, as the JSON tables hold them."""
    return json.loads(json.dumps(value))


def matches(got: Any, want: Any, where: str) -> list[str]:
    """Where `got` differs from `want`; a dict in `want` lists only the keys it checks."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key, value in want.items():
            if key not in got:
                out.append(f"{where}.{key}: not in the parsed request")
            else:
                out.extend(matches(got[key], value, f"{where}.{key}"))
        return out
    return [] if got == want else [f"{where}: expected {want!r}, got {got!r}"]
