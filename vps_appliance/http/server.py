"""Running the app: a bound or socket-activated listener, signals, and idle exit."""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from cerebrum.activation import wait_idle

from .app import MAX_LINE_BYTES, error_response, protocol_error
from .state import ACTIVITY

log = structlog.get_logger("cerebrum.backend")


class _JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser rejects as JSON errors.

    aiohttp's own answer is plain text quoting the offending bytes (an oversized
    `Authorization` header, say), and it logs them too; this one does neither.
    """

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """The JSON error for a request no handler saw; aiohttp closes the connection."""
        if request.writer.output_size > 0:  # mid-response: the connection is all we can end
            raise ConnectionError("the response has started; closing the connection")
        error, request_id = protocol_error(exc, MAX_LINE_BYTES), uuid.uuid4().hex
        log.info("protocol_error", request_id=request_id, status=error.status, code=error.code,
                 error=type(exc).__name__ if exc is not None else None)
        response = error_response(error, request_id)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    """An aiohttp low-level server whose connections use `_JsonErrorHandler`."""

    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class BackendRunner(web.AppRunner):
    """The AppRunner the backend serves with: JSON errors down to the HTTP parser."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(app, handler_cancellation=True, access_log=None, shutdown_timeout=5.0,
                         max_line_size=MAX_LINE_BYTES, max_field_size=MAX_LINE_BYTES)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside the app; only the class of the per-connection
        # handler it makes changes (no state is added).
        server.__class__ = _JsonErrorServer
        return server


async def start(app: web.Application, *, host: str, port: int,
                sock: socket.socket | None = None) -> BackendRunner:
    """Start serving `app` (on `sock` when socket-activated); the caller cleans up."""
    runner = BackendRunner(app)
    await runner.setup()
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    log.info("listening", addresses=[str(a) for a in runner.addresses],
             socket_activated=sock is not None)
    return runner


async def _idle_exit(app: web.Application, idle_exit: float, stop: asyncio.Event) -> None:
    idle = await wait_idle(app[ACTIVITY], idle_exit)
    log.info("idle_exit", idle_seconds=round(idle, 1))
    stop.set()


async def serve(app: web.Application, *, host: str, port: int, idle_exit: float,
                sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM or `idle_exit` seconds without a request."""
    runner = await start(app, host=host, port=port, sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_idle_exit(app, idle_exit, stop)) if idle_exit > 0 else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        log.info("shutting_down")
        await runner.cleanup()
