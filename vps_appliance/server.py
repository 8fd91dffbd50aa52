"""Running the app: a bound or socket-activated listener, signals, and idle exit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Mapping

import structlog
from aiohttp import web

from .state import ACTIVITY

log = structlog.get_logger("cerebrum.backend")

SD_LISTEN_FDS_START = 3


def inherited_socket(environ: Mapping[str, str] = os.environ, pid: int | None = None,
                     ) -> socket.socket | None:
    """The first socket systemd passed us (LISTEN_PID/LISTEN_FDS), if any."""
    if environ.get("LISTEN_PID") != str(pid if pid is not None else os.getpid()):
        return None
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    sock.setblocking(False)
    return sock


def host_of(sock: socket.socket) -> str:
    """The address an inherited socket listens on."""
    return str(sock.getsockname()[0]) if sock.family in (socket.AF_INET, socket.AF_INET6) \
        else "localhost"


async def _idle_watch(app: web.Application, idle_exit: float, stop: asyncio.Event) -> None:
    activity = app[ACTIVITY]
    while True:
        idle = activity.idle_for()
        if idle >= idle_exit:
            log.info("idle_exit", idle_seconds=round(idle, 1))
            stop.set()
            return
        await asyncio.sleep(idle_exit - idle if activity.in_flight == 0 else 1.0)


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
    watcher = asyncio.create_task(_idle_watch(app, idle_exit, stop)) if idle_exit > 0 else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        log.info("shutting_down")
        await runner.cleanup()
