"""The llama_batch a model's decode loop fills each step, and the probe that measures which
verify batches give one-token steps' logits bit for bit.

One batch is allocated per model, once, with room for `n_batch` tokens: llama.cpp aborts the
whole process (`GGML_ASSERT`) on a batch larger than the context's `n_batch`, so `add` refuses
to overfill it. Tokens of several sequences share a step; each is tagged with its sequence id
and position, and asks for logits only where it will sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np


class Batch:
    """A llama_batch for tokens of several sequences (freed by `close`)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.raw.n_tokens = 0

    @property
    def size(self) -> int:
        """Tokens in the batch now."""
        return int(self.raw.n_tokens)

    @property
    def room(self) -> int:
        """Tokens that still fit."""
        return self.capacity - self.size

    def clear(self) -> None:
        """Empty the batch for the next step."""
        self.raw.n_tokens = 0

    def add(self, tokens: Sequence[int], n_past: int, seq: int, logits: str) -> int:
        """Append `tokens` at positions `n_past…` of sequence `seq`, with logits at every
        position ("all"), the last ("last") or none ("none"); the batch index of the first."""
        b, first = self.raw, self.size
        if len(tokens) > self.room:
            raise ValueError(f"{len(tokens)} tokens do not fit a batch with room for "
                             f"{self.room}")
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            j = first + i
            b.token[j] = token
            b.pos[j] = n_past + i
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq
            b.logits[j] = logits == "all" or (logits == "last" and i == last)
        b.n_tokens = first + len(tokens)
        return first

    def close(self) -> None:
        """Free the batch."""
        llama_cpp.llama_batch_free(self.raw)


_PROBE_TEXT = (b"def merge(a, b):\n    out = []\n    i = j = 0\n"
               b"    while i < len(a) and j < len(b):\n"
               b"        if a[i] <= b[j]:\n            out.append(a[i])\n            i += 1\n"
               b"        else:\n            out.append(b[j])\n            j += 1\n"
               b"    return out + a[i:] + b[j:]\n\n\nprint(merge([1, 4, 9], [2, 3, 10]))\n")
_PROBE_BASE = 24  # prompt tokens before the probed positions


def invariant_batch(llm: llama_cpp.Llama, limit: int, seq: int = 0) -> int:
    """The largest batch (1..limit) whose logits are bit-identical to evaluating its tokens
    one at a time after the same prefix; 1 when none is, or when the probe fails. Runs on
    sequence `seq` alone and clears it (other sequences and the prompt cache are untouched).

    The one-at-a-time logits are computed once; each candidate size then costs one batch.
    """
    tokens = llm.tokenize(_PROBE_TEXT, add_bos=False, special=False)
    tokens = (tokens * (1 + (_PROBE_BASE + limit) // max(len(tokens), 1)))[:_PROBE_BASE + limit]
    if limit < 2 or llm.n_ctx() < len(tokens) + 1:
        return 1
    n_vocab = llm.n_vocab()
    memory = llama_cpp.llama_get_memory(llm.ctx)
    batch = Batch(max(limit, _PROBE_BASE))

    def logits(i: int) -> Any:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                     shape=(n_vocab,)).copy()

    def run(part: Sequence[int], at: int) -> bool:
        llama_cpp.llama_memory_seq_rm(memory, seq, at, -1)
        batch.clear()
        batch.add(part, at, seq, "all")
        return llama_cpp.llama_decode(llm.ctx, batch.raw) == 0

    def same(size: int) -> bool:
        return run(tokens[_PROBE_BASE:_PROBE_BASE + size], _PROBE_BASE) and all(
            np.array_equal(logits(i), single[i]) for i in range(size))

    try:
        llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
        if not run(tokens[:_PROBE_BASE], 0):
            return 1
        single = []
        for i, token in enumerate(tokens[_PROBE_BASE:]):
            if not run([token], _PROBE_BASE + i):
                return 1
            single.append(logits(0))
        lo, hi = 1, limit  # search the largest agreeing size in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if same(mid):
                lo = mid
            else:
                hi = mid - 1
        # The search assumed that a size agreeing means the smaller ones do; check them.
        return next((size - 1 for size in range(2, lo) if not same(size)), lo)
    finally:
        batch.close()
        llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
