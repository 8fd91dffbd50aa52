"""systemd socket activation and idle exit, for services started on demand."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

SD_LISTEN_FDS_START = 3
Clock = Callable[[], float]


def inherited_socket(environ: Mapping[str, str] = os.environ, pid: int | None = None,
                     first_fd: int = SD_LISTEN_FDS_START) -> socket.socket | None:
    """The first socket systemd passed us (LISTEN_PID/LISTEN_FDS, from fd 3), if any."""
    if environ.get("LISTEN_PID") != str(pid if pid is not None else os.getpid()):
        return None
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    sock = socket.socket(fileno=first_fd)
    sock.setblocking(False)
    return sock


def host_of(sock: socket.socket) -> str:
    """The address an inherited socket listens on ('localhost' for a Unix socket)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return str(sock.getsockname()[0])
    return "localhost"


@dataclass
class Activity:
    """When a service last did something, for --idle-exit."""

    clock: Clock
    in_flight: int = 0
    last: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last = self.clock()

    def begin(self) -> None:
        """A request started."""
        self.in_flight += 1

    def end(self) -> None:
        """A request ended."""
        self.in_flight -= 1
        self.last = self.clock()

    def idle_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in flight."""
        return 0.0 if self.in_flight else self.clock() - self.last


async def wait_idle(activity: Activity, idle_exit: float) -> float:
    """Return once nothing has happened for `idle_exit` seconds; the idle time."""
    while True:
        idle = activity.idle_for()
        if idle >= idle_exit:
            return idle
        await asyncio.sleep(idle_exit - idle if activity.in_flight == 0 else 1.0)
