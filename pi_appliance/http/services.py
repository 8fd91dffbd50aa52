"""The long-lived objects one orchestrator process owns, created by the app factory and the
startup hook (no module-level state).

Nothing here waits or imports much at start-up: a socket-activated orchestrator starts on the
connection it then answers, often a `/health`. The pooled upstream session (aiohttp's client)
is opened on the first call to a backend, and the pipeline's workers start in the background
(`WorkerPool.run` waits for them before its deadline starts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cerebrum.activation import Activity, Clock

from ..infill.context import OrderMemory
from ..metrics import Metrics
from ..pipeline.config import PipelineConfig
from ..planning.workers import WorkerPool
from ..settings import Settings, Timeouts
from ..stats import Stats
from ..upstream.client import TokenCounter, new_session
from ..upstream.proxy import Proxy
from .lifecycle import Load

if TYPE_CHECKING:
    import aiohttp

SessionFactory = Callable[[Timeouts], "aiohttp.ClientSession"]


@dataclass
class Services:
    """What resources reach; `proxy`, `counter` and `workers` exist between startup and
    shutdown, `session` from the first upstream call to shutdown."""

    settings: Settings
    clock: Clock
    session_factory: SessionFactory = new_session
    metrics: Metrics = field(default_factory=Metrics)
    stats: Stats = field(default_factory=Stats)
    load: Load = field(init=False)
    activity: Activity = field(init=False)
    pipeline: PipelineConfig = field(init=False)
    session: aiohttp.ClientSession | None = None
    proxy: Proxy | None = None
    counter: TokenCounter | None = None
    workers: WorkerPool | None = None  # the context pipeline runs in these processes
    orders: OrderMemory = field(default_factory=OrderMemory)  # FIM context order per client

    def __post_init__(self) -> None:
        self.load = Load(self.settings.max_concurrent)
        self.activity = Activity(self.clock)
        p = self.settings.pipeline
        self.pipeline = PipelineConfig(chunk_threshold=p.chunk_threshold, top_k=p.top_k,
                                       min_reduction=p.min_reduction)

    def upstream(self) -> aiohttp.ClientSession:
        """The pooled upstream session, opened on first use."""
        if self.session is None:
            self.session = self.session_factory(self.settings.timeouts)
        return self.session

    async def start(self) -> None:
        """Set up the proxy and the token counter, and start the pipeline's workers without
        waiting for them (ASGI lifespan startup)."""
        self.proxy = Proxy(self.settings, self.upstream, self.metrics, self.clock)
        self.load.capacity = self.proxy.balancer.capacity
        self.counter = TokenCounter(self.upstream, self.settings.timeouts.connect + 5.0,
                                    self.metrics)
        self.workers = WorkerPool(self.settings.pipeline.workers)
        self.workers.start()

    async def stop(self) -> None:
        """Close the pooled session and stop the pipeline's workers (ASGI lifespan shutdown)."""
        if self.session is not None:
            await self.session.close()
        if self.workers is not None:
            await self.workers.stop()
