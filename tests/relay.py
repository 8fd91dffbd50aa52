"""A TCP relay that adds link latency (the kernel here has no netem): a stand-in for the
Pi <-> VPS tailnet in tests and benchmarks.

Each direction delivers what it reads `rtt / 2` later, in order; a new connection's first
bytes also wait one `rtt`, the TCP handshake a real link would cost. It counts the
connections it accepted, so a test can see whether a client reused its pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Relay:
    """Relays 127.0.0.1:<port> to `target` with `rtt` seconds of round-trip latency."""

    def __init__(self, target_host: str, target_port: int, rtt: float):
        self.target = (target_host, target_port)
        self.rtt = rtt
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Relay:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # each pipe then sees its end and returns
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        loop = asyncio.get_running_loop()
        opened_at = loop.time() + self.rtt  # the handshake a real link would cost
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            self._writers.discard(client_w)
            self._tasks.discard(task)
            return
        self._writers.add(server_w)
        try:
            await asyncio.gather(self._pipe(client_r, server_w, opened_at),
                                 self._pipe(server_r, client_w, 0.0))
        finally:
            for writer in (client_w, server_w):
                writer.close()
                self._writers.discard(writer)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    not_before: float) -> None:
        """Copy reader to writer, each piece delivered rtt/2 after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((max(loop.time(), not_before) + self.rtt / 2, data))
            queue.put_nowait((loop.time() + self.rtt / 2, b""))
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender


@contextlib.asynccontextmanager
async def relay(url: str, rtt: float) -> AsyncIterator[Relay]:
    """A started Relay in front of http://host:port, closed after the block."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    r = await Relay(host, int(port), rtt).start()
    try:
        yield r
    finally:
        await r.close()
