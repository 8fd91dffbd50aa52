"""Log probabilities of sampled tokens (the wire formats render them: `cerebrum.openai.render`).

A token's logprob is the log-softmax of the model's raw logits at its position, before any
sampler (temperature, penalties, a grammar, logit_bias) touched them: what OpenAI and
llama-server report, and the same for a token sampled alone or accepted from a verified draft
(both read the logits of the position that produced it). Top alternatives come from the same
distribution, highest first.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np

from cerebrum.generation.events import TokenLogprob as Logprob


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
