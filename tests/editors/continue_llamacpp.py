"""What Continue's `llama.cpp` provider (continuedev/continue d0a3c0b,
`core/llm/llms/LlamaCpp.ts`, `packages/fetch/src/stream.ts`) sends and reads: it has no FIM
endpoint (`supportsFim()` is false); autocomplete renders the model's FIM template into
`prompt` and POSTs `{apiBase}completion` with `stream: true`; the stream is split on "\\n",
each `data:` line parsed as JSON (a parse failure or an `error` field throws), and only
`content` is read — `stop` and `timings` are not, so the text ends when the body does."""

from __future__ import annotations

import json
from typing import Any

# Qwen2.5-Coder's FIM template and stop list in core/autocomplete/templating.
QWEN_FIM = "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"
QWEN_STOPS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
              "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>",
              "/src/", "#- coding: utf-8", "```"]


def autocomplete_request(prefix: str, suffix: str, *, model: str) -> dict[str, Any]:
    """LlamaCpp._streamComplete for autocomplete (n_predict is maxTokens, 4096 by default;
    temperature 0.01 when unset; undefined options left out)."""
    return {"model": model, "prompt": QWEN_FIM.format(prefix=prefix, suffix=suffix),
            "stream": True, "n_predict": 4096, "stop": QWEN_STOPS, "temperature": 0.01}


HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer undefined"}


class StreamError(Exception):
    """Where Continue's streamSse throws ("Malformed JSON", or the body's `error`)."""


def reads(raw: bytes) -> str:
    """The text Continue takes from a /completion stream."""
    text = ""
    for line in raw.decode("utf-8").split("\n"):
        if not line.startswith("data:"):
            continue
        value = line[6:] if line.startswith("data: ") else line[5:]
        if value == "[DONE]":
            continue
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise StreamError(f"Malformed JSON sent from server: {value[:80]}") from exc
        if isinstance(data, dict) and data.get("error"):
            raise StreamError(str(data["error"]))
        if data.get("content"):
            text += data["content"]
    return text
