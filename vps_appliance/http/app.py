"""The aiohttp application: factory, request context, auth, and the one error-to-HTTP map."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from aiohttp import http_exceptions, web

from cerebrum import anthropic
from cerebrum.activation import Activity, Clock
from cerebrum.auth import key_ok
from cerebrum.capacity import SEQUENCES_HEADER
from cerebrum.context import RequestContext
from cerebrum.context import request_id as new_request_id
from cerebrum.cors import Cors
from cerebrum.openai import InvalidRequest, error_body

from ..errors import (
    BackendError,
    BadRequest,
    ClientStalled,
    HeaderTooLarge,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
)
from ..identity import identity, llama_build
from ..metrics import Metrics
from ..settings import Settings
from . import routes
from .replies import json_response
from .runtime import Runtime
from .state import ACTIVITY, CLOCK, CONTEXT, CORS, IDENTITIES, METRICS, RUNTIME, SETTINGS, SLOTS

if TYPE_CHECKING:
    from ..engine.slots import Loader

log = structlog.get_logger("cerebrum.backend")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/health"})
ANTHROPIC_PATHS = ("/v1/messages",)  # answer errors in Anthropic's shape
MAX_LINE_BYTES = 8190  # the request line and each header: aiohttp's default, made explicit


def error_response(exc: BackendError | InvalidRequest, request_id: str | None = None,
                   path: str = "") -> web.Response:
    """The single mapping from a backend error (or a wire format's 400) to HTTP, in the error
    shape of the wire format the path speaks (Anthropic's for /v1/messages, else OpenAI's)."""
    if isinstance(exc, InvalidRequest):
        exc = BadRequest(str(exc), code=exc.code, param=exc.param)
    headers = {"X-Request-ID": request_id} if request_id else {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if path.startswith(ANTHROPIC_PATHS):
        body = anthropic.error_body(exc.status, str(exc), request_id)
        return json_response(body, status=exc.status, headers=headers)
    body = error_body(str(exc), exc.type, exc.code, getattr(exc, "param", None))
    return json_response(body, status=exc.status, headers=headers)


def _from_http(exc: web.HTTPException, body_limit: int) -> BackendError:
    """Translate aiohttp's own errors (routing, body size) at the boundary."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(f"request body is over the limit of {body_limit} bytes")
    err = BackendError(f"{exc.reason}: {exc.text}" if exc.status != 404 else "no such endpoint")
    err.status = exc.status
    err.type = "invalid_request_error"
    err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
    return err


# What each HTTP parser error means, named by type: its message quotes the offending bytes,
# which may hold a key, so it is never echoed or logged.
_MALFORMED = {
    http_exceptions.BadHttpMethod: "the request line has an unknown method",
    http_exceptions.BadStatusLine: "the request line is malformed",
    http_exceptions.InvalidURLError: "the request target is not a valid URL",
    http_exceptions.InvalidHeader: "a header name or value is malformed",
    http_exceptions.ContentLengthError: "the body is shorter than its Content-Length",
    http_exceptions.TransferEncodingError: "the chunked body is malformed",
    http_exceptions.DecompressSizeError: "the body decompresses to more than allowed",
    http_exceptions.ContentEncodingError: "the body does not match its Content-Encoding",
    http_exceptions.PayloadEncodingError: "the body is malformed",
}


def protocol_error(exc: BaseException | None, max_line: int) -> BackendError:
    """Translate what aiohttp's HTTP parser rejected at the boundary (by type, never text)."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return HeaderTooLarge(f"the request line or a header is over the limit of {max_line} "
                              "bytes")
    if isinstance(exc, web.RequestPayloadError):  # the body broke while read; why is its cause
        exc = exc.__cause__ or http_exceptions.PayloadEncodingError("")
    if isinstance(exc, http_exceptions.HttpProcessingError):
        what = next((text for kind, text in _MALFORMED.items() if isinstance(exc, kind)),
                    "the HTTP message is malformed")
        return BadRequest(f"malformed HTTP request: {what}", code="malformed_request")
    return BackendError("internal server error")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request ID, in-flight accounting, metrics and one structured log line per request."""
    app = request.app
    request_id = new_request_id(request.headers.get("X-Request-ID"))
    ctx = request[CONTEXT] = RequestContext(request_id, app[CLOCK]())
    activity, metrics = app[ACTIVITY], app[METRICS]
    activity.begin()
    metrics.in_flight.inc()
    status = 500
    try:
        try:
            response = await handler(request)
        except ClientStalled:
            raise  # mid-stream: there is no error response to send
        except (BackendError, InvalidRequest) as exc:
            response = error_response(exc, request_id, request.path)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(_from_http(exc, app[SETTINGS].max_body_bytes), request_id,
                                      request.path)
        except web.RequestPayloadError as exc:
            response = error_response(protocol_error(exc, MAX_LINE_BYTES), request_id,
                                      request.path)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    except ClientStalled as exc:
        status = exc.status
        metrics.stalled_clients.labels(ctx.log.get("model", "")).inc()
        log.warning("client_stalled", request_id=request_id,
                    write_timeout_s=app[SETTINGS].write_timeout)
        if request.transport is not None:
            request.transport.abort()  # drop what the client never read
        raise ConnectionResetError("client stalled") from None
    except (asyncio.CancelledError, ConnectionResetError):
        status = 499  # the client went away (nginx's code for it)
        raise
    except Exception as exc:
        # Where, not what: an exception's message may quote the request.
        log.error("unhandled", request_id=request_id, error=type(exc).__name__,
                  at=[f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                      for f in traceback.extract_tb(exc.__traceback__)[-3:]])
        return error_response(BackendError("internal server error"), request_id, request.path)
    finally:
        activity.end()
        metrics.in_flight.dec()
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "unmatched"
        metrics.requests.labels(endpoint, str(status)).inc()
        log.info("request", request_id=request_id, method=request.method, path=endpoint,
                 status=status, ms=round((app[CLOCK]() - ctx.started) * 1000, 1), **ctx.log)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A browser's CORS preflight is answered here, before auth (it never carries a key)."""
    origin = request.headers.get("Origin")
    if Cors.is_preflight(request.method, origin,
                         request.headers.get("Access-Control-Request-Method")):
        return web.Response(status=204, headers=request.app[CORS].preflight(origin))
    return await handler(request)


async def capacity_header(request: web.Request, response: web.StreamResponse) -> None:
    """An answer for a model says how many generations it runs at once (`parallel`;
    `cerebrum.capacity`)."""
    ctx = request.get(CONTEXT)
    spec = request.app[SETTINGS].model(ctx.log.get("model", "")) if ctx is not None else None
    if spec is not None:
        response.headers[SEQUENCES_HEADER] = str(spec.parallel)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer to an allowed origin says so, streams and errors included."""
    response.headers.update(request.app[CORS].headers(request.headers.get("Origin")))


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer-key check (constant time) on everything but /health, when keys are set."""
    keys = request.app[SETTINGS].api_keys
    if keys and request.path not in _OPEN_PATHS and not key_ok(
            request.headers.get("Authorization", ""), request.headers.get("x-api-key", ""),
            keys):
        raise Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>' "
                           "(or 'x-api-key: <key>')")
    return await handler(request)


async def _close_slots(app: web.Application) -> None:
    for slot in app[SLOTS].values():
        slot.close()


def make_app(settings: Settings, *, loader: Loader | None = None,
             clock: Clock = time.monotonic) -> web.Application:
    """Build the backend application for `settings`. It imports nothing of llama-cpp-python:
    the first request that needs a model does (`Runtime`); `loader` replaces the engine's
    `load_llama` (fault injection)."""
    app = web.Application(middlewares=[request_context, cors, auth],
                          client_max_size=settings.max_body_bytes)
    app[CORS] = Cors(settings.cors_origins)
    app.on_response_prepare.append(cors_headers)
    app.on_response_prepare.append(capacity_header)
    metrics = Metrics()
    for spec in settings.models:
        metrics.model_loaded.labels(spec.name).set(0)
        metrics.queue_depth.labels(spec.name).set(0)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[CLOCK] = clock
    app[ACTIVITY] = Activity(clock)
    app[SLOTS] = {}
    started, build = int(time.time()), llama_build()
    app[IDENTITIES] = {spec.name: identity(spec, started, build) for spec in settings.models}
    app[RUNTIME] = Runtime(settings, app[SLOTS], loader=loader, metrics=metrics, clock=clock,
                           fingerprints={n: i.fingerprint for n, i in app[IDENTITIES].items()})
    app.on_cleanup.append(_close_slots)
    routes.add_routes(app)
    return app
