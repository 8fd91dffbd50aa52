"""ASGI wrapper around the Falcon app: request IDs, in-flight accounting, one log line per
request, and cancellation of the request's task when its client disconnects.

Falcon notices a disconnect only when it next writes an SSE event, and never while a
responder waits; cancelling the task (as aiohttp's handler_cancellation does) closes the
upstream request at once, so the backend stops generating.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from cerebrum.activation import Activity, Clock

from .metrics import Metrics

log = structlog.get_logger("cerebrum.orchestrator")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SHEDDABLE = frozenset({"/v1/chat/completions", "/v1/completions"})


@dataclass
class RequestContext:
    """Per-request facts: id, arrival time, fields resources add to the log line."""

    request_id: str
    started: float
    log: dict[str, Any] = field(default_factory=dict)


@dataclass
class Load:
    """Completion requests in flight, for shedding."""

    in_flight: int = 0


def context(scope: Scope) -> RequestContext:
    """The RequestContext the wrapper put in the scope."""
    ctx: RequestContext = scope["cerebrum.context"]
    return ctx


class Lifecycle:
    """The outermost ASGI layer (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, load: Load, activity: Activity, metrics: Metrics,
                 clock: Clock, owner: Any = None):
        self._app, self._load, self._activity = app, load, activity
        self._metrics, self._clock = metrics, clock
        self.owner = owner  # what built the app (the Services), for the entry point and tests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        ctx = RequestContext(given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex,
                             self._clock())
        scope["cerebrum.context"] = ctx
        # Bound before the request's task is created, so every log line inside carries it.
        structlog.contextvars.bind_contextvars(request_id=ctx.request_id)
        counted = scope["path"] in SHEDDABLE and scope["method"] == "POST"
        if counted:
            self._load.in_flight += 1
            self._metrics.in_flight.inc()
        self._activity.begin()
        status = 0
        body_read = asyncio.Event()
        finished = asyncio.Event()
        gone = asyncio.Event()

        async def app_receive() -> Message:
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
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", ctx.request_id.encode())]
            elif not message.get("more_body"):
                finished.set()
            await send(message)

        task = asyncio.ensure_future(self._app(scope, app_receive, app_send))

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
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            if counted:
                self._load.in_flight -= 1
                self._metrics.in_flight.dec()
            self._activity.end()
            path = scope["path"] if scope["path"] in _KNOWN else "unmatched"
            self._metrics.requests.labels(path, str(status)).inc()
            log.info("request", method=scope["method"], path=path, status=status,
                     ms=round((self._clock() - ctx.started) * 1000, 1), **ctx.log)
            structlog.contextvars.unbind_contextvars("request_id")


_KNOWN = frozenset({*SHEDDABLE, "/v1/context/preview", "/v1/models", "/health", "/stats",
                    "/metrics"})
