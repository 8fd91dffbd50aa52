"""Typed application keys: how handlers reach the long-lived objects the factory made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .engine import Clock, ModelSlot
from .metrics import Metrics
from .settings import Settings


@dataclass
class Activity:
    """When the server last did something, for --idle-exit."""

    clock: Clock
    in_flight: int = 0
    last: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last = self.clock()

    def idle_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in flight."""
        return 0.0 if self.in_flight else self.clock() - self.last


SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SLOTS = web.AppKey("slots", dict[str, ModelSlot])
ACTIVITY = web.AppKey("activity", Activity)
CLOCK = web.AppKey("clock", Callable[[], float])


@dataclass
class RequestContext:
    """Per-request facts the middleware logs: id, start time, and fields handlers add."""

    request_id: str
    started: float
    log: dict[str, object] = field(default_factory=dict)


CONTEXT = web.RequestKey("context", RequestContext)
