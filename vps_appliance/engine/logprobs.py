"""Log probabilities of sampled tokens, and OpenAI's two shapes for them.

A token's logprob is the log-softmax of the model's raw logits at its position, before any
sampler (temperature, penalties, a grammar, logit_bias) touched them: what OpenAI and
llama-server report, and the same for a token sampled alone or accepted from a verified draft
(both read the logits of the position that produced it). Top alternatives come from the same
distribution, highest first.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np

MAX_TOP_CHAT = 20  # OpenAI's top_logprobs limit
MAX_TOP_COMPLETION = 5  # the legacy completions' logprobs limit


@dataclass(frozen=True)
class Logprob:
    """One sampled token: its bytes and logprob, and the most likely tokens at its position."""

    piece: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


def at(ctx: Any, index: int, token: int, *, n_vocab: int, top_n: int,
       piece: Callable[[int], bytes]) -> Logprob:
    """The logprob of `token` from the logits at batch position `index` (-1: the last), with
    the `top_n` most likely tokens; `piece(token) -> bytes` spells a token."""
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index),
                                   shape=(n_vocab,)).astype(np.float64)
    peak = float(logits.max())
    norm = peak + math.log(float(np.exp(logits - peak).sum()))
    top: tuple[tuple[bytes, float], ...] = ()
    if top_n > 0:
        best = np.argpartition(-logits, top_n - 1)[:top_n]
        best = best[np.argsort(-logits[best], kind="stable")]
        top = tuple((piece(int(t)), float(logits[t]) - norm) for t in best)
    return Logprob(piece(token), float(logits[token]) - norm, top)


def speller(vocab: Any) -> Callable[[int], bytes]:
    """`piece(token) -> bytes`: a token's text as the model writes it (no special tokens)."""
    buf = ctypes.create_string_buffer(256)

    def piece(token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, 256, 0, False)
        return buf.raw[: max(n, 0)]

    return piece


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def chat_content(entries: Sequence[Logprob]) -> list[dict[str, Any]]:
    """Chat's `logprobs.content`: token, logprob, bytes and top_logprobs per token."""
    return [{"token": _text(e.piece), "logprob": e.logprob, "bytes": list(e.piece),
             "top_logprobs": [{"token": _text(p), "logprob": lp, "bytes": list(p)}
                              for p, lp in e.top]}
            for e in entries]


def completion_logprobs(entries: Sequence[Logprob], offset: int = 0) -> dict[str, Any]:
    """The legacy completions' `logprobs`: tokens, token_logprobs, top_logprobs (a token →
    logprob map per position) and text_offset (characters from the start of the answer;
    `offset` is where these entries start)."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(_text(e.piece))
    return {"tokens": [_text(e.piece) for e in entries],
            "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [{_text(p): lp for p, lp in e.top} for e in entries],
            "text_offset": offsets}
