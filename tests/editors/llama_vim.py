"""What ggml-org/llama.vim does with the bytes of an `/infill` reply, step for step as its
`autoload/llama.vim` (main, a1c8e6e, 2026-01-31) does it in Vim:

1. `job_start(curl …, {'out_cb': …})`: the channel is in NL mode, so the callback gets the
   reply one line at a time (`s:fim_on_response`, once per line);
2. its fast check, before any parsing: `l:raw !~# '^\\s*{' || l:raw !~# '\\v"content"\\s*:"'`
   drops the line — no space is allowed between the colon and the string's quote;
3. `json_decode`, then `s:fim_render`: `content` split on newlines, trailing empty lines
   dropped; the info line only when all six flattened `timings/…` keys are present;
   `tokens_cached` and `timings/truncated` read with defaults; nothing but whitespace is not
   offered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Vim's `\s` is a space or a tab; `^` is the start of the (one-line) string.
_STARTS_LIKE_JSON = re.compile(r"^[ \t]*\{")
_HAS_CONTENT = re.compile(r'"content"[ \t]*:"')
INFO_KEYS = ("timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_second",
             "timings/predicted_n", "timings/predicted_ms", "timings/predicted_per_second")

# The fields llama#fim asks for (`response_fields`), and its two requests.
FIM_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
              "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
              "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated",
              "tokens_cached"]


def fim_request(prefix: str, suffix: str, middle: str, extra: list[dict[str, Any]], *,
                model: str, n_indent: int, t_max_predict_ms: int = 250) -> dict[str, Any]:
    """llama#fim's body (t_max_predict_ms 250 when nothing is cached yet, else 1000)."""
    return {"id_slot": 0, "input_prefix": prefix, "input_suffix": suffix, "input_extra": extra,
            "prompt": middle, "n_predict": 128, "stop": [], "n_indent": n_indent, "top_k": 40,
            "top_p": 0.90, "samplers": ["top_k", "top_p", "infill"], "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": t_max_predict_ms,
            "response_fields": FIM_FIELDS, "model": model}


def ring_request(extra: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    """s:ring_update's body: the ring's chunks evaluated into the KV cache, nothing generated;
    the plugin sets no callback, so only the status line of the reply matters to it."""
    return {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": extra,
            "prompt": "", "n_predict": 0, "temperature": 0.0, "samplers": [], "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""], "model": model}


@dataclass(frozen=True)
class Shown:
    """What the plugin shows for a reply: the suggestion's lines and whether the info line
    (tokens, times, speed) is drawn."""

    lines: list[str]
    info: bool
    tokens_cached: int
    truncated: bool


def callbacks(raw: bytes) -> list[str]:
    """The strings Vim hands `out_cb` for a reply body: one per line (NL mode)."""
    lines = raw.decode("utf-8").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def on_response(line: str) -> dict[str, Any] | None:
    """`s:fim_on_response` on one callback: the decoded reply, or None where it is dropped."""
    if not line or not _STARTS_LIKE_JSON.search(line) or not _HAS_CONTENT.search(line):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def shown(raw: bytes) -> Shown | None:
    """What the plugin would show for this reply body, or None when it shows nothing."""
    for line in callbacks(raw):
        response = on_response(line)
        if response is None:
            continue
        content = str(response.get("content", "")).split("\n")
        while content and content[-1] == "":
            content.pop()
        if not content or not "\n".join(content).strip():
            return None  # s:fim_render: nothing but whitespace cannot be accepted
        return Shown(lines=content, info=all(k in response for k in INFO_KEYS),
                     tokens_cached=response.get("tokens_cached", 0),
                     truncated=response.get("timings/truncated", False))
    return None
