"""What both tiers share of llama.cpp's own wire format (`/infill`, `/completion`), pure."""

from __future__ import annotations

from typing import Any


def select_fields(body: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """llama-server's `response_fields`: each "a/b" path that exists, under its own flat name
    (`"timings/prompt_n": 42`); a path that is not there is left out, so `[""]` gives {}."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = body
        for key in path.split("/"):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            out[path] = value
    return out
