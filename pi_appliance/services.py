"""The long-lived objects one orchestrator process owns, created by the app factory and the
startup hook (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from cerebrum.activation import Activity, Clock

from .infill_context import OrderMemory
from .lifecycle import Load
from .metrics import Metrics
from .pipeline.config import PipelineConfig
from .proxy import Proxy
from .settings import Settings, Timeouts
from .stats import Stats
from .upstream import TokenCounter
from .workers import WorkerPool

SessionFactory = Callable[[Timeouts], aiohttp.ClientSession]


@dataclass
class Services:
    """What resources reach; `proxy`, `counter` and `session` exist between startup and
    shutdown."""

    settings: Settings
    clock: Clock
    session_factory: SessionFactory
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

    async def start(self) -> None:
        """Open the pooled upstream session (ASGI lifespan startup)."""
        self.session = self.session_factory(self.settings.timeouts)
        self.proxy = Proxy(self.settings, self.session, self.metrics, self.clock)
        self.counter = TokenCounter(self.session, self.settings.timeouts.connect + 5.0,
                                    self.metrics)
        self.workers = WorkerPool(self.settings.pipeline.workers)
        await self.workers.start()

    async def stop(self) -> None:
        """Close the pooled session and stop the pipeline's workers (ASGI lifespan shutdown)."""
        if self.session is not None:
            await self.session.close()
        if self.workers is not None:
            await self.workers.stop()
