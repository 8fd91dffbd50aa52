"""A model's decode loop: one thread owns the llama.cpp context and, at every step, puts the
next token (and draft) of every generating sequence and chunks of the prompts being evaluated
into one batch, then lets each sequence sample from its own logits.

- Sequences: the context has `parallel` of them over one unified KV cache (every sequence may
  use the whole context; admission counts cells). An idle sequence keeps the KV of its last
  prompt and answer; a request takes the idle sequence sharing the longest prefix with its
  prompt, and a sequence whose cells are needed is first copied to the RAM prompt cache.
- Prefixes on disk (`disk_cache.py`): a request that read a stored prefix of its prompt before
  it was queued (`Job.stored`) is given it when that holds more than its sequence does; a
  request whose stable prefix (`Control.prefix`) is not stored has its prompt's evaluation
  cut at the prefix's end, and the sequence's KV then goes to the disk cache's writer.
- Admission: editors' completions (`Control.interactive`) first, then in arrival order; a
  request waits while no sequence is free or its prompt's cells are held by running ones.
- Prompts never freeze the streams: a step is sized to take about `step_ms` (from the time
  prompt tokens took in the last steps: deep in a long context each costs more); the
  running sequences' next tokens go first and prompts share what is left, an editor's
  prompt before the others, then the shortest left, and other prompts get only a trickle
  (16 tokens a step) while an editor's completion runs. A prompt alone goes in `n_batch`
  batches (an editor's request arriving waits for the one in flight).
- While an editor's completion is being decoded, the other decoding sequences join every
  other step: on these 2 cores a step of two sequences costs ~1.7 times a step of one, so the
  completion's tokens come faster while the others still stream (at about half their pace,
  for the second or so a completion takes).
- A sequence whose client reads slowly (its hand-off full) sits out steps; one whose client
  left leaves at once. A llama.cpp failure ends the sequences of that step, never the loop.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp
import structlog

from cerebrum.activation import Clock

from ...metrics import Metrics
from .. import prompt_cache
from ..disk_cache import DiskCache
from ..prompt_cache import PromptCache, common_prefix
from .batch import Batch, invariant_batch
from .job import Failed, Job
from .sequence import Generation, Lane, Model, exact

log = structlog.get_logger("cerebrum.backend")

# A sequence's cache that a new prompt would cut by more than this many tokens is copied to
# the RAM prompt cache first.
KEEP_AT_LEAST = 32
MIN_CHUNK = 16


@dataclass(frozen=True)
class Load:
    """What the loop is doing, for /health and the orchestrator's admission."""

    sequences: int
    in_use: int
    queued: int
    prompt_tokens_pending: int
    kv_cells_used: int
    kv_cells: int
    batch_tokens: int  # tokens in the last step


class Scheduler:
    """The decode loop of one loaded model (its thread starts with it; `close` ends it)."""

    def __init__(self, model: Model, *, parallel: int, step_ms: int, n_batch: int,
                 cache: PromptCache | None, metrics: Metrics, clock: Clock,
                 disk: DiskCache | None,
                 verify_limit: Callable[[], int | None], set_verify_limit: Callable[[int], None],
                 draft_max: int):
        self._model = model
        self._ctx = model.llm.ctx
        # A loader may have made fewer sequences than asked (a test's own Llama).
        self._lanes = [Lane(i) for i in range(min(parallel, llama_cpp.llama_n_seq_max(self._ctx)))]
        self._batch = Batch(max(1, min(n_batch, model.n_ctx)))
        self._step_seconds = step_ms / 1000
        self._token_seconds = 0.002  # a prompt token's share of a step; measured as it goes
        self._cache = cache
        self._disk = disk
        self._metrics = metrics
        self._clock = clock
        self._verify_limit = verify_limit
        self._set_verify_limit = set_verify_limit
        self._draft_max = draft_max
        self._queue: list[tuple[int, int, Job]] = []
        self._arrivals = itertools.count()
        self._running: list[Generation] = []
        self._cond = threading.Condition()
        self._closed = False
        self._batch_tokens = 0
        self._others_wait = False  # the others sit out this step, beside an editor's
        self._thread = threading.Thread(target=self._loop, name=f"decode-{model.name}",
                                        daemon=True)
        self._thread.start()

    # The event loop's side ----------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue a job; its events arrive through its hand-off."""
        with self._cond:
            if self._closed:
                job.handoff.put(Failed("the server is shutting down"))
                return
            heapq.heappush(self._queue, (job.priority, next(self._arrivals), job))
            self._metrics.queue_depth.labels(self._model.name).set(len(self._queue))
            self._cond.notify()

    def wake(self) -> None:
        """Something changed (a client read or left): look again."""
        with self._cond:
            self._cond.notify()

    def warm(self, prompt: list[int]) -> int:
        """About how much of `prompt` an idle sequence or the RAM cache holds now (read from
        the event loop while the loop runs: a hint for whether to read the disk cache)."""
        held = max((common_prefix(list(lane.tokens), prompt) for lane in self._lanes
                    if not lane.busy), default=0)
        return max(held, self._cache.longest(prompt) if self._cache is not None else 0)

    def load(self) -> Load:
        """A consistent view of the loop's load."""
        with self._cond:
            return Load(sequences=len(self._lanes),
                        in_use=sum(lane.busy for lane in self._lanes),
                        queued=len(self._queue),
                        prompt_tokens_pending=sum(g.pending_prompt for g in self._running)
                        + sum(len(job.tokens) for _, _, job in self._queue),
                        kv_cells_used=sum(len(lane.tokens) for lane in self._lanes),
                        kv_cells=self._model.n_ctx, batch_tokens=self._batch_tokens)

    def close(self) -> None:
        """Stop the loop after its current step; queued and running jobs get `Failed`."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self._batch.close()

    # The loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._purge()  # a client may have left during the step (its wake went unheard)
                while not self._closed and not self._has_work():
                    self._cond.wait()
                    self._purge()
                if self._closed:
                    break
                admitted = self._admit()
            for job, lane in admitted:
                self._start(job, lane)
            self._step()
        self._shut_down()

    def _has_work(self) -> bool:
        if any(g.job.handoff.cancelled.is_set() or g.job.handoff.ready()
               for g in self._running):
            return True
        return bool(self._queue) and self._admissible(self._queue[0][2]) is not None

    def _purge(self) -> None:
        """Forget queued jobs whose clients left before they started."""
        kept = [entry for entry in self._queue if not entry[2].handoff.cancelled.is_set()]
        if len(kept) != len(self._queue):
            heapq.heapify(kept)
            self._queue = kept
            self._metrics.queue_depth.labels(self._model.name).set(len(kept))

    def _used(self) -> int:
        return sum(len(lane.tokens) for lane in self._lanes)

    def _admissible(self, job: Job, reserved: int = 0) -> Lane | None:
        """The idle sequence `job` would take (the longest shared prefix, else the least
        recently used), if there is one and the cells its prompt needs can be freed
        (`reserved`: cells promised to jobs admitted with it). Alone, a job always is."""
        idle = [lane for lane in self._lanes if not lane.busy]
        if not idle:
            return None
        lane, keep = choose(idle, job.tokens, job.control.cache_prompt)
        freeable = sum(len(other.tokens) for other in idle if other is not lane)
        pending = sum(g.pending_prompt for g in self._running)  # cells promised, not yet used
        free = self._model.n_ctx - self._used() - pending + len(lane.tokens) - keep + freeable
        alone = not self._running and not reserved
        return lane if free - reserved >= self._needs(job, keep) or alone else None

    @staticmethod
    def _needs(job: Job, keep: int) -> int:
        """Cells a job needs to start: its prompt past what it keeps, and a start on its
        answer."""
        return len(job.tokens) - keep + min(job.max_tokens, 64)

    def _admit(self) -> list[tuple[Job, Lane]]:
        """Pop the jobs that can start now, best first; each gets its sequence."""
        admitted = []
        reserved = 0
        while self._queue:
            job = self._queue[0][2]
            lane = self._admissible(job, reserved)
            if lane is None:
                break
            heapq.heappop(self._queue)
            reserved += self._needs(job, min(common_prefix(lane.tokens, job.tokens),
                                             len(job.tokens) - 1))
            lane.busy = True
            admitted.append((job, lane))
        self._metrics.queue_depth.labels(self._model.name).set(len(self._queue))
        return admitted

    def _start(self, job: Job, lane: Lane) -> None:
        """Ready `lane` for `job` (the RAM cache's snapshot when it shares more) and start
        its generation; a job that cannot start gets `Failed`."""
        try:
            if job.handoff.cancelled.is_set():
                raise _Gone
            control = job.control
            if control.drafting.enabled and control.drafting.exact:
                job.control = exact(control, self._measured_limit(lane))
            keep = min(common_prefix(lane.tokens, job.tokens), len(job.tokens) - 1)
            if len(lane.tokens) - keep > KEEP_AT_LEAST:
                self._save(lane)  # what the prompt cuts off goes to the RAM cache
            if not control.cache_prompt:
                lane.truncate(self._ctx, 0)
            elif self._cache is not None:
                snap, shared = self._cache.best(job.tokens)
                if snap is not None and shared > common_prefix(lane.tokens, job.tokens):
                    lane.truncate(self._ctx, 0)
                    self._make_room(len(snap.tokens), lane)
                    if prompt_cache.restore(self._ctx, lane.id, snap):
                        lane.tokens = list(snap.tokens)
            if control.cache_prompt:
                self._load_stored(job, lane)
            job.stored = None  # its KV is in the sequence now, or not wanted
            keep = min(common_prefix(lane.tokens, job.tokens), len(job.tokens) - 1)
            self._make_room(len(job.tokens) - keep, lane)
            gen = Generation(job, self._model, lane, metrics=self._metrics, clock=self._clock)
            prefix = control.prefix
            if (self._disk is not None and control.cache_prompt
                    and keep < prefix <= len(job.tokens) - 1
                    and prefix >= self._disk.min_tokens
                    and not self._disk.has(job.tokens[:prefix])):
                gen.store_at = prefix
            self._running.append(gen)
        except _Gone:
            self._release(lane)
        except Exception as exc:  # a grammar llama.cpp refuses, a failed load of a snapshot
            self._release(lane)
            log.error("generation_failed", model=self._model.name, error=type(exc).__name__)
            job.handoff.put(Failed(f"generation failed: {type(exc).__name__}"))

    def _load_stored(self, job: Job, lane: Lane) -> None:
        """Load the prefix read from disk for `job` into `lane` if it holds more of the
        prompt than `lane` does (and the cells are free); if llama.cpp cannot place it, the
        prompt is evaluated (the file stays: its model and checksum were checked)."""
        snap, name = job.stored, self._model.name
        if snap is None:
            return
        if common_prefix(snap.tokens, job.tokens) <= common_prefix(lane.tokens, job.tokens):
            return
        lane.truncate(self._ctx, 0)
        if self._make_room(len(snap.tokens), lane) and \
                prompt_cache.restore(self._ctx, lane.id, snap):
            lane.tokens = list(snap.tokens)
            self._metrics.prefix_hits.labels(name).inc()
            return
        log.warning("prefix_cache_load_refused", model=name, tokens=len(snap.tokens))
        self._metrics.prefix_misses.labels(name).inc()

    def _store(self, gen: Generation) -> None:
        """`gen`'s sequence holds exactly its stable prefix now: hand a copy of its KV to the
        disk cache's writer."""
        assert self._disk is not None
        tokens = gen.lane.tokens[:gen.store_at]
        gen.store_at = 0
        kv = prompt_cache.state(self._ctx, gen.lane.id)
        if kv is not None:
            self._disk.store(tokens, kv)

    def _measured_limit(self, lane: Lane) -> int:
        """The verify batch giving one-token steps' logits ("exact" drafting), measured once
        on `lane`."""
        limit = self._verify_limit()
        if limit is None:
            # Measured in a context holding nothing else where it can be (other sequences'
            # cells change which kernels the probe's batches take): idle sequences and this
            # one go to the RAM cache first.
            for other in self._lanes:
                if other is lane or not other.busy:
                    self._evict(other)
            limit = invariant_batch(self._model.llm, self._draft_max + 1, lane.id)
            self._set_verify_limit(limit)
        return limit

    def _save(self, lane: Lane) -> None:
        """Copy `lane`'s KV to the RAM prompt cache."""
        if self._cache is not None and lane.tokens:
            snap = prompt_cache.snapshot(self._ctx, lane.id, lane.tokens)
            if snap is not None:
                self._cache.put(snap)

    def _evict(self, lane: Lane) -> None:
        """Free `lane`'s cells, keeping its KV in the RAM prompt cache."""
        self._save(lane)
        lane.truncate(self._ctx, 0)

    def _make_room(self, cells: int, keep: Lane | None = None) -> bool:
        """Free idle sequences' cells, least recently used first, until `cells` are free."""
        idle = sorted((lane for lane in self._lanes if not lane.busy and lane is not keep
                       and lane.tokens), key=lambda lane: lane.used_at)
        for lane in idle:
            if self._model.n_ctx - self._used() >= cells:
                break
            self._evict(lane)
        return self._model.n_ctx - self._used() >= cells

    def _release(self, lane: Lane) -> None:
        with self._cond:
            lane.busy = False
            lane.used_at = self._clock()

    def _drop(self, gen: Generation) -> None:
        self._running.remove(gen)
        self._release(gen.lane)

    def _step(self) -> None:
        """One decode step over every sequence that can take part."""
        for gen in [g for g in self._running if g.job.handoff.cancelled.is_set()]:
            gen.cancel()
            self._drop(gen)
        batch = self._batch
        batch.clear()
        ready = [g for g in self._running if g.job.handoff.ready()]
        stepped: list[Generation] = []
        decoding = self._decoding(ready)
        # A prompt alone goes in whole batches: sized steps made a real agent's cold 6k-token
        # prompt on the 1.5B outlast Codex's 300 s stream timeout (the CI run of 50bc9a9).
        budget = self._budget(1) if decoding or self._queue else batch.capacity
        for i, gen in enumerate(decoding):
            free = self._model.n_ctx - self._used()
            if free < 1 and not self._make_room(1):
                if not gen.full():  # no cell left for its next token: it ends as at a limit
                    self._drop(gen)
                continue
            share = max(1, budget // (len(decoding) - i))  # drafts never crowd others out
            if batch.room < 1:
                break
            taken = gen.add_to(batch, min(share, free, batch.room))
            budget -= taken
            stepped.append(gen)
        # An editor's prompt first, then the shortest left: a chat's prompt is done in a step
        # and streams while an agent's 6k-token one goes on, instead of waiting for all of it.
        prompts = sorted((g for g in ready if g.prefilling),
                         key=lambda g: (g.job.priority, g.pending_prompt, g.job.submitted))
        editor = any(g.job.control.interactive for g in ready)
        blocked: list[Generation] = []
        for gen in prompts:
            if min(budget, batch.room) < 1:
                break
            if editor and not gen.job.control.interactive:  # a trickle, never a stop: an
                budget = min(budget, MIN_CHUNK)  # editor typing all day starves no agent
            if self._model.n_ctx - self._used() < 1 and not self._make_room(
                    min(budget, gen.pending_prompt)):
                blocked.append(gen)
                continue
            taken = gen.add_to(batch, min(budget, batch.room, self._model.n_ctx - self._used()))
            budget -= taken
            stepped.append(gen)
        self._batch_tokens = batch.size
        self._observe(stepped, batch.size)
        if batch.size == 0:
            for gen in blocked[-1:]:  # prompts alone fill the cache: the newest gives way
                self._fail(gen, "the context is full: other requests hold its cells")
            return
        began = time.perf_counter()
        code = llama_cpp.llama_decode(self._ctx, batch.raw)
        if code != 0:
            self._failed(stepped, code)
            return
        if any(g.prefilling for g in stepped):
            took = (time.perf_counter() - began) / batch.size
            self._token_seconds = 0.7 * self._token_seconds + 0.3 * took
        for gen in stepped:
            if gen.store_at and len(gen.lane.tokens) == gen.store_at:
                self._store(gen)
            try:
                going = gen.after_decode()
            except Exception as exc:
                self._fail(gen, type(exc).__name__)
                continue
            if not going:
                self._drop(gen)

    def _decoding(self, ready: list[Generation]) -> list[Generation]:
        """The generations past their prompts that take part in this step: all of them, or,
        while an editor's completion is among them, the others every other step."""
        decoding = [g for g in ready if not g.prefilling]
        if not any(g.job.control.interactive for g in decoding):
            self._others_wait = False
            return decoding
        self._others_wait = not self._others_wait
        if self._others_wait:
            return [g for g in decoding if g.job.control.interactive]
        return decoding

    def _budget(self, steps: int) -> int:
        """Tokens a step may take: about `steps` times `step_ms` of them at the last measured
        cost per token (which includes the step's fixed cost, so the chunk settles where a
        step takes that long), at least 16, at most the batch."""
        fit = int(steps * self._step_seconds / max(self._token_seconds, 1e-6))
        return max(1, min(self._batch.capacity, max(MIN_CHUNK, fit)))

    def _observe(self, stepped: list[Generation], tokens: int) -> None:
        name, m = self._model.name, self._metrics
        m.sequences_in_use.labels(name).set(sum(lane.busy for lane in self._lanes))
        m.prompt_tokens_pending.labels(name).set(sum(g.pending_prompt for g in self._running))
        if tokens:
            m.batch_tokens.labels(name).observe(tokens)
            m.batch_sequences.labels(name).observe(len(stepped))

    def _failed(self, stepped: list[Generation], code: int) -> None:
        log.error("decode_failed", model=self._model.name, code=code,
                  sequences=len(stepped))
        for gen in stepped:
            self._fail(gen, "RuntimeError")

    def _fail(self, gen: Generation, error: str) -> None:
        """End `gen` with `Failed`; its sequence is cleared (its KV may be half-written)."""
        log.error("generation_failed", model=self._model.name, error=error)
        gen.fail()
        gen.lane.truncate(self._ctx, 0)
        gen.job.handoff.put(Failed(f"generation failed: {error}"))
        self._drop(gen)

    def _shut_down(self) -> None:
        for gen in list(self._running):
            gen.fail()
            gen.job.handoff.put(Failed("the server is shutting down"))
        self._running.clear()
        with self._cond:
            for _, _, job in self._queue:
                job.handoff.put(Failed("the server is shutting down"))
            self._queue.clear()


def choose(idle: list[Lane], prompt: list[int], cache_prompt: bool) -> tuple[Lane, int]:
    """The idle sequence a prompt takes, and the tokens of it kept: the one sharing the
    longest prefix if that is at least half the prompt, else the least recently used (an
    empty one first), so one prompt does not take another's cache for a few shared words."""
    def shared(lane: Lane) -> int:
        return min(common_prefix(lane.tokens, prompt), len(prompt) - 1) if cache_prompt else 0

    keep, lane = max(((shared(lane), lane) for lane in idle),
                     key=lambda pair: (pair[0], -pair[1].used_at))
    if cache_prompt and 2 * keep >= len(prompt) and keep > 0:
        return lane, keep
    lane = min(idle, key=lambda lane: (bool(lane.tokens), lane.used_at))
    return lane, shared(lane)


class _Gone(Exception):
    """The client left before its job started."""
