"""The command line both services share: --config/--host/--port/--idle-exit, settings,
the systemd socket if any, and the exposure check — or one line on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .activation import host_of, inherited_socket
from .config import ConfigError, check_exposure, check_range

S = TypeVar("S")


def start(prog: str, description: str, default_port: int,
          load: Callable[[Path | None], S], argv: list[str] | None = None,
          ) -> tuple[S, socket.socket | None] | None:
    """Settings and inherited socket, or None after printing what is wrong."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"bind port (default {default_port})")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this long without a request (for socket activation)")
    args = parser.parse_args(argv)
    try:
        check_flags(args)
        settings: Any = load(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                       ("idle_exit", args.idle_exit)) if v is not None}
        settings = dataclasses.replace(settings, **overrides)
        sock = inherited_socket()
        check_exposure(host_of(sock) if sock is not None else settings.host, settings.api_keys)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    return settings, sock


def check_flags(args: argparse.Namespace) -> None:
    """The command-line overrides validated like the config values they replace, each
    message naming the flag."""
    if args.host is not None and not args.host.strip():
        raise ConfigError("--host: must not be empty")
    if args.port is not None:
        check_range("--port", args.port, 0, 65535)
    if args.idle_exit is not None:
        if args.idle_exit != args.idle_exit or args.idle_exit == float("inf"):
            raise ConfigError(f"--idle-exit: must be a finite number of seconds, "
                              f"got {args.idle_exit}")
        check_range("--idle-exit", args.idle_exit, 0.0)
