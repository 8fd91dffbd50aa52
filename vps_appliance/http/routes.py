"""The route table, and the endpoints that need no model: `/health`, `/metrics`,
`/v1/models`. The model endpoints (handlers.py) are imported through `Runtime` on first use,
with the engine, so a socket-activated backend answers these before llama-cpp-python loads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .replies import json_response
from .state import IDENTITIES, METRICS, RUNTIME, SETTINGS, SLOTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HANDLERS = "vps_appliance.http.handlers"  # the model endpoints, imported on first use


def _status(request: web.Request) -> list[dict[str, object]]:
    """Every manifest model's state and load, slots made or not: resident or not, its
    sequences and how many are in use, requests waiting, prompt tokens still to evaluate, KV
    cells in use and the tokens of the last decode step."""
    slots = request.app[SLOTS]
    rows: list[dict[str, object]] = []
    for spec in request.app[SETTINGS].models:
        slot = slots.get(spec.name)
        load = slot.load() if slot is not None else None
        rows.append({
            "name": spec.name, "loaded": slot is not None and slot.loaded,
            "busy": slot is not None and slot.busy,
            "waiting": slot.waiting if slot is not None else 0,
            "sequences": load.sequences if load is not None else spec.parallel,
            "in_use": load.in_use if load is not None else 0,
            "prompt_tokens_pending": load.prompt_tokens_pending if load is not None else 0,
            "kv_cells": load.kv_cells if load is not None else spec.n_ctx,
            "kv_cells_used": load.kv_cells_used if load is not None else 0,
            "batch_tokens": load.batch_tokens if load is not None else 0,
        })
    return rows


async def health(request: web.Request) -> web.Response:
    """GET /health: 200 while the server can serve; each model's state and load."""
    return json_response({"status": "ok", "models": _status(request)})


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models."""
    identities = request.app[IDENTITIES]
    settings = request.app[SETTINGS]

    def aliases(name: str) -> list[str]:
        return [p for p, t in settings.aliases if (t or settings.models[0].name) == name]

    slots = request.app[SLOTS]
    data = [{"id": spec.name, "object": "model", "created": identities[spec.name].created,
             "owned_by": "cerebrum", "n_ctx": spec.n_ctx,
             "loaded": spec.name in slots and slots[spec.name].loaded,
             "aliases": aliases(spec.name)}
            for spec in settings.models]
    return json_response({"object": "list", "data": data})


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _on_first_use(name: str) -> Handler:
    """The model endpoint `handlers.<name>`, imported by the runtime when first called."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        handlers = await request.app[RUNTIME].endpoints(HANDLERS)
        return await getattr(handlers, name)(request)

    endpoint.__name__ = name
    return endpoint


def add_routes(app: web.Application) -> None:
    """Register every endpoint."""
    app.router.add_post("/v1/chat/completions", _on_first_use("chat_completions"))
    app.router.add_post("/v1/completions", _on_first_use("text_completions"))
    app.router.add_post("/infill", _on_first_use("infill"))
    app.router.add_post("/completion", _on_first_use("completion"))
    app.router.add_post("/v1/responses", _on_first_use("responses_create"))
    app.router.add_post("/v1/responses/input_tokens", _on_first_use("responses_input_tokens"))
    app.router.add_post("/v1/messages", _on_first_use("messages"))
    app.router.add_post("/v1/messages/count_tokens", _on_first_use("messages_count_tokens"))
    app.router.add_post("/v1/tokenize", _on_first_use("tokenize"))
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
