"""What ggml-org/llama.vscode (3938fb3, v0.0.63) sends to `/infill` and reads back: axios
parses the whole body (no check on the raw text); only HTTP 200 carries a suggestion; an
object with `content` is one completion, an array is `n_cmpl` of them; the status bar reads
`tokens_cached`, `generation_settings.n_ctx ?? 0` (no null check on the object: without it a
TypeError stops the step that caches the suggestion and gathers context) and six `timings`
fields."""

from __future__ import annotations

import json
from typing import Any

TIMINGS = ("prompt_n", "prompt_ms", "prompt_per_second", "predicted_n", "predicted_ms",
           "predicted_per_second")


def fim_request(prefix: str, suffix: str, middle: str, extra: list[dict[str, Any]], *,
                model: str, n_indent: int) -> dict[str, Any]:
    """src/llama-server.ts createRequestPayload, package.json defaults, n_cmpl set to 1 as
    docs/editors.md says (max_parallel_completions)."""
    body = {"id_slot": 0, "input_prefix": prefix, "input_suffix": suffix,
            "input_extra": extra, "prompt": middle, "n_predict": 128, "n_cmpl": 1,
            "top_k": 40, "top_p": 0.99, "stream": False,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 500, "model": model}
    if n_indent:  # sent only when non-zero
        body["n_indent"] = n_indent
    return body


def prime_request(extra: list[dict[str, Any]]) -> dict[str, Any]:
    """updateExtraContext: fire and forget (no model, no n_cmpl)."""
    return {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": extra,
            "prompt": "", "n_predict": 0, "samplers": [], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 1}


def completions(status: int, raw: bytes) -> list[str]:
    """src/completion.ts: the suggestions a reply gives (none unless HTTP 200)."""
    if status != 200:
        return []
    data = json.loads(raw)
    if data is None:
        return []
    if isinstance(data, dict) and "content" in data:
        return [data["content"] or ""]
    return list(dict.fromkeys(c.get("content") or "" for c in data))


def status_bar(raw: bytes) -> dict[str, Any]:
    """src/statusbar.ts: what the status bar shows; KeyError/TypeError where it would throw."""
    data = json.loads(raw)
    timings = data.get("timings") or {}
    return {"tokens_cached": data.get("tokens_cached"),
            # `generation_settings.n_ctx ?? 0`: the object must be there; llama-server b11434's
            # has no n_ctx (the bar shows 0), both tiers send it.
            "n_ctx": data["generation_settings"].get("n_ctx") or 0,
            **{k: timings.get(k) for k in TIMINGS}}
