"""The agents' formats: `POST /v1/responses` (OpenAI's Responses API: Codex CLI) and
`POST /v1/messages` (Anthropic's Messages API: Claude Code, `?beta=true` too).

Each body is checked by its wire format's package under the orchestrator's rules into the
internal request and routed by its model (a route's, or an alias: `claude-…`, `gpt-…`).
An agent's prompt, tools and results are never rewritten (no context pipeline). Where the
route's backends speak the format (`api = "llama.cpp"`: this project's backend and
llama-server b11434), the body goes to them as the client sent it but for the route's model,
and the events come back as they are, `event:` names included. Where one speaks only
OpenAI's (`api = "openai"`: vLLM, Ollama), the internal request goes as a Chat Completions
body (`cerebrum.openai.upstream`) and its chunks are read back as events
(`cerebrum.openai.read`) and rendered in the client's format. Either way the same breakers,
failover, shedding, timing and metrics apply as to completions; a request without `stream`
is streamed upstream and folded into its body here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Literal

from falcon.asgi import Request, Response, SSEvent

from cerebrum import anthropic, jsonwire, responses
from cerebrum.anthropic.fold import Folder
from cerebrum.generation.events import Event, Failure
from cerebrum.generation.request import Request as Internal
from cerebrum.openai.read import Reader
from cerebrum.openai.upstream import chat_body

from ..errors import UpstreamError
from ..pipeline.budget import TOKEN_ESTIMATES
from ..planning.plan import TEMPLATE_MARGIN
from ..upstream import client, routing
from ..upstream.proxy import Opened
from .lifecycle import context
from .services import Services
from .shared import Timed, read_json

Api = Literal["responses", "messages"]
# The event that ends each format's stream (no `[DONE]` follows).
_LAST = frozenset({"message_stop", "response.completed", "response.failed",
                   "response.incomplete"})


def _is_last(event: dict[str, Any]) -> bool:
    return event.get("type") in _LAST


def _text_of(event: dict[str, Any]) -> str:
    """The answer text an event carries (for TTFT and tok/s)."""
    delta = event.get("delta")
    if event.get("type") == "response.output_text.delta" and isinstance(delta, str):
        return delta
    if isinstance(delta, dict) and delta.get("type") in ("text_delta", "input_json_delta"):
        return str(delta.get("text") or delta.get("partial_json") or "")
    return ""


async def _checked(s: Services, api: Api, req: Request, *, count: bool
                   ) -> tuple[dict[str, Any], Internal, routing.Decision]:
    """The body read and checked (headers too) into the internal request, and its route."""
    if api == "messages":
        anthropic.check_headers(req.headers)
    body = await read_json(req, s.settings.max_body_bytes)
    if api == "messages":
        internal = (anthropic.parse_count_tokens if count else anthropic.parse)(
            body, "orchestrator")
    else:
        internal = responses.parse(body, s.settings.max_tokens_cap, "orchestrator",
                                   kind="input_tokens" if count else "create")
    decision = routing.choose(s.settings, model=internal.model or "auto", language=None,
                              language_reason="an agent's request is routed by its model")
    return body, internal, decision


class Agents:
    """POST /v1/responses or /v1/messages: check, route, relay."""

    def __init__(self, services: Services, api: Api):
        self.s = services
        self.api = api

    async def on_post(self, req: Request, resp: Response) -> None:
        """Check, route and open the upstream stream (failover), then relay or fold it."""
        s, ctx = self.s, context(req.scope)
        body, internal, decision = await _checked(s, self.api, req, count=False)
        ctx.log.update(route=decision.route.name, model=decision.route.model, context="raw",
                       api=self.api)
        assert s.proxy is not None
        relay: AgentRelay | TranslatedRelay
        if all(s.settings.backend(n).api == "llama.cpp" for n in decision.route.backends):
            opened = await s.proxy.open(decision.route, self.api, body, ctx.request_id,
                                        last=_is_last)
            relay = AgentRelay(s, decision, opened, ctx.started)
        else:
            payload, prompt = _translated(internal, decision.route)
            opened = await s.proxy.open(decision.route, "chat", payload, ctx.request_id)
            relay = TranslatedRelay(s, decision, opened, ctx.started,
                                    self._render(internal, decision, prompt, ctx.request_id))
        ctx.closers.append(opened.rest.aclose)  # ends its backend's outstanding request
        if internal.stream:
            resp.content_type = "text/event-stream"
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Accel-Buffering", "no")
            events = relay.events(self.api)
            ctx.closers.append(events.aclose)
            resp.sse = events
            return
        resp.media = await relay.collect(self.api)

    def _render(self, internal: Internal, decision: routing.Decision, prompt: int,
                request_id: str) -> responses.Render | anthropic.Render:
        model = decision.route.model
        if self.api == "messages":
            return anthropic.Render(f"msg_{request_id}", model, prompt,
                                    context=decision.route.n_ctx, stop_sequences=internal.stop)
        return responses.Render(responses.Envelope.new(internal, request_id, model))


def _translated(internal: Internal, route: Any) -> tuple[dict[str, Any], int]:
    """The Chat Completions body for an upstream that speaks only OpenAI's format, and the
    prompt's estimated tokens: the answer's length ends at the context's end, as the backend
    does for these formats (Claude Code asks 32,000 tokens whatever the model)."""
    payload = chat_body(internal)
    count = TOKEN_ESTIMATES[route.tokenizer]
    prompt = sum(count(m.get("content") or "") for m in payload["messages"]) + TEMPLATE_MARGIN
    room = max(1, route.n_ctx - prompt)
    payload["max_tokens"] = min(payload.get("max_tokens") or room, room)
    payload["model"] = route.model
    return payload, prompt


class Counts:
    """POST /v1/responses/input_tokens or /v1/messages/count_tokens: checked and routed as
    the request itself would be, answered by a backend of the route (closed breaker first)."""

    def __init__(self, services: Services, api: Api):
        self.s = services
        self.api = api

    async def on_post(self, req: Request, resp: Response) -> None:
        """Check, route, ask a backend, answer as it did."""
        s, ctx = self.s, context(req.scope)
        body, _, decision = await _checked(s, self.api, req, count=True)
        assert s.proxy is not None
        names = decision.route.backends
        name = next((n for n in names if s.proxy.is_closed(n)), names[0])
        status, answer = await client.post_json(
            s.upstream(), s.settings.backend(name), req.path,
            {**body, "model": decision.route.model}, ctx.request_id,
            s.settings.timeouts.first_token)
        ctx.log.update(route=decision.route.name, model=decision.route.model, backend=name)
        resp.status = status
        resp.media = answer


class TranslatedRelay(Timed):
    """Relays an OpenAI chunk stream as the client's format: read as events, rendered."""

    def __init__(self, services: Services, decision: routing.Decision, opened: Opened,
                 started: float, render: responses.Render | anthropic.Render):
        super().__init__(services, decision.route.name, opened, started)
        self.render = render

    async def _events(self) -> AsyncIterator[Event]:
        reader = Reader()
        try:
            async with aclosing(self.chunks()) as chunks:
                async for chunk in chunks:
                    for event in reader.read(chunk):
                        yield event
            for event in reader.end():
                yield event
        except UpstreamError as exc:
            self.s.stats.count("midstream_errors")
            yield Failure(str(exc), exc.code)
        finally:
            self.timing()

    async def events(self, api: Api) -> AsyncIterator[SSEvent]:
        """The client's format's events, named."""
        for name, payload in self.render.start():
            yield SSEvent(event=name, data=jsonwire.dump_bytes(payload))
        async with aclosing(self._events()) as events:
            async for event in events:
                for name, payload in self.render.stream(event):
                    yield SSEvent(event=name, data=jsonwire.dump_bytes(payload))

    async def collect(self, api: Api) -> dict[str, Any]:
        """The client's format's body."""
        async with aclosing(self._events()) as events:
            async for event in events:
                self.render.collect(event)
        return self.render.body()


class AgentRelay(Timed):
    """Relays one upstream stream of an agent's format, event names included."""

    def __init__(self, services: Services, decision: routing.Decision, opened: Opened,
                 started: float):
        super().__init__(services, decision.route.name, opened, started, text_of=_text_of)

    async def events(self, api: Api) -> AsyncIterator[SSEvent]:
        """The upstream's events as they came; a failure after the start as the format's
        error event."""
        try:
            async with aclosing(self.chunks()) as chunks:
                async for event in chunks:
                    yield SSEvent(event=str(event.get("type") or "message"),
                                  data=jsonwire.dump_bytes(event))
        except UpstreamError as exc:
            self.s.stats.count("midstream_errors")
            if api == "messages":
                yield SSEvent(event="error", data=jsonwire.dump_bytes(
                    anthropic.error_body(502, str(exc))))
            else:
                yield SSEvent(event="error", data=jsonwire.dump_bytes(
                    {"type": "error", "code": exc.code, "message": str(exc), "param": None}))
        finally:
            self.timing()

    async def collect(self, api: Api) -> dict[str, Any]:
        """The non-streamed body: Anthropic's message folded from its events, or the
        response object `response.completed` (or `.failed`, `.incomplete`) carries."""
        folder, final = Folder(), {}
        async with aclosing(self.chunks()) as chunks:
            async for event in chunks:
                folder.add(event)
                if isinstance(event.get("response"), dict):
                    final = event["response"]
        self.timing()
        return folder.body() if api == "messages" else final
