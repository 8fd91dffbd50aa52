"""ASGI wrapper around the Falcon app: request IDs, releasing admitted requests, one log line
per request, cancellation of the request's task when its client disconnects, and a deadline
on every write to the client.

Falcon notices a disconnect only when it next writes an SSE event, and never while a
responder waits; cancelling the task (as aiohttp's handler_cancellation does) closes the
upstream request at once, so the backend stops generating. A client that stops reading
without disconnecting is treated the same once a write has waited `write_timeout` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from cerebrum import context as context_
from cerebrum.activation import Activity, Clock
from cerebrum.cors import Cors

from ..errors import ClientStalled
from ..metrics import Metrics

log = structlog.get_logger("cerebrum.orchestrator")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Requests that do work (the pipeline, a model call): admitted up to `max_concurrent`.
SHEDDABLE = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/context/preview",
                       "/infill", "/completion", "/v1/responses", "/v1/messages"})


@dataclass
class RequestContext(context_.RequestContext):
    """Per-request facts: id, arrival time, fields resources add to the log line, and whether
    it holds an admission."""

    admitted: bool = False
    # Run when the request ends however it ends: Falcon never closes an SSE generator it
    # stopped iterating (a stalled client), and that generator holds the upstream stream.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass
class Load:
    """Admitted requests in flight, for shedding. `admit` checks and takes a place in one
    step (no await between), so a burst admits exactly `limit` and a refusal never counts.
    The limit is `max_concurrent`, or the generations the backends report they run at once
    (`capacity`) when that is more: several clients reach a backend's sequences instead of
    being shed here."""

    floor: int
    in_flight: int = 0
    capacity: Callable[[], int] = lambda: 0

    @property
    def limit(self) -> int:
        """Requests admitted at most now."""
        return max(self.floor, self.capacity())

    def admit(self) -> bool:
        """Take a place if one is free."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give an admitted request's place back."""
        self.in_flight -= 1


def context(scope: Scope) -> RequestContext:
    """The RequestContext the wrapper put in the scope."""
    ctx: RequestContext = scope["cerebrum.context"]
    return ctx


class Lifecycle:
    """The outermost ASGI layer (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, load: Load, activity: Activity, metrics: Metrics,
                 clock: Clock, write_timeout: float, cors: Cors | None = None,
                 owner: Any = None, max_body_bytes: int | None = None):
        self._app, self._load, self._activity = app, load, activity
        self._max_body = max_body_bytes
        self._cors = cors or Cors()
        self._metrics, self._clock = metrics, clock
        self._write_timeout = write_timeout
        self.owner = owner  # what built the app (the Services), for the entry point and tests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = _header(headers, b"origin")
        preflight = Cors.is_preflight(scope["method"], origin,
                                      _header(headers, b"access-control-request-method"))
        app = self._preflight(origin) if preflight else self._app
        cors = [] if preflight else _encoded(self._cors.headers(origin))
        ctx = RequestContext(context_.request_id(_header(headers, b"x-request-id")),
                             self._clock())
        scope["cerebrum.context"] = ctx
        # Bound before the request's task is created, so every log line inside carries it.
        structlog.contextvars.bind_contextvars(request_id=ctx.request_id)
        self._activity.begin()
        status = 0
        body_read = asyncio.Event()
        finished = asyncio.Event()
        gone = asyncio.Event()
        # Falcon waits for the body's first chunk before it runs anything: a body announced
        # over the limit, refused unread (413), gets an empty one at once, not the client's.
        early = self._over_limit(_header(headers, b"content-length"))

        async def app_receive() -> Message:
            nonlocal early
            if early:
                early = False
                return {"type": "http.request", "body": b"", "more_body": True}
            if body_read.is_set():  # only a disconnect can come now; the watcher sees it
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body"):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *cors,
                                      (b"x-request-id", ctx.request_id.encode())]
            elif not message.get("more_body"):
                finished.set()
            try:
                async with asyncio.timeout(self._write_timeout):
                    await send(message)  # waits while the client's socket is full
            except TimeoutError:
                raise ClientStalled from None

        task = asyncio.ensure_future(app(scope, app_receive, app_send))

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            if not finished.is_set():
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await task
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            status = 499  # the client went away (nginx's code for it)
        except ClientStalled:
            # Raised out of the request's task, whose clean-up closed the upstream stream (the
            # backend stops). Returning with the response incomplete makes uvicorn close the
            # connection.
            self._metrics.stalled.inc()
            status = 499
            ctx.log["stalled"] = True
            gone.set()  # ends Falcon's own disconnect watcher too
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            for close in ctx.closers:
                with suppress(Exception):
                    await close()
            if ctx.admitted:
                self._load.release()
                self._metrics.in_flight.dec()
            self._activity.end()
            path = scope["path"] if scope["path"] in _KNOWN else "unmatched"
            self._metrics.requests.labels(path, str(status)).inc()
            log.info("request", method=scope["method"], path=path, status=status,
                     ms=round((self._clock() - ctx.started) * 1000, 1), **ctx.log)
            structlog.contextvars.unbind_contextvars("request_id")


    def _over_limit(self, length: str | None) -> bool:
        """Whether a Content-Length announces a body over `max_body_bytes`."""
        return (self._max_body is not None and length is not None and length.isdigit()
                and int(length) > self._max_body)

    def _preflight(self, origin: str | None) -> ASGIApp:
        """A browser's CORS preflight, answered before auth and shedding (it never carries a
        key): 204, with Access-Control-* headers only for an allowed origin."""
        headers = _encoded(self._cors.preflight(origin))

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})

        return answer


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]


_KNOWN = frozenset({*SHEDDABLE, "/v1/context/preview", "/v1/models", "/health", "/stats",
                    "/metrics", "/v1/responses/input_tokens", "/v1/messages/count_tokens"})
