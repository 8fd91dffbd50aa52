"""Spreading a route's requests over its backends: least outstanding requests per unit of
capacity (its weight times the sequences it reports: generations its model runs at once),
ties taken in turn. The order is pure (`order`); `Balancer` keeps the counts and the reported
sequences, one per process, created at startup with the proxy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Candidate:
    """A backend as the balancer sees it: requests it has in flight, and its weight."""

    name: str
    outstanding: int
    weight: int = 1


def order(candidates: Sequence[Candidate], start: int = 0) -> list[str]:
    """The names in the order to try them: least `(outstanding + 1) / weight` first (the load
    a backend would carry with this request, so weights count even when all are idle); ties
    in the given (settings) order rotated to begin at index `start` (round-robin)."""
    n = len(candidates)

    def key(i: int) -> tuple[Fraction, int]:
        c = candidates[i]
        return Fraction(c.outstanding + 1, c.weight), (i - start) % n

    return [candidates[i].name for i in sorted(range(n), key=key)]


class Lease:
    """One outstanding request on one backend; `release` is idempotent."""

    def __init__(self, name: str, done: Callable[[str], None]):
        self.name = name
        self._done: Callable[[str], None] | None = done

    @property
    def held(self) -> bool:
        """Whether the request still counts as outstanding."""
        return self._done is not None

    def release(self) -> None:
        """The request ended (however it ended): it no longer counts."""
        done, self._done = self._done, None
        if done is not None:
            done(self.name)


Listener = Callable[[str, int], None]


class Balancer:
    """Outstanding requests per backend and each route's round-robin position.

    `listener(name, outstanding)` hears every change of a count (for the metrics gauge)."""

    def __init__(self, weights: Mapping[str, int], listener: Listener | None = None):
        self._weights = dict(weights)
        self._outstanding = dict.fromkeys(self._weights, 0)
        self._sequences = dict.fromkeys(self._weights, 1)  # until a backend says
        self._next: dict[str, int] = {}  # route → index its next tie starts at
        self._listener = listener

    def outstanding(self, name: str) -> int:
        """Requests `name` has in flight through this process."""
        return self._outstanding[name]

    def learn(self, name: str, sequences: int) -> None:
        """`name` reported how many generations it runs at once."""
        self._sequences[name] = sequences

    def capacity(self) -> int:
        """Generations the backends run at once, as they last reported (1 each until then)."""
        return sum(self._sequences.values())

    def order(self, route: str, backends: Sequence[str]) -> list[str]:
        """`route`'s backends in the order to try them now (see `order`)."""
        return order([Candidate(b, self._outstanding[b], self._weights[b] * self._sequences[b])
                      for b in backends],
                     self._next.get(route, 0) % max(1, len(backends)))

    def take(self, route: str, backends: Sequence[str], name: str) -> Lease:
        """Count a request sent to `name` (one of `route`'s `backends`) until its lease is
        released; the route's next tie starts after it."""
        self._next[route] = backends.index(name) + 1
        self._change(name, +1)
        return Lease(name, lambda n: self._change(n, -1))

    def _change(self, name: str, by: int) -> None:
        self._outstanding[name] += by
        if self._listener is not None:
            self._listener(name, self._outstanding[name])
