"""`cerebrum-orchestrator`: parse arguments, build settings, serve with uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys
from pathlib import Path

import structlog
import uvicorn

from cerebrum import logs
from cerebrum.activation import host_of, inherited_socket, wait_idle
from cerebrum.config import ConfigError, check_exposure

from .app import create_app
from .settings import Settings, load_settings

log = structlog.get_logger("cerebrum.orchestrator")


async def serve(settings: Settings, sock: socket.socket | None) -> None:
    """uvicorn on the inherited socket or host:port, until a signal or idle exit."""
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on",
                            log_config=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=5)
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
    parser = argparse.ArgumentParser(prog="cerebrum-orchestrator",
                                     description="Cerebrum orchestrator (OpenAI-compatible).")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="bind port (default 7000)")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this long without a request (for socket activation)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                       ("idle_exit", args.idle_exit)) if v is not None}
        settings = dataclasses.replace(settings, **overrides)
        sock = inherited_socket()
        check_exposure(host_of(sock) if sock is not None else settings.host, settings.api_keys)
    except ConfigError as exc:
        print(f"cerebrum-orchestrator: {exc}", file=sys.stderr)
        return 2
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
