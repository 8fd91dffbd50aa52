"""Falcon resources: completions (pipeline → route → proxy), context preview, health,
models, stats and metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import falcon
from falcon.asgi import Request, Response, SSEvent
from prometheus_client import CONTENT_TYPE_LATEST

from cerebrum import jsonwire
from cerebrum.openai import error_body
from cerebrum.openai.fold import Folder

from ..errors import UpstreamError
from ..planning.plan import Plan
from ..planning.planner import Planner
from ..stats import drafting, queue_ms
from ..upstream.proxy import Opened
from ..wire import protocol
from ..wire.infill import parse_openai
from .fim import FillInMiddle
from .lifecycle import context
from .services import Services
from .shared import Timed, read_json


def stats_of(plan: Plan, opened: Opened | None, ttft: float | None, tok_s: float | None,
             usage: Any = None, timings: Any = None) -> dict[str, Any]:
    """The `cerebrum` object of the last chunk (and of previews): route, pipeline, timing
    (with the backend's queue wait), and speculative decoding (the prediction sent, tokens
    drafted and accepted upstream)."""
    decision, prepared = plan.decision, plan.prepared
    pipeline = {k: v for k, v in prepared.stats_dict().items()
                if k not in ("mode", "reason", "language", "language_reason")}
    out = {"model": decision.route.model, "route": decision.route.name,
           "language": decision.language, "route_reason": decision.reason,
           "context": prepared.mode, "context_reason": prepared.reason, **pipeline}
    if opened is not None:
        out["backend"] = opened.backend.name
    out["ttft_ms"] = None if ttft is None else round(ttft * 1000, 1)
    out["tok_s"] = None if tok_s is None else round(tok_s, 1)
    out["queue_ms"] = queue_ms(timings)
    out["prediction_chars"] = plan.prediction_chars  # 0: none was sent
    out.update(drafting(usage))
    return out


class Completions:
    """POST /v1/chat/completions and /v1/completions; a completion with `suffix` is
    fill-in-the-middle and goes to `fim`."""

    def __init__(self, services: Services, kind: protocol.Kind,
                 fim: FillInMiddle | None = None):
        self.s = services
        self.kind = kind
        self.planner = Planner(services)
        self.fim = fim

    async def on_post(self, req: Request, resp: Response) -> None:
        """Plan, open an upstream stream (failover), then relay it or collect it."""
        s, ctx = self.s, context(req.scope)
        body = await read_json(req, s.settings.max_body_bytes)
        if self.fim is not None and body.get("suffix") is not None:
            await self.fim.respond(parse_openai(body, s.settings.max_tokens_cap), req, resp)
            return
        plan = await self.planner.plan(self.kind, body, ctx.request_id)
        decision, prepared = plan.decision, plan.prepared
        # Known names and sizes only: reasons quote the prompt (fence tags, file names).
        ctx.log.update(route=decision.route.name, model=decision.route.model,
                       language=decision.language, context=prepared.mode,
                       sent_chars=len(prepared.prompt), prediction_chars=plan.prediction_chars)
        assert s.proxy is not None
        opened = await s.proxy.open(decision.route, self.kind, plan.payload, ctx.request_id)
        ctx.closers.append(opened.rest.aclose)  # ends its backend's outstanding request
        relay = Relay(s, plan, opened, ctx.started)
        if plan.request.stream:
            resp.content_type = "text/event-stream"
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Accel-Buffering", "no")
            events = relay.events()
            ctx.closers.append(events.aclose)  # closes the upstream stream, whatever happens
            resp.sse = events
            return
        resp.media = await relay.collect()


class Relay(Timed):
    """Relays one upstream completion stream to the client in its requested shape."""

    def __init__(self, services: Services, plan: Plan, opened: Opened, started: float):
        super().__init__(services, plan.decision.route.name, opened, started)
        self.plan = plan

    def _stats(self) -> dict[str, Any]:
        return stats_of(self.plan, self.opened, *self.timing(), self.usage, self.timings)

    async def events(self) -> AsyncIterator[SSEvent]:
        """SSE for the client: chunks, then the `cerebrum` stats chunk, then [DONE].

        The upstream's usage chunk (`stream_options.include_usage`: no choices, the usage)
        is held back and carries the stats, so it stays the last chunk, as OpenAI sends it."""
        template: dict[str, Any] = {}
        usage_chunk: dict[str, Any] | None = None
        try:
            async with aclosing(self.chunks()) as chunks:
                async for chunk in chunks:
                    template = chunk
                    if chunk.get("choices") == [] and chunk.get("usage"):
                        usage_chunk = chunk
                        continue
                    yield SSEvent(data=jsonwire.dump_bytes(chunk))
        except UpstreamError as exc:
            self.s.stats.count("midstream_errors")
            yield SSEvent(data=jsonwire.dump_bytes(error_body(str(exc), exc.type, exc.code)))
            yield SSEvent(data=b"[DONE]")
            return
        last = usage_chunk or {**{k: template.get(k) for k in ("id", "object", "created",
                                                                "model")}, "choices": []}
        yield SSEvent(data=jsonwire.dump_bytes({**last, "cerebrum": self._stats()}))
        yield SSEvent(data=b"[DONE]")

    async def collect(self) -> dict[str, Any]:
        """One JSON body in the client's requested shape, with the `cerebrum` stats."""
        folder = Folder()
        async for chunk in self.chunks():
            folder.add(chunk)
        return {**folder.body(), "cerebrum": self._stats()}


class Preview:
    """POST /v1/context/preview: the pipeline alone — what would be sent, and its stats."""

    def __init__(self, services: Services):
        self.s = services
        self.planner = Planner(services)

    async def on_post(self, req: Request, resp: Response) -> None:
        """Plan a chat (`messages`) or completion (`prompt`) request without a model call."""
        body = await read_json(req, self.s.settings.max_body_bytes)
        kind: protocol.Kind = "completion" if "prompt" in body and "messages" not in body \
            else "chat"
        plan = await self.planner.plan(kind, body, context(req.scope).request_id)
        resp.media = {"model": plan.decision.route.model,
                      "messages": plan.payload.get("messages"), "prompt": plan.prepared.prompt,
                      "instruction": plan.prepared.instruction,
                      "prediction": plan.payload.get("prediction"),
                      "cerebrum": stats_of(plan, None, None, None)}


class Health:
    """GET /health: up, and each backend's breaker state."""

    def __init__(self, services: Services):
        self.s = services

    async def on_get(self, req: Request, resp: Response) -> None:
        """Always 200 while the process serves; backends may still be failing."""
        states = self.s.proxy.states() if self.s.proxy else {}
        resp.media = {"status": "ok", "backends": {
            b.name: {"url": b.url, "breaker": states.get(b.name, "closed")}
            for b in self.s.settings.backends}}


class Models:
    """GET /v1/models: the routes and their models."""

    def __init__(self, services: Services):
        self.s = services
        self.created = int(time.time())  # OpenAI's `created`: here, when routing began

    async def on_get(self, req: Request, resp: Response) -> None:
        """OpenAI's list shape, with route details and the model-name patterns (aliases)
        that reach each route."""
        data = [{"id": "auto", "object": "model", "created": self.created,
                 "owned_by": "cerebrum", "description": "routing picks the model by language"}]
        settings = self.s.settings

        def aliases(route: str) -> list[str]:
            return [p for p, t in settings.aliases if (t or settings.default_route) == route]

        data += [{"id": r.model, "object": "model", "created": self.created,
                  "owned_by": "cerebrum", "route": r.name,
                  "languages": list(r.languages), "backends": list(r.backends),
                  "n_ctx": r.n_ctx, "aliases": aliases(r.name)} for r in settings.routes]
        resp.media = {"object": "list", "data": data}


class StatsResource:
    """GET /stats: counters, breaker states, in-flight, recent latency percentiles."""

    def __init__(self, services: Services):
        self.s = services

    async def on_get(self, req: Request, resp: Response) -> None:
        """JSON for humans and dashboards."""
        resp.media = {**self.s.stats.snapshot(), "in_flight": self.s.load.in_flight,
                      "breakers": self.s.proxy.states() if self.s.proxy else {}}


class MetricsResource:
    """GET /metrics: Prometheus text."""

    def __init__(self, services: Services):
        self.s = services

    async def on_get(self, req: Request, resp: Response) -> None:
        """The exposition."""
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = self.s.metrics.render()
        resp.status = falcon.HTTP_200
