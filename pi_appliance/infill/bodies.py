"""What a fill-in-the-middle request sends its backend (`/infill`, `/completion`), and what
its answer carries back: llama.cpp's `response_fields`, the `cerebrum` stats (pure)."""

from __future__ import annotations

from typing import Any

from ..upstream import routing
from ..upstream.proxy import Opened
from ..wire.infill import InfillRequest
from .context import Selection


def upstream_options(ireq: InfillRequest, n_ctx: int) -> dict[str, Any]:
    """The checked llama.cpp options as an upstream takes them: `repeat_last_n` -1 becomes
    the route's context size (llama-server b11434 refuses -1)."""
    options = dict(ireq.options)
    if options.get("repeat_last_n") == -1:
        options["repeat_last_n"] = n_ctx
    return options


def payload(ireq: InfillRequest, selection: Selection, n_predict: int, n_ctx: int
            ) -> dict[str, Any]:
    """The backend's /infill body: the checked llama.cpp options, the text around the cursor
    and the chosen chunks. What only some upstreams take is normalised: `repeat_last_n` -1
    becomes the route's context size (llama-server b11434 refuses -1), and a chunk without
    a file name goes without one (each upstream applies its default, llama-server's "tmp")."""
    options = upstream_options(ireq, n_ctx)
    return {**options, "input_prefix": ireq.prefix, "input_suffix": ireq.suffix,
            "prompt": ireq.prompt, "n_predict": n_predict,
            "input_extra": [{"filename": e.filename, "text": e.text} if e.filename
                            else {"text": e.text} for e in selection.extra]}


def completion_payload(ireq: InfillRequest, n_predict: int, n_ctx: int) -> dict[str, Any]:
    """The backend's /completion body: the checked llama.cpp options and the prompt."""
    options = upstream_options(ireq, n_ctx)
    return {**options, "prompt": ireq.prompt, "n_predict": n_predict}


def stats_of(decision: routing.Decision, selection: Selection, opened: Opened,
             final: dict[str, Any], ttft: float | None) -> dict[str, Any]:
    """The `cerebrum` object: route, context selection, the backend's cache use, TTFT."""
    timings = final.get("timings") if isinstance(final.get("timings"), dict) else {}
    return {"model": decision.route.model, "route": decision.route.name,
            "language": decision.language, "route_reason": decision.reason,
            "backend": opened.backend.name, "context": selection.mode,
            "context_reason": selection.reason, "chunks_offered": selection.offered,
            "chunks_kept": len(selection.extra), "chunks_duplicate": selection.duplicates,
            "chunks_over_budget": selection.over_budget,
            "context_tokens": selection.context_tokens, "context_budget": selection.budget,
            "prompt_tokens": final.get("tokens_evaluated", timings.get("prompt_n")),
            "tokens_cached": final.get("tokens_cached"),
            "pipeline_ms": round(selection.pipeline_ms, 2),
            "ttft_ms": None if ttft is None else round(ttft * 1000, 1)}
