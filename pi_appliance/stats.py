"""In-process counters and recent latency percentiles for GET /stats, and the speculative
decoding figures of one response's `cerebrum` object."""

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


def drafting(usage: Any) -> dict[str, int | None]:
    """`drafted_tokens` and `accepted_tokens` from an upstream usage's completion_tokens_details
    (OpenAI's Predicted Outputs: accepted_prediction_tokens, rejected_prediction_tokens; drafted
    is their sum). None, not 0, when the upstream does not report them (llama-server, or a
    backend without speculative decoding): unknown is not "nothing drafted"."""
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    counts = [details.get(k) if isinstance(details, dict) else None
              for k in ("accepted_prediction_tokens", "rejected_prediction_tokens")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return {"drafted_tokens": None, "accepted_tokens": None}
    accepted, rejected = counts
    return {"drafted_tokens": accepted + rejected, "accepted_tokens": accepted}


def queue_ms(timings: Any) -> float | None:
    """How long the backend held the request before its turn (its `timings.queue_ms`); None
    when the upstream does not say (llama-server)."""
    value = timings.get("queue_ms") if isinstance(timings, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


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
