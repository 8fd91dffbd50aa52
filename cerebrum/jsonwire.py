"""The one JSON serializer both tiers write with, for every body, SSE payload and upstream
request: compact (`{"content":"…"}`), as llama.cpp's `llama-server` writes it.

Editor plugins check the raw bytes before they parse them: llama.vim drops any `/infill`
reply that does not match `"content"\\s*:"` — no space between the colon and the quote — so
Python's default `", "`/`": "` separators made every completion vanish. Compact JSON also
holds no raw newline (Vim's job channels hand a callback one line at a time) and is smaller
over the tailnet.
"""

from __future__ import annotations

import json
from typing import Any

SEPARATORS = (",", ":")


def dumps(obj: Any) -> str:
    """`obj` as compact JSON text, non-ASCII characters as they are (UTF-8 on the wire)."""
    return json.dumps(obj, ensure_ascii=False, separators=SEPARATORS)


def dump_bytes(obj: Any) -> bytes:
    """`obj` as compact UTF-8 JSON bytes."""
    return dumps(obj).encode("utf-8")


def sse_event(data: Any) -> bytes:
    """One server-sent event: `data: <compact JSON>` (a str, such as `[DONE]`, as it is)."""
    payload = data if isinstance(data, str) else dumps(data)
    return f"data: {payload}\n\n".encode()
