"""A sampled token's logprob as OpenAI writes it, the shape its Chat Completions
(`logprobs.content`) and Responses (`output_text.logprobs`) APIs share (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cerebrum.generation.events import TokenLogprob


def text(piece: bytes) -> str:
    """A token's bytes as text (a partial UTF-8 character as U+FFFD)."""
    return piece.decode("utf-8", errors="replace")


def entries(tokens: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """Token, logprob, bytes and top_logprobs per token."""
    return [{"token": text(e.piece), "logprob": e.logprob, "bytes": list(e.piece),
             "top_logprobs": [{"token": text(p), "logprob": lp, "bytes": list(p)}
                              for p, lp in e.top]}
            for e in tokens]
