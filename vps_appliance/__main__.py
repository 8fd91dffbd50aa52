"""`cerebrum-backend`: parse arguments, build settings, serve."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from cerebrum import logs
from cerebrum.activation import host_of, inherited_socket
from cerebrum.config import ConfigError, check_exposure

from .settings import load_settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cerebrum-backend` console script."""
    parser = argparse.ArgumentParser(prog="cerebrum-backend",
                                     description="Cerebrum inference backend (OpenAI-compatible).")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="bind port (default 9000)")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this long without a request (for socket activation)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                       ("idle_exit", args.idle_exit)) if v is not None}
        if overrides:
            settings = dataclasses.replace(settings, **overrides)
        sock = inherited_socket()
        check_exposure(host_of(sock) if sock is not None else settings.host, settings.api_keys)
    except ConfigError as exc:
        print(f"cerebrum-backend: {exc}", file=sys.stderr)
        return 2
    try:
        from .app import make_app  # imports llama-cpp-python
        from .server import serve
    except ImportError as exc:
        print(f"cerebrum-backend: {exc.name} is missing: pip install 'cerebrum[backend]'",
              file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    app = make_app(settings)
    asyncio.run(serve(app, host=settings.host, port=settings.port,
                      idle_exit=settings.idle_exit, sock=sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
