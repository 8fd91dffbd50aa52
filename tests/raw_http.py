"""One HTTP/1.1 request over a bare asyncio connection, for the cold-start probes: they run in
a fresh interpreter and must import nothing an HTTP client library would (aiohttp's client is
what the orchestrator's probe checks is not loaded)."""

from __future__ import annotations

import asyncio


async def call(port: int, path: str, body: bytes | None = None) -> tuple[str, str]:
    """GET `path` (POST with a JSON `body`) on 127.0.0.1:`port`: the status line and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"{'POST' if body else 'GET'} {path} HTTP/1.1\r\nHost: x\r\n"
            "Connection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body or b'')}\r\n\r\n").encode()
    writer.write(head + (body or b""))
    answer = await reader.read()
    writer.close()
    status, _, rest = answer.partition(b"\r\n")
    return status.decode(), rest.partition(b"\r\n\r\n")[2].decode()
