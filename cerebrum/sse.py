"""Reading OpenAI-style server-sent events: `data:` payloads, `[DONE]`, nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

DONE = "[DONE]"


class MalformedStream(ValueError):
    """An event that is not JSON (or not an object), or a line that is not SSE."""


def parse_data(line: bytes | str) -> str | None:
    """The payload of a `data:` line; None for blank lines, comments and other fields."""
    text = line.decode("utf-8") if isinstance(line, bytes) else line
    text = text.rstrip("\r\n")
    if not text or text.startswith(":"):
        return None
    field, sep, value = text.partition(":")
    if not sep:
        raise MalformedStream(f"not an SSE line: {text[:80]!r}")
    if field != "data":
        return None  # event:, id:, retry: carry nothing we use
    return value[1:] if value.startswith(" ") else value


def parse_event(payload: str) -> dict[str, Any]:
    """A `data:` payload as a JSON object."""
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        raise MalformedStream(f"event is not JSON: {payload[:80]!r}") from None
    if not isinstance(event, dict):
        raise MalformedStream(f"event is not a JSON object: {payload[:80]!r}")
    return event


async def events(lines: AsyncIterable[bytes], *, until_done: bool = True
                 ) -> AsyncIterator[dict[str, Any]]:
    """JSON events from a line stream, stopping at `[DONE]`; MalformedStream if it ends early.
    `until_done=False` reads to the end instead (llama.cpp's /infill sends no `[DONE]`)."""
    async for line in lines:
        payload = parse_data(line)
        if payload is None:
            continue
        if payload == DONE:
            return
        yield parse_event(payload)
    if until_done:
        raise MalformedStream("stream ended without [DONE]")
