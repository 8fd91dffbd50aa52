"""Planning a completion for the resources: the pure part (`plan.py`) in a pipeline worker
process under `pipeline.timeout_ms`, the raw prompt when it cannot finish, and the token
count with no round trip the calibrated estimate makes unnecessary."""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..errors import BadRequest, UpstreamError
from ..metrics import Metrics
from ..pipeline import Prepared
from ..pipeline.budget import TOKEN_ESTIMATES
from ..pipeline.config import PipelineConfig
from ..settings import Settings
from ..stats import Stats
from ..upstream import routing
from ..upstream.client import TokenCounter
from ..upstream.proxy import Proxy
from ..wire import protocol
from .plan import Plan, budget_of, choose_and_prepare, passthrough, payload_of
from .workers import WorkerFailed, WorkerPool

# The calibrated estimates underestimate by at most ~7 % (pipeline.budget): an estimate this
# far under the budget fits for sure, and the backend is not asked for the exact count.
ESTIMATE_MARGIN = 0.10


class Services(Protocol):
    """What the planner reaches of the process's long-lived objects (`http.services.Services`
    owns them); `workers`, `counter` and `proxy` exist between startup and shutdown."""

    settings: Settings
    pipeline: PipelineConfig
    metrics: Metrics
    stats: Stats
    workers: WorkerPool | None
    counter: TokenCounter | None
    proxy: Proxy | None


class Planner:
    """Plans requests for the completion and preview resources."""

    def __init__(self, services: Services):
        self.s = services

    async def plan(self, kind: protocol.Kind, body: dict[str, Any], request_id: str) -> Plan:
        """Parse, route and reduce (off the loop, under `pipeline.timeout_ms`), check the
        budget, and build the upstream payload."""
        s = self.s
        creq = protocol.parse(kind, body, s.settings.max_tokens_cap)
        max_tokens = creq.max_tokens or s.settings.default_max_tokens
        decision, prepared = await self._prepare(creq, max_tokens)
        budget = budget_of(decision, max_tokens)
        sent = await self._tokens(decision, prepared, budget, request_id)
        if sent > budget:
            raise BadRequest(f"the prompt is {sent} tokens, {sent - budget} over the budget "
                             f"of {budget} ({decision.route.n_ctx}-token context minus "
                             f"max_tokens {max_tokens} and the chat template)",
                             code="context_length_exceeded")
        payload = payload_of(creq, prepared, max_tokens)
        s.metrics.pipeline.observe(prepared.pipeline_ms / 1000)
        s.metrics.reduction.observe(prepared.reduction)
        s.stats.observe(s.stats.pipeline_ms, prepared.pipeline_ms)
        return Plan(creq, decision, prepared, payload)

    async def _prepare(self, creq: protocol.ClientRequest, max_tokens: int
                       ) -> tuple[routing.Decision, Prepared]:
        """The pipeline in a worker process; past the deadline, the raw prompt."""
        s = self.s
        timeout_ms = s.settings.pipeline.timeout_ms
        started = time.perf_counter()
        assert s.workers is not None
        try:
            decision, prepared = await s.workers.run(
                choose_and_prepare, creq, s.settings, s.pipeline, max_tokens,
                time.perf_counter, timeout=timeout_ms / 1000)
            return decision, prepared
        except TimeoutError:
            s.metrics.pipeline_timeouts.inc()
            s.stats.count("pipeline_timeouts")
            reason = (f"the context pipeline ran past its {timeout_ms:g} ms deadline "
                      f"(pipeline.timeout_ms): the raw prompt is sent")
        except WorkerFailed:
            s.stats.count("pipeline_failures")
            reason = "the context pipeline failed: the raw prompt is sent"
        decision = routing.choose(s.settings, model=creq.model, language=creq.language,
                                  language_reason="not detected (the pipeline did not finish)")
        elapsed = (time.perf_counter() - started) * 1000
        return decision, passthrough(creq, reason, TOKEN_ESTIMATES[decision.route.tokenizer],
                                     budget_of(decision, max_tokens), elapsed)

    async def _tokens(self, decision: routing.Decision, prepared: Prepared, budget: int,
                      request_id: str) -> int:
        """The sent text's token count: the calibrated estimate when it is clearly within
        the budget, else the exact count from a backend that can give it cheaply (breaker
        closed, known to offer /v1/tokenize), else the estimate. A chat's other messages
        (`prepared.context_tokens`) are always the estimate."""
        s = self.s
        others = prepared.context_tokens
        estimate = TOKEN_ESTIMATES[decision.route.tokenizer](prepared.prompt) + others
        if estimate <= budget * (1 - ESTIMATE_MARGIN) or s.counter is None or s.proxy is None:
            return estimate
        for name in decision.route.backends:
            backend = s.settings.backend(name)
            if not (backend.tokenize and s.counter.offers(name) and s.proxy.is_closed(name)):
                continue
            try:
                return others + await s.counter.count(backend, decision.route.model,
                                                      prepared.prompt, request_id)
            except UpstreamError:
                s.stats.count("tokenize_fallbacks")
            break
        return estimate
