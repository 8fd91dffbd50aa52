"""The decode loop: evaluate the prompt (reusing the cached prefix), then sample, one token at
a time or, with a `Drafter`, several per step by verifying a draft in one batch.

Verification samples at each drafted position with the request's own sampler chain, as
llama.cpp's server does (`common_sampler_sample_and_accept_n`): position i's logits are
sampled, and the draft goes on only while the sampled token equals the drafted one. Every
emitted token is therefore drawn from exactly the distribution plain decoding would draw it
from, given the same preceding tokens, and the chain (penalties, the seeded RNG) sees the same
tokens in the same order: one draw per emitted token. At temperature 0 the output is plain
decoding's; at temperature > 0 a seeded run is reproducible and matches plain decoding's draws.
The KV of the rejected tail is removed (`llama_memory_seq_rm`) before the next step.

That argument needs a position's logits to be the same whether its tokens were evaluated
one at a time or in a batch. On llama.cpp's CPU backend that holds only for small batches and
only with the plain weight layout (no repacking) and flash attention: past a size, other
kernels with another rounding take over, and from a few hundred positions on no batch is
bit-identical. `invariant_batch` measures the largest batch that gives bit-identical logits
early in a context on this CPU and build; in "exact" mode drafts are kept within it. In
"auto" mode (the default) they are not: the output departs from plain decoding only where
the batch's rounding (up to ~0.8 in a logit) flips a near-tie, as llama-server's does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
import numpy as np

from .logprobs import Logprob
from .prompt_cache import common_prefix
from .sampling import Chain
from .speculative import Drafter

_SEQ = 0
# score(batch position, token): the logprob of `token` from the logits at that position.
Scorer = Callable[[int, int], Logprob]
Step = tuple[int, Logprob | None]


class _Batch:
    """A llama_batch for one sequence with logits at every position (freed by `close`)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, 1)

    def fill(self, tokens: Sequence[int], n_past: int) -> None:
        b = self.raw
        b.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            b.token[i] = token
            b.pos[i] = n_past + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = _SEQ
            b.logits[i] = 1

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.raw)


def decode(llm: llama_cpp.Llama, tokens: Sequence[int], chain: Chain,
           drafter: Drafter | None = None, max_new: int | None = None,
           score: Scorer | None = None) -> Iterator[Step]:
    """Evaluate `tokens`, then yield sampled tokens until the caller stops (or `max_new`),
    each with its logprob when `score` is given (read before the next evaluation).

    The shared prefix the context holds is kept; at least the last prompt token is evaluated
    again so the logits are fresh. The prompt is replayed into the chain first, as
    llama-server does, so the penalties count it too. The chain is freed when the generator
    closes. With a drafter, drafts are bounded by what is left of `max_new` and of the context.
    """
    batch: _Batch | None = None

    def sample() -> Step:
        token = chain.sample(llm.ctx, -1)
        return token, score(-1, token) if score is not None else None

    try:
        for token in tokens:
            llama_cpp.llama_sampler_accept(chain.history, token)
        keep = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        llm.n_tokens = min(keep, len(tokens) - 1)  # eval() drops the KV past n_tokens
        llm.eval(list(tokens[llm.n_tokens:]))
        step = sample()
        produced = 0
        n_ctx = llm.n_ctx()
        if drafter is not None:
            drafter.append([step[0]])
            # A verify batch must fit the context's n_batch: llama.cpp aborts on a larger one.
            batch = _Batch(min(drafter.config.draft_max + 1, llm.n_batch))
        while True:
            yield step
            produced += 1
            left = (max_new - produced if max_new is not None else n_ctx) - 1
            room = n_ctx - llm.n_tokens - 2
            draft = drafter.draft(min(left, room, batch.capacity - 1)) \
                if drafter is not None and batch is not None else []
            if not draft:
                llm.eval([step[0]])
                step = sample()
                if drafter is not None:
                    drafter.append([step[0]])
                continue
            assert batch is not None
            accepted, step = _verify(llm, chain, batch, step[0], draft, score)
            drafter.result(len(draft), len(accepted))
            drafter.append([*(t for t, _ in accepted), step[0]])
            for t in accepted:
                yield t
                produced += 1
    finally:
        if batch is not None:
            batch.close()
        chain.free()


def _verify(llm: llama_cpp.Llama, chain: Chain, batch: _Batch, last: int, draft: list[int],
            score: Scorer | None = None) -> tuple[list[Step], Step]:
    """Evaluate `last` + `draft` in one batch; the drafted tokens the model agrees with, and
    the token it samples after them (the correction, or the one after a whole draft), each
    scored from the logits of the batch position that produced it."""
    n_past = llm.n_tokens
    step = [last, *draft]
    batch.fill(step, n_past)
    if llama_cpp.llama_decode(llm.ctx, batch.raw) != 0:
        raise RuntimeError("llama_decode failed while verifying a draft")
    accepted: list[Step] = []
    for i, drafted in enumerate(draft):
        sampled = chain.sample(llm.ctx, i)
        if sampled != drafted:
            break
        accepted.append((sampled, score(i, sampled) if score is not None else None))
    else:
        sampled = chain.sample(llm.ctx, len(draft))
    scored = score(len(accepted), sampled) if score is not None else None
    kept = n_past + 1 + len(accepted)  # `last` and the accepted drafts
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), _SEQ, kept, -1)
    llm.input_ids[n_past:kept] = step[:kept - n_past]
    llm.n_tokens = kept
    return accepted, (sampled, scored)


_PROBE_TEXT = (b"def merge(a, b):\n    out = []\n    i = j = 0\n"
               b"    while i < len(a) and j < len(b):\n"
               b"        if a[i] <= b[j]:\n            out.append(a[i])\n            i += 1\n"
               b"        else:\n            out.append(b[j])\n            j += 1\n"
               b"    return out + a[i:] + b[j:]\n\n\nprint(merge([1, 4, 9], [2, 3, 10]))\n")
_PROBE_BASE = 24  # prompt tokens before the probed positions


def invariant_batch(llm: llama_cpp.Llama, limit: int) -> int:
    """The largest batch (1..limit) whose logits are bit-identical to evaluating its tokens
    one at a time after the same prefix; 1 when none is, or when the probe fails. Clears the
    context (the prompt cache is untouched).

    The one-at-a-time logits are computed once; each candidate size then costs one batch.
    """
    tokens = llm.tokenize(_PROBE_TEXT, add_bos=False, special=False)
    tokens = (tokens * (1 + (_PROBE_BASE + limit) // max(len(tokens), 1)))[:_PROBE_BASE + limit]
    if limit < 2 or llm.n_ctx() < len(tokens) + 1:
        return 1
    n_vocab = llm.n_vocab()
    memory = llama_cpp.llama_get_memory(llm.ctx)
    batch = _Batch(max(limit, _PROBE_BASE))

    def logits(i: int) -> Any:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                     shape=(n_vocab,)).copy()

    def run(part: Sequence[int], at: int) -> bool:
        llama_cpp.llama_memory_seq_rm(memory, _SEQ, at, -1)
        batch.fill(part, at)
        return llama_cpp.llama_decode(llm.ctx, batch.raw) == 0

    def same(size: int) -> bool:
        return run(tokens[_PROBE_BASE:_PROBE_BASE + size], _PROBE_BASE) and all(
            np.array_equal(logits(i), single[i]) for i in range(size))

    try:
        llm.reset()
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
        llama_cpp.llama_memory_clear(memory, True)
        llm.reset()
