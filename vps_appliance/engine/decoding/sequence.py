"""One request running on one sequence of a model's context (`Generation`), stepped by the
model's decode loop (`scheduler.py`).

Its prompt is evaluated in the chunks the loop gives it room for (the shared prefix its
sequence already holds is kept; at least the last prompt token is evaluated again, so the
logits are fresh); then each step evaluates the last sampled token, or that token and a draft
to verify. Sampling uses the request's own chain, from the logits at the batch positions its
tokens took; every sampled token is checked for the end of the answer (end of generation,
stop tokens and strings, the limit, llama-server's FIM limits, a repeated tool call) and
streamed to its own client.

Verification samples at each drafted position with the request's chain, as llama.cpp's
server does (`common_sampler_sample_and_accept_n`): the draft goes on only while the sampled
token equals the drafted one, so every emitted token is drawn from the distribution plain
decoding would draw it from, and the chain (penalties, the seeded RNG) sees the same tokens in
the same order. The KV of a rejected tail is removed before the next step.
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import structlog

from cerebrum.activation import Clock
from cerebrum.generation.events import Usage

from ...metrics import Metrics
from .. import logprobs, tools
from ..fim import IndentGuard
from ..prompt_cache import common_prefix
from ..sampling import Chain, build_chain
from ..speculative import Drafter
from ..stops import StopScanner
from .batch import Batch
from .job import Done, Job, Piece

log = structlog.get_logger("cerebrum.backend")

Scorer = Callable[[int, int], logprobs.Logprob]


@dataclass
class Lane:
    """One sequence of the context: the tokens whose KV it holds (positions 0…n-1)."""

    id: int
    tokens: list[int] = field(default_factory=list)
    busy: bool = False
    used_at: float = 0.0

    def truncate(self, ctx: Any, keep: int) -> None:
        """Drop the KV past the first `keep` tokens."""
        if keep < len(self.tokens):
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), self.id, keep, -1)
            del self.tokens[keep:]


@dataclass(frozen=True)
class Model:
    """What a generation needs of its model."""

    llm: Any  # llama_cpp.Llama: its context, vocabulary and tokenizer
    vocab: Any
    n_ctx: int
    name: str


class Generation:
    """A job's choices, one after another, on `lane`; the decode loop calls `add_to` to put
    its next tokens in a step's batch and `after_decode` once the batch is evaluated."""

    def __init__(self, job: Job, model: Model, lane: Lane, *, metrics: Metrics, clock: Clock):
        self.job = job
        self.lane = lane
        self._model = model
        self._metrics = metrics
        self._clock = clock
        self._ctx = model.llm.ctx
        self._piece_buf = ctypes.create_string_buffer(256)
        self.index = -1
        self.finished = False
        # Where a prompt chunk must end, so the loop can copy the KV of exactly the stable
        # prefix to the disk cache (0: nothing to copy).
        self.store_at = 0
        self._begin(0)

    # The decode loop's side ---------------------------------------------------------------

    @property
    def prefilling(self) -> bool:
        """Whether prompt tokens are left to evaluate."""
        return bool(self._pending)

    @property
    def pending_prompt(self) -> int:
        """Prompt tokens left to evaluate."""
        return len(self._pending)

    def add_to(self, batch: Batch, budget: int) -> int:
        """Put up to `budget` (≥ 1) of this generation's next tokens in `batch`; how many."""
        n_past = len(self.lane.tokens)
        if self._pending:
            if n_past < self.store_at:
                budget = min(budget, self.store_at - n_past)
            part = self._pending[:budget]
            self._last_chunk = len(part) == len(self._pending)
            self._base = batch.add(part, n_past, self.lane.id,
                                   "last" if self._last_chunk else "none")
            self._step = part
        else:
            draft = self._draft(budget - 1)
            self._step = [self._last, *draft]
            self._base = batch.add(self._step, n_past, self.lane.id, "all")
        self.lane.tokens.extend(self._step)
        return len(self._step)

    def after_decode(self) -> bool:
        """The batch holding this generation's tokens was evaluated: sample, stream, and say
        whether the generation goes on (False: every choice ended, or the client left)."""
        if self._pending:
            del self._pending[: len(self._step)]
            if not self._last_chunk:
                return True
            steps = [self._sample(self._base + len(self._step) - 1)]
        elif len(self._step) == 1:
            steps = [self._sample(self._base)]
        else:
            steps = self._verify()
        for token, scored in steps:
            if not self._emit(token, scored):
                return self._end_choice()
        return True

    def full(self) -> bool:
        """The KV cache has no cell left for this generation's next token: it ends there, as
        at its length limit."""
        return self._end_choice()

    def cancel(self) -> None:
        """The client went away: stop without another event."""
        self._cancelled = True
        self._close()
        self._metrics.cancelled.labels(self._model.name).inc()
        log.info("generation_cancelled", model=self._model.name, completion_tokens=self._count)

    def fail(self) -> None:
        """llama.cpp failed: free what the generation holds (the loop reports the failure)."""
        self._close()

    # One choice ---------------------------------------------------------------------------

    def _begin(self, index: int) -> None:
        job, control = self.job, self.job.control
        params = job.params
        self.index = index
        self._started = self._clock()
        tokens = job.tokens
        keep = common_prefix(self.lane.tokens, tokens) if control.cache_prompt else 0
        keep = min(keep, len(tokens) - 1)
        self.lane.truncate(self._ctx, keep)
        self._pending = list(tokens[keep:])
        self._evaluated = len(self._pending)
        self._last_chunk = False
        self._step: list[int] = []
        self._base = 0
        self._last = -1
        self._count = 0  # tokens of the answer (end of generation excluded)
        self._produced = 0  # tokens sampled
        self._first_at: float | None = None
        self._last_at: float | None = None
        self._finish, self._stop_type = "length", "limit"
        self._cancelled = False
        self._scanner = StopScanner(job.stops)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._indent = IndentGuard(control.n_indent)
        self._repeats = tools.RepeatGuard() if control.repeated_calls_end else None
        self._held: list[logprobs.Logprob] = []
        seed = None if params.seed is None else (params.seed + index) % 2**32
        vocab, n_vocab = self._model.vocab, self._model.llm.n_vocab()
        self._chain: Chain | None = build_chain(
            vocab, n_vocab, control.samplers.for_context(self._model.n_ctx),
            temperature=params.temperature, top_k=params.top_k, top_p=params.top_p,
            min_p=params.min_p, repeat_penalty=params.repeat_penalty, seed=seed)
        for token in tokens:  # as llama-server does: the penalties count the prompt too
            llama_cpp.llama_sampler_accept(self._chain.history, token)
        self._drafter = (Drafter(control.drafting, tokens, control.prediction)
                         if control.drafting.enabled else None)
        self._score: Scorer | None = None
        if control.top_logprobs is not None:
            self._score = functools.partial(logprobs.at, self._ctx, n_vocab=n_vocab,
                                            top_n=control.top_logprobs,
                                            piece=logprobs.speller(vocab))
        self._deadline = (control.t_max_predict_ms / 1000 if control.t_max_predict_ms > 0
                          else None)

    def _sample(self, index: int) -> tuple[int, logprobs.Logprob | None]:
        assert self._chain is not None
        token = self._chain.sample(self._ctx, index)
        if self._drafter is not None:
            self._drafter.append([token])
        return token, self._score(index, token) if self._score is not None else None

    def _draft(self, budget: int) -> list[int]:
        if self._drafter is None or budget < 1:
            return []
        left = max(self.job.max_tokens, 1) - self._produced - 1
        room = self._model.n_ctx - len(self.lane.tokens) - 2
        return self._drafter.draft(min(left, room, budget))

    def _verify(self) -> list[tuple[int, logprobs.Logprob | None]]:
        """The drafted tokens the model agrees with, then the token it samples after them
        (the correction, or the one after a whole draft), each scored from the logits of the
        batch position that produced it; the rejected tail's KV is removed."""
        assert self._chain is not None and self._drafter is not None
        draft, base = self._step[1:], self._base
        out: list[tuple[int, logprobs.Logprob | None]] = []
        for i, drafted in enumerate(draft):
            sampled = self._chain.sample(self._ctx, base + i)
            if sampled != drafted:
                break
            out.append((sampled, self._score(base + i, sampled) if self._score else None))
        else:
            sampled = self._chain.sample(self._ctx, base + len(draft))
        out.append((sampled, self._score(base + len(out), sampled) if self._score else None))
        accepted = len(out) - 1
        self.lane.truncate(self._ctx, len(self.lane.tokens) - len(draft) + accepted)
        self._drafter.result(len(draft), accepted)
        self._drafter.append([t for t, _ in out])
        return out

    def _emit(self, token: int, scored: logprobs.Logprob | None) -> bool:
        """One sampled token: stream its text; False when the choice ends with it."""
        name, control = self._model.name, self.job.control
        self._last = token
        self._produced += 1
        if self._first_at is None:
            self._first_at = self._clock()
            self._metrics.prompt_tokens_evaluated.labels(name).inc(self._evaluated)
            if self.job.max_tokens == 0:  # llama-server's n_predict 0: fill the cache only
                return False
        if llama_cpp.llama_vocab_is_eog(self._model.vocab, token) or \
                token in control.stop_tokens:
            self._finish, self._stop_type = "stop", "eos"
            return False
        self._count += 1
        if scored is not None:
            self._held.append(scored)
        self._last_at = self._clock()
        self._metrics.completion_tokens.labels(name).inc()
        n = llama_cpp.llama_token_to_piece(self._model.vocab, token, self._piece_buf, 256, 0,
                                           False)
        text = self._indent.feed(self._scanner.feed(
            self._decoder.decode(self._piece_buf.raw[: max(n, 0)])))
        if text:
            if not self.job.handoff.put(Piece(text, self.index, tuple(self._held))):
                self._cancelled = True
                return False
            self._held.clear()
        if self._scanner.stopped:
            self._finish, self._stop_type = "stop", "word"
            return False
        if self._repeats is not None and self._repeats.feed(text):
            self._finish, self._stop_type = "stop", "none"
            return False
        if self._indent.stopped or (self._deadline is not None and "\n" in text
                                    and self._last_at - self._first_at > self._deadline):
            self._finish = "stop"
            return False
        return self._count < self.job.max_tokens

    def _end_choice(self) -> bool:
        """The choice ended: its last text and `Done`; start the next choice, if any. False
        when the generation is over."""
        if self._cancelled:
            self.cancel()
            return False
        name, handoff = self._model.name, self.job.handoff
        tail = self._indent.feed(self._scanner.flush() + self._decoder.decode(b"", final=True))
        if not self._indent.stopped:
            tail += self._indent.flush()
        if (tail or self._held) and not handoff.put(Piece(tail, self.index, tuple(self._held))):
            self.cancel()
            return False
        first, last = self._first_at, self._last_at
        rate = None
        if first is not None and last is not None and self._count > 1 and last > first:
            rate = (self._count - 1) / (last - first)
            self._metrics.tokens_per_second.labels(name).observe(rate)
        stats = self._drafter.stats if self._drafter is not None else None
        tokens = self.job.tokens
        evaluated = self._evaluated if first is not None else len(tokens) - len(self._pending)
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=self._count,
                      cached_tokens=len(tokens) - evaluated,
                      accepted_prediction_tokens=stats.accepted if stats else 0,
                      rejected_prediction_tokens=stats.rejected if stats else 0)
        if stats is not None:
            self._metrics.drafted_tokens.labels(name).inc(stats.drafted)
            self._metrics.accepted_tokens.labels(name).inc(stats.accepted)
        ended = self._clock()
        queued = self._started - self.job.submitted if self.index == 0 else 0.0
        delivered = handoff.put(Done(
            self._finish, usage, rate, stop_type=self._stop_type,
            stopping_word=self._scanner.word,
            prompt_seconds=(first or ended) - self._started,
            predict_seconds=ended - (first or ended), tokens_cached=len(self.lane.tokens),
            index=self.index, queued_seconds=max(0.0, queued)))
        self._close()
        if not delivered:
            return False
        if self.index + 1 < self.job.control.n:
            self._begin(self.index + 1)
            return True
        self.finished = True
        return False

    def _close(self) -> None:
        if self._chain is not None:
            self._chain.free()
            self._chain = None


def exact(control: Any, limit: int) -> Any:
    """`control` with drafts kept within `limit` tokens of verify batch (the measured batch
    giving one-token steps' logits); drafting off where no batch does."""
    drafting = control.drafting
    draft_max = min(drafting.draft_max, limit - 1)
    kept = dataclasses.replace(drafting, enabled=draft_max >= drafting.draft_min,
                               draft_max=draft_max, align=1)
    return dataclasses.replace(control, drafting=kept)
