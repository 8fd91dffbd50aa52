"""In-process counters and recent latency percentiles for GET /stats."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Stats:
    """What /stats reports; bounded memory (the last `window` latencies)."""

    window: int = 200
    counters: Counter[str] = field(default_factory=Counter)
    ttft_ms: deque[float] = field(default_factory=deque)
    pipeline_ms: deque[float] = field(default_factory=deque)

    def count(self, name: str) -> None:
        """Bump a named counter."""
        self.counters[name] += 1

    def observe(self, series: deque[float], value: float) -> None:
        """Record one latency, forgetting the oldest beyond the window."""
        series.append(value)
        while len(series) > self.window:
            series.popleft()

    def snapshot(self) -> dict[str, Any]:
        """Counters and p50/p90/p99 of the recent latencies."""
        def summary(series: deque[float]) -> dict[str, float | None]:
            values = list(series)
            return {f"p{q}": percentile(values, q) for q in (50, 90, 99)}

        return {"counters": dict(self.counters), "ttft_ms": summary(self.ttft_ms),
                "pipeline_ms": summary(self.pipeline_ms), "window": self.window}
