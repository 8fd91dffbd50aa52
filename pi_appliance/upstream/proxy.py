"""Load spread and failover across a route's backends, each behind its own circuit breaker.

A request goes to the backend with the fewest outstanding requests per unit of weight
(`balance`), skipping those whose circuit is open; when that one fails before its first
chunk (unreachable, 5xx, busy, too slow), the next is tried. A stream that has started is
never retried elsewhere."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from ..errors import Unavailable, UpstreamError
from ..metrics import BREAKER_VALUES, Metrics
from ..settings import Backend, Route, Settings
from . import client
from .balance import Balancer, Lease
from .breaker import Breaker, Clock, State

if TYPE_CHECKING:
    import aiohttp

log = structlog.get_logger("cerebrum.orchestrator")
PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions", "infill": "/infill",
         "llama_completion": "/completion", "responses": "/v1/responses",
         "messages": "/v1/messages"}
BUSY_RETRY_AFTER = 2  # seconds, when a busy backend does not say


class Leased:
    """The rest of an opened stream; its backend's outstanding request ends with it (at its
    end, on an error, on cancellation, or when closed unread)."""

    def __init__(self, chunks: AsyncGenerator[dict[str, Any], None], lease: Lease):
        self._chunks, self._lease = chunks, lease

    def __aiter__(self) -> Leased:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await anext(self._chunks)
        except BaseException:  # the end, a failure, or the client gone
            self._lease.release()
            raise

    async def aclose(self) -> None:
        """Close the upstream stream (the backend stops); idempotent."""
        self._lease.release()
        await self._chunks.aclose()


@dataclass
class Opened:
    """A stream that has produced its first chunk, and whose breaker awaits the verdict.
    Whoever opens it closes `rest` when the request ends, however it ends."""

    backend: Backend
    breaker: Breaker
    first: dict[str, Any]
    rest: Leased
    succeeded: bool = False  # a half-open probe's success is recorded at its first chunk


class Proxy:
    """Opens upstream streams for routes: the least loaded backend first, then the others.
    `session` gives the pooled session (opened on first use)."""

    def __init__(self, settings: Settings, session: Callable[[], aiohttp.ClientSession],
                 metrics: Metrics, clock: Clock):
        self._settings = settings
        self._session = session
        self._metrics = metrics
        self.breakers = {b.name: Breaker(settings.breaker, clock) for b in settings.backends}
        self.balancer = Balancer({b.name: b.weight for b in settings.backends},
                                 lambda name, n: metrics.outstanding.labels(name).set(n))
        for name in self.breakers:
            self.publish(name)
            metrics.outstanding.labels(name).set(0)
            metrics.chosen.labels(name).inc(0)

    def publish(self, name: str) -> None:
        """Export a breaker's state (after any transition)."""
        state = self.breakers[name].state
        self._metrics.breaker.labels(name).set(BREAKER_VALUES[state.value])

    def states(self) -> dict[str, str]:
        """Each backend's breaker state."""
        return {name: breaker.state.value for name, breaker in self.breakers.items()}

    def is_closed(self, name: str) -> bool:
        """Whether `name`'s breaker is closed (side calls, like token counts, go only there)."""
        return self.breakers[name].state is State.CLOSED

    def failed(self, backend: Backend, breaker: Breaker, error: UpstreamError) -> None:
        """Record a backend failure (or, for a busy backend, no verdict)."""
        self._metrics.upstream_failures.labels(backend.name, error.code).inc()
        if error.counts:
            breaker.failure()
        else:
            breaker.release()
        self.publish(backend.name)
        log.warning("upstream_failed", backend=backend.name, code=error.code,
                    breaker=breaker.state.value)

    def succeeded(self, backend: Backend, breaker: Breaker) -> None:
        """Record a stream that ended well."""
        breaker.success()
        self.publish(backend.name)

    async def open(self, route: Route, kind: str, payload: dict[str, Any],
                   request_id: str, last: Callable[[dict[str, Any]], bool] | None = None
                   ) -> Opened:
        """The first backend of `route`, least loaded first, that answers with a first chunk
        in time (`last`: see `client.stream`)."""
        timeouts, policy = self._settings.timeouts, self._settings.breaker
        errors: list[UpstreamError] = []
        shut: list[Breaker] = []
        for name in self.balancer.order(route.name, route.backends):
            backend, breaker = self._settings.backend(name), self.breakers[name]
            if not breaker.acquire():
                shut.append(breaker)
                continue
            self.publish(name)
            lease = self.balancer.take(route.name, route.backends, name)
            self._metrics.chosen.labels(name).inc()
            first_token = policy.probe_timeout if breaker.is_probe else timeouts.first_token
            chunks = client.stream(self._session(), backend, PATHS[kind],
                                   {**payload, "model": route.model}, request_id,
                                   first_token=first_token,
                                   between_tokens=timeouts.between_tokens, last=last,
                                   capacity=lambda n, name=name: self.balancer.learn(name, n))
            try:
                first = await anext(chunks)
            except UpstreamError as exc:
                lease.release()
                self.failed(backend, breaker, exc)
                errors.append(exc)
                continue
            except StopAsyncIteration:
                lease.release()
                exc = UpstreamError(f"backend {name} sent an empty stream",
                                    code="upstream_bad_stream")
                self.failed(backend, breaker, exc)
                errors.append(exc)
                continue
            except BaseException:  # the client left, or the backend refused the request
                lease.release()
                breaker.release()
                raise
            probe = breaker.is_probe
            if probe:  # the backend answers again: close now, not after the whole stream
                self.succeeded(backend, breaker)
            return Opened(backend, breaker, first, Leased(chunks, lease), succeeded=probe)
        if all(not e.counts for e in errors):  # each backend busy or its circuit open
            waits = [e.retry_after or BUSY_RETRY_AFTER for e in errors]
            waits += [b.retry_after() for b in shut]
            wait = min(waits)
            if not errors:
                raise Unavailable(f"every backend of route {route.name} is failing (circuit "
                                  f"open); retry in {wait} s", retry_after=wait,
                                  code="breaker_open")
            what = "busy" if not shut else "busy or failing (circuit open)"
            raise Unavailable(f"every backend of route {route.name} is {what}; retry in "
                              f"{wait} s", retry_after=wait, code="upstream_busy")
        raise UpstreamError(f"no backend of route {route.name} answered: "
                            + "; ".join(str(e) for e in errors), code=errors[-1].code)
