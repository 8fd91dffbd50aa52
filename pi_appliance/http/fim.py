"""Fill-in-the-middle: `POST /infill` (llama.cpp's shape: llama.vim, llama.vscode) and
`POST /v1/completions` with `suffix` (OpenAI's: Continue). Both go to the route's backends'
`/infill` (llama.cpp's endpoint, which this project's backend also serves), with the context
chosen by `infill/context.py`, through the same breakers, shedding and cancellation as
completions; the answer comes back in the shape the client asked in.

`POST /completion` (llama.cpp's own completion: Continue's llama.cpp provider) takes the same
path without the context selection: the client rendered its prompt (a FIM template, or a chat
template), so it goes to the route's backends' `/completion` as it came.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from falcon.asgi import Request, Response, SSEvent

from cerebrum import jsonwire, llamacpp
from cerebrum.generation.events import TextDelta
from cerebrum.openai import Envelope
from cerebrum.openai.render import Render

from ..errors import UpstreamError
from ..infill.bodies import completion_payload, payload, stats_of
from ..infill.context import Selection, passthrough, plan_infill, quick_route
from ..planning.workers import WorkerFailed
from ..upstream import routing
from ..upstream.proxy import Opened
from ..wire.infill import InfillRequest, parse_completion, parse_infill
from .lifecycle import context
from .services import Services
from .shared import Timed, read_json


def _data(payload: dict[str, Any] | str) -> bytes:
    return payload.encode() if isinstance(payload, str) else jsonwire.dump_bytes(payload)


def _content(chunk: dict[str, Any]) -> str:
    return str(chunk.get("content") or "")


def client_of(req: Request) -> str:
    """Who is typing: a hash of the API key, else of the client's address."""
    who = req.get_header("Authorization") or f"addr:{req.remote_addr}"
    return hashlib.blake2b(who.encode(errors="replace"), digest_size=8).hexdigest()


class FillInMiddle:
    """Plans, opens and relays one fill-in-the-middle request, in either shape."""

    def __init__(self, services: Services):
        self.s = services

    async def respond(self, ireq: InfillRequest, req: Request, resp: Response) -> None:
        """Route and choose the context (in a worker), open the backend's /infill, then
        relay the stream or collect it."""
        s, ctx = self.s, context(req.scope)
        n_predict = s.settings.default_max_tokens if ireq.n_predict is None else ireq.n_predict
        client = client_of(req)
        if ireq.shape == "completion":  # a rendered prompt: nothing to select
            decision = quick_route(ireq, s.settings, "a /completion prompt is not read")
            selection = passthrough(ireq, "a /completion prompt is sent as it came")
        else:
            decision, selection = await self._plan(ireq, n_predict, s.orders.get(client))
            s.orders.put(client, selection.order)
        ctx.log.update(route=decision.route.name, model=decision.route.model,
                       language=decision.language, context=selection.mode, fim=ireq.shape,
                       chunks_offered=selection.offered, chunks_kept=len(selection.extra))
        assert s.proxy is not None
        if ireq.shape == "completion":
            kind, body = "llama_completion", completion_payload(ireq, n_predict,
                                                               decision.route.n_ctx)
        else:
            kind, body = "infill", payload(ireq, selection, n_predict, decision.route.n_ctx)
        opened = await s.proxy.open(decision.route, kind, body, ctx.request_id,
                                    last=llamacpp.is_last)
        ctx.closers.append(opened.rest.aclose)  # ends its backend's outstanding request
        relay = InfillRelay(s, decision, selection, opened, ctx.started, ireq,
                            ctx.request_id)
        if ireq.stream:
            resp.content_type = "text/event-stream"
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Accel-Buffering", "no")
            events = relay.events()
            ctx.closers.append(events.aclose)  # closes the upstream stream, whatever happens
            resp.sse = events
            return
        resp.media = await relay.collect()

    async def _plan(self, ireq: InfillRequest, n_predict: int, previous: tuple[str, ...]
                    ) -> tuple[routing.Decision, Selection]:
        s = self.s
        timeout_ms = s.settings.pipeline.timeout_ms
        assert s.workers is not None
        try:
            decision, selection = await s.workers.run(
                plan_infill, ireq, s.settings, s.pipeline, n_predict, previous,
                timeout=timeout_ms / 1000)
        except TimeoutError:
            s.metrics.pipeline_timeouts.inc()
            s.stats.count("pipeline_timeouts")
            reason = (f"the context selection ran past its {timeout_ms:g} ms deadline "
                      "(pipeline.timeout_ms): the editor's chunks are sent as they came")
        except WorkerFailed:
            s.stats.count("pipeline_failures")
            reason = "the context selection failed: the editor's chunks are sent as they came"
        else:
            s.metrics.pipeline.observe(selection.pipeline_ms / 1000)
            s.stats.observe(s.stats.pipeline_ms, selection.pipeline_ms)
            return decision, selection
        return quick_route(ireq, s.settings), passthrough(ireq, reason)


class InfillRelay(Timed):
    """Relays the backend's llama.cpp reply: as it came to a client that asked in llama.cpp's
    format, or read as internal events (`cerebrum.llamacpp.events`) and rendered in OpenAI's
    (`cerebrum.openai.render`) to one that asked with `/v1/completions`."""

    def __init__(self, services: Services, decision: routing.Decision, selection: Selection,
                 opened: Opened, started: float, ireq: InfillRequest, request_id: str):
        super().__init__(services, decision.route.name, opened, started, text_of=_content)
        self.decision, self.selection, self.ireq = decision, selection, ireq
        self.render = Render(Envelope.new("completion", request_id, decision.route.model),
                             include_usage=ireq.include_usage)

    def _stats(self, final: dict[str, Any]) -> dict[str, Any]:
        ttft, _ = self.timing()
        return stats_of(self.decision, self.selection, self.opened, final, ttft)

    async def events(self) -> AsyncIterator[SSEvent]:
        """SSE for the client. llama.cpp's shape: the backend's chunks, the last
        (`stop: true`) with the `cerebrum` stats. OpenAI's: text_completion chunks, the
        finishing one with the stats, then [DONE]."""
        openai = self.ireq.shape == "openai"
        final: dict[str, Any] | None = None
        try:
            async with aclosing(self.chunks()) as chunks:
                async for chunk in chunks:
                    if llamacpp.is_last(chunk):  # the stream ends after it: read on to settle
                        final = chunk
                        continue
                    if not openai:
                        yield SSEvent(data=jsonwire.dump_bytes(chunk))
                        continue
                    for event in llamacpp.events(chunk):
                        for payload in self.render.stream(event):
                            yield SSEvent(data=_data(payload))
        except UpstreamError as exc:
            self.s.stats.count("midstream_errors")
            error = {"code": 502, "message": str(exc), "type": exc.type}
            yield SSEvent(data=jsonwire.dump_bytes({"error": error}))
            if openai:
                yield SSEvent(data=b"[DONE]")
            return
        final = final or {"content": "", "stop": True}  # a backend that ended with [DONE]
        stats = self._stats(final)
        if not openai:
            yield SSEvent(data=jsonwire.dump_bytes({**final, "cerebrum": stats}))
            return
        # The stats ride on the finishing chunk: editors' FIM readers (Continue) take
        # choices[0] of every chunk, so a `choices: []` chunk would break them; the usage
        # comes in one only when the client asks (`stream_options.include_usage`).
        for event in llamacpp.events(final):
            for payload in self.render.stream(event):
                if isinstance(payload, dict) and any(c.get("finish_reason")
                                                     for c in payload["choices"]):
                    payload = {**payload, "cerebrum": stats}
                yield SSEvent(data=_data(payload))

    async def collect(self) -> dict[str, Any]:
        """One JSON body: llama.cpp's (`response_fields` honoured) or OpenAI's."""
        parts: list[str] = []
        final: dict[str, Any] = {"stop": True}
        async with aclosing(self.chunks()) as chunks:
            async for chunk in chunks:
                parts.append(_content(chunk))
                if llamacpp.is_last(chunk):
                    final = chunk
        stats = self._stats(final)
        if self.ireq.shape == "openai":
            self.render.collect(TextDelta("".join(parts)))
            self.render.collect(llamacpp.finish(final))
            return {**self.render.body(), "cerebrum": stats}
        body = {**final, "content": "".join(parts)}
        if self.ireq.response_fields is not None:
            body = llamacpp.select_fields(body, self.ireq.response_fields)
        return {**body, "cerebrum": stats}


class Infill:
    """POST /infill: llama.cpp's fill-in-the-middle endpoint."""

    def __init__(self, services: Services):
        self.s = services
        self.fim = FillInMiddle(services)

    async def on_post(self, req: Request, resp: Response) -> None:
        """Validate, then fill in the middle."""
        body = await read_json(req, self.s.settings.max_body_bytes)
        await self.fim.respond(parse_infill(body, self.s.settings.max_tokens_cap), req, resp)


class Completion:
    """POST /completion: llama.cpp's own completion endpoint (a prompt sent as it came)."""

    def __init__(self, fim: FillInMiddle):
        self.fim = fim

    async def on_post(self, req: Request, resp: Response) -> None:
        """Validate, then complete."""
        settings = self.fim.s.settings
        body = await read_json(req, settings.max_body_bytes)
        await self.fim.respond(parse_completion(body, settings.max_tokens_cap), req, resp)
