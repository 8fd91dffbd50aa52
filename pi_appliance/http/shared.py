"""What the completion and fill-in-the-middle resources share: the request body read as
JSON within its limit, and `Timed`, one opened upstream stream timed and settled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from falcon.asgi import Request

from ..errors import PayloadTooLarge, UpstreamError
from ..upstream.proxy import Opened
from ..wire import protocol
from .services import Services


async def read_json(req: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, bounded by `limit` bytes."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    raw = await req.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    return protocol.decode(raw)


def _text_of(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    delta = choice.get("delta")
    return str((delta or {}).get("content") or "") if delta is not None else str(
        choice.get("text") or "")


class Timed:
    """One opened upstream stream: its chunks, timed (TTFT, rate), its breaker settled."""

    def __init__(self, services: Services, route: str, opened: Opened, started: float,
                 text_of: Callable[[dict[str, Any]], str] = _text_of):
        self.s, self.route, self.opened, self.started = services, route, opened, started
        self.text_of = text_of
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.tokens = 0
        self.usage: Any = None  # the upstream's, from the chunk that carries it (the last)
        self.timings: Any = None  # the upstream's (llama-server's `timings`, our `queue_ms`)

    def _saw(self, chunk: dict[str, Any]) -> None:
        self.usage = chunk.get("usage") or self.usage
        self.timings = chunk.get("timings") or self.timings
        if self.text_of(chunk):
            now = self.s.clock()
            if self.first_at is None:
                self.first_at = now
                ttft = now - self.started
                self.s.metrics.ttft.labels(self.route).observe(ttft)
                self.s.stats.observe(self.s.stats.ttft_ms, ttft * 1000)
            self.last_at = now
            self.tokens += 1

    def timing(self) -> tuple[float | None, float | None]:
        """(TTFT, tokens per second after the first), None where unknown; counts the tokens."""
        ttft = None if self.first_at is None else self.first_at - self.started
        rate = None
        if self.first_at is not None and self.last_at is not None and self.tokens > 1 \
                and self.last_at > self.first_at:
            rate = (self.tokens - 1) / (self.last_at - self.first_at)
        self.s.metrics.tokens.labels("completion").inc(self.tokens)
        return ttft, rate

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """The upstream chunks; settles the breaker (success, failure, or no verdict)."""
        proxy, o = self.s.proxy, self.opened
        assert proxy is not None
        settled = False
        try:
            self._saw(o.first)
            yield o.first
            async for chunk in o.rest:
                self._saw(chunk)
                yield chunk
            if not o.succeeded:
                proxy.succeeded(o.backend, o.breaker)
            settled = True
        except UpstreamError as exc:
            proxy.failed(o.backend, o.breaker, exc)
            settled = True
            raise
        finally:
            if not settled:
                o.breaker.release()
            await o.rest.aclose()  # closes the upstream connection: the backend stops
