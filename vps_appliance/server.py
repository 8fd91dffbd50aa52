"""Running the app: a bound or socket-activated listener, signals, and idle exit."""

from __future__ import annotations

import asyncio
import signal
import socket

import structlog
from aiohttp import web

from cerebrum.activation import wait_idle

from .state import ACTIVITY

log = structlog.get_logger("cerebrum.backend")


async def _idle_exit(app: web.Application, idle_exit: float, stop: asyncio.Event) -> None:
    idle = await wait_idle(app[ACTIVITY], idle_exit)
    log.info("idle_exit", idle_seconds=round(idle, 1))
    stop.set()


async def serve(app: web.Application, *, host: str, port: int, idle_exit: float,
                sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM or `idle_exit` seconds without a request."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           shutdown_timeout=5.0)
    await runner.setup()
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    log.info("listening", addresses=[str(a) for a in runner.addresses],
             socket_activated=sock is not None)
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
