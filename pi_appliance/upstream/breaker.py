"""Per-backend circuit breaker: closed → open → half-open (one probe) → closed or open again."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from cerebrum.activation import Clock

from ..settings import BreakerPolicy


class State(Enum):
    """Breaker states; the value is what /health and metrics show."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class Breaker:
    """Opens after `failures` consecutive failures or a failure rate over the last `window`."""

    policy: BreakerPolicy
    clock: Clock
    state: State = State.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    probing: bool = False
    recent: deque[bool] = field(default_factory=deque)  # True = failure

    def retry_after(self) -> int:
        """Whole seconds until a probe may go through (at least 1)."""
        left = self.opened_at + self.policy.cooldown - self.clock()
        return max(1, math.ceil(left))

    def acquire(self) -> bool:
        """May a request go to this backend now? In half-open, only one probe at a time."""
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.policy.cooldown:
            self.state = State.HALF_OPEN
            self.probing = False
        if self.state is State.CLOSED:
            return True
        if self.state is State.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    @property
    def is_probe(self) -> bool:
        """Whether the request in flight is the half-open probe (it gets its own timeout)."""
        return self.state is State.HALF_OPEN and self.probing

    def success(self) -> None:
        """The backend answered: close (a probe's success closes the circuit)."""
        self.state = State.CLOSED
        self.consecutive = 0
        self.probing = False
        self._remember(False)

    def failure(self) -> None:
        """The backend failed or timed out: count it, and open when the policy says so."""
        self.consecutive += 1
        self._remember(True)
        if self.state is State.HALF_OPEN or self._should_open():
            self.state = State.OPEN
            self.opened_at = self.clock()
            self.probing = False

    def release(self) -> None:
        """A request ended without a verdict (the client left): let another probe go."""
        self.probing = False

    def _remember(self, failed: bool) -> None:
        self.recent.append(failed)
        while len(self.recent) > self.policy.window:
            self.recent.popleft()

    def _should_open(self) -> bool:
        if self.consecutive >= self.policy.failures:
            return True
        full = len(self.recent) >= self.policy.window
        return full and sum(self.recent) / len(self.recent) >= self.policy.failure_rate
