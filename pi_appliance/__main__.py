"""`cerebrum-orchestrator`: parse arguments, build settings, serve with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

import structlog
import uvicorn

from cerebrum import cli, logs
from cerebrum.activation import host_of, wait_idle

from .http.app import create_app
from .http.server import uvicorn_config
from .settings import Settings, load_settings

log = structlog.get_logger("cerebrum.orchestrator")


async def serve(settings: Settings, sock: socket.socket | None) -> None:
    """uvicorn on the inherited socket or host:port, until a signal or idle exit."""
    app = create_app(settings)
    config = uvicorn_config(app, host=settings.host, port=settings.port)
    server = uvicorn.Server(config)

    async def idle_exit() -> None:
        idle = await wait_idle(app.owner.activity, settings.idle_exit)
        log.info("idle_exit", idle_seconds=round(idle, 1))
        server.should_exit = True

    watcher = asyncio.create_task(idle_exit()) if settings.idle_exit > 0 else None
    log.info("listening", host=host_of(sock) if sock else settings.host,
             port=sock.getsockname()[1] if sock else settings.port,
             socket_activated=sock is not None)
    try:
        await server.serve(sockets=[sock] if sock is not None else None)
    finally:
        if watcher is not None:
            watcher.cancel()
        log.info("shutting_down")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cerebrum-orchestrator` console script."""
    started = cli.start("cerebrum-orchestrator", "Cerebrum orchestrator (OpenAI-compatible).",
                        7000, load_settings, argv)
    if started is None:
        return 2
    settings, sock = started
    logs.configure(settings.log_level)
    # uvicorn stops gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before: make that a clean exit rather than death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, sock))
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
