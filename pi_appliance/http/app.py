"""The orchestrator application: Falcon ASGI app factory, auth and shedding, and the one
place that maps errors to HTTP."""

from __future__ import annotations

import time
from typing import Any

import falcon
import falcon.asgi
import structlog

from cerebrum import anthropic, jsonwire
from cerebrum.auth import key_ok
from cerebrum.cors import Cors
from cerebrum.openai import InvalidRequest, error_body

from ..errors import BadRequest, HeadersTooLarge, OrchestratorError, Unauthorized, Unavailable
from ..settings import Settings
from ..upstream.client import new_session
from .agents import Agents, Counts
from .fim import Completion, Infill
from .lifecycle import SHEDDABLE, Lifecycle, context
from .resources import Completions, Health, MetricsResource, Models, Preview, StatsResource
from .services import Services, SessionFactory

log = structlog.get_logger("cerebrum.orchestrator")
_OPEN_PATHS = frozenset({"/health"})


class Gate:
    """Falcon middleware: lifespan hooks, API keys, and load shedding before any work."""

    def __init__(self, services: Services):
        self.s = services

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Create the pooled upstream session."""
        await self.s.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Close it."""
        await self.s.stop()

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response
                              ) -> None:
        """431 for oversized headers; 401 without a valid key; 503 + Retry-After when
        `max_concurrent` requests are in flight, else the request is admitted (one step)."""
        settings = self.s.settings
        size = sum(len(k) + len(v) + 4 for k, v in req.scope.get("headers") or ())
        if size > settings.max_header_bytes:
            raise HeadersTooLarge(f"request headers are {size} bytes, over the limit of "
                                  f"{settings.max_header_bytes}")
        keys = settings.api_keys
        if keys and req.path not in _OPEN_PATHS and not key_ok(
                req.auth or "", req.get_header("x-api-key") or "", keys):
            raise Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>' "
                               "(or 'x-api-key: <key>')")
        if req.method == "POST" and req.path in SHEDDABLE:
            if not self.s.load.admit():
                self.s.metrics.shed.inc()
                self.s.stats.count("shed")
                raise Unavailable(f"busy: {settings.max_concurrent} requests in flight; "
                                  "retry in 1 s", retry_after=1, code="overloaded")
            context(req.scope).admitted = True
            self.s.metrics.in_flight.inc()


ANTHROPIC_PATHS = ("/v1/messages",)  # answer errors in Anthropic's shape


def _render(resp: falcon.asgi.Response, status: int, body: dict[str, Any],
            headers: dict[str, str] | None = None, path: str = "") -> None:
    resp.status = status
    if path.startswith(ANTHROPIC_PATHS):
        body = anthropic.error_body(status, body["error"]["message"])
    resp.media = body
    for name, value in (headers or {}).items():
        resp.set_header(name, value)


async def handle_error(req: falcon.asgi.Request, resp: falcon.asgi.Response,
                       exc: Exception, params: dict[str, Any]) -> None:
    """The single mapping from any error to a JSON response: OpenAI's shape, or Anthropic's
    on its paths."""
    if isinstance(exc, InvalidRequest):  # the wire format's: a 400 naming the field
        exc = BadRequest(str(exc), code=exc.code, param=exc.param)
    if isinstance(exc, OrchestratorError):
        headers = {}
        if isinstance(exc, Unavailable):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        _render(resp, exc.status, error_body(str(exc), exc.type, exc.code, exc.param), headers,
                req.path)
    elif isinstance(exc, falcon.HTTPError):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such endpoint" if exc.status_code == 404 else \
            f"{exc.title}{': ' + exc.description if exc.description else ''}"
        _render(resp, exc.status_code, error_body(message, "invalid_request_error", code),
                dict(exc.headers or {}), req.path)
    else:
        log.exception("unhandled", request_id=context(req.scope).request_id,
                      error=type(exc).__name__)
        _render(resp, 500, error_body("internal server error", "server_error",
                                      "internal_error"), path=req.path)


def create_app(settings: Settings, *, clock=time.monotonic,
               session_factory: SessionFactory = new_session) -> Lifecycle:
    """Build the orchestrator: a Falcon ASGI app inside its request-lifecycle wrapper."""
    services = Services(settings=settings, clock=clock, session_factory=session_factory)
    app = falcon.asgi.App(middleware=[Gate(services)], cors_enable=False)
    # Every `resp.media` body goes out compact, as SSE payloads do (cerebrum.jsonwire).
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(
        dumps=jsonwire.dumps)
    app.add_error_handler(Exception, handle_error)
    app.add_error_handler(falcon.HTTPError, handle_error)  # else Falcon's own, more specific
    app.add_error_handler(OrchestratorError, handle_error)
    app.add_error_handler(InvalidRequest, handle_error)
    app.add_route("/v1/chat/completions", Completions(services, "chat"))
    infill = Infill(services)
    app.add_route("/v1/completions", Completions(services, "completion", fim=infill.fim))
    app.add_route("/infill", infill)
    app.add_route("/completion", Completion(infill.fim))
    app.add_route("/v1/responses", Agents(services, "responses"))
    app.add_route("/v1/messages", Agents(services, "messages"))
    app.add_route("/v1/responses/input_tokens", Counts(services, "responses"))
    app.add_route("/v1/messages/count_tokens", Counts(services, "messages"))
    app.add_route("/v1/context/preview", Preview(services))
    app.add_route("/v1/models", Models(services))
    app.add_route("/health", Health(services))
    app.add_route("/stats", StatsResource(services))
    app.add_route("/metrics", MetricsResource(services))
    return Lifecycle(app, load=services.load, activity=services.activity,
                     metrics=services.metrics, clock=clock,
                     write_timeout=settings.write_timeout,
                     cors=Cors(settings.cors_origins), owner=services,
                     max_body_bytes=settings.max_body_bytes)
