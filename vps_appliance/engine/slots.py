"""Model slots: lazy loading (with `parallel` sequences in one llama.cpp context), the
model's decode loop (`scheduler.py`), a bounded wait queue shed with 503 + Retry-After, and
each request's events handed from the loop's thread to the event loop.

A client that goes away leaves the decode loop at its next step; its sequence is free
again once the loop has let go of it, never before.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import structlog

from cerebrum.activation import Clock

from ..errors import ModelLoadError, Overloaded
from ..metrics import Metrics
from ..settings import ModelSpec
from . import prompt_cache
from .chat import ChatFormatter, make_formatter, renders_tools
from .decoding.job import Control, Done, Event, Failed, Handoff, Job
from .decoding.scheduler import Load, Scheduler
from .decoding.sequence import Model
from .disk_cache import DiskCache, Events
from .params import GenerationParams

log = structlog.get_logger("cerebrum.backend")


Loader = Callable[[ModelSpec, Path], llama_cpp.Llama]


def load_llama(spec: ModelSpec, path: Path) -> llama_cpp.Llama:
    """Load a GGUF with the spec's threads, batch (the same for prompt and decode) and
    sequences: `parallel` of them over one unified KV cache of `n_ctx` cells."""
    try:
        with _params("llama_model_default_params", use_extra_bufts=spec.weight_repack), \
                _params("llama_context_default_params", n_seq_max=spec.parallel,
                        kv_unified=True):
            return llama_cpp.Llama(
                model_path=str(path),
                n_ctx=spec.n_ctx,
                n_threads=spec.n_threads,
                n_threads_batch=spec.n_threads,
                n_batch=spec.n_batch,
                n_ubatch=spec.n_batch,
                flash_attn=spec.flash_attn,
                verbose=False,
            )
    except ValueError as exc:  # llama-cpp-python's way of saying the file would not load
        raise ModelLoadError(
            f"model {spec.name!r} failed to load from {path.name}: {exc}") from None


_LOAD_LOCK = threading.RLock()


@contextmanager
def _params(function: str, **fields: Any) -> Iterator[None]:
    """Set llama_model_params or llama_context_params fields llama-cpp-python's Llama takes
    no argument for.

    Llama.__init__ builds its params from `llama_cpp.<function>()`; for the duration of one
    load (serialised by a lock) that function returns them with `fields` set.
    """
    module = llama_cpp.llama_cpp
    with _LOAD_LOCK:
        original = getattr(module, function)

        def defaults() -> Any:
            params = original()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        setattr(module, function, defaults)
        try:
            yield
        finally:
            setattr(module, function, original)


@dataclass
class LoadedModel:
    """A resident model and what is derived from it once."""

    llm: llama_cpp.Llama
    formatter: ChatFormatter
    vocab: Any
    n_ctx: int
    cache: prompt_cache.PromptCache | None
    tools: bool = False  # its chat template renders tools
    disk: DiskCache | None = None  # stable prefixes kept on disk across restarts


class ModelSlot:
    """One manifest model: loads it lazily, runs its decode loop, bounds its queue."""

    def __init__(self, spec: ModelSpec, *, path_of: Callable[[ModelSpec], Path], loader: Loader,
                 max_queue: int, token_buffer: int, metrics: Metrics, clock: Clock,
                 prefix_dir: Path | None = None, fingerprint: str = ""):
        self.spec = spec
        self._prefix_dir = prefix_dir  # the disk cache's directory (None: no disk cache)
        self._fingerprint = fingerprint
        self._path_of = path_of
        self._loader = loader
        self._max_queue = max_queue
        self._token_buffer = token_buffer
        self._metrics = metrics
        self._clock = clock
        self._load_lock = asyncio.Lock()
        self._model: LoadedModel | None = None
        self._scheduler: Scheduler | None = None
        self._verify_limit: int | None = None  # measured on the first "exact" drafting
        self._outstanding = 0  # requests submitted and not finished
        self._avg_seconds = 5.0

    @property
    def loaded(self) -> bool:
        """Whether the model is resident."""
        return self._model is not None

    @property
    def sequences(self) -> int:
        """Generations the model runs at once."""
        return self.spec.parallel

    @property
    def busy(self) -> bool:
        """Whether every sequence holds a generation."""
        return self._outstanding >= self.spec.parallel

    @property
    def waiting(self) -> int:
        """Requests waiting for a sequence."""
        if self._scheduler is not None:
            return self._scheduler.load().queued
        return max(0, self._outstanding - self.spec.parallel)

    def load(self) -> Load | None:
        """The decode loop's load (None before the model is loaded)."""
        return self._scheduler.load() if self._scheduler is not None else None

    def check_capacity(self) -> None:
        """Shed at once when the wait queue is full: 503 with a Retry-After estimate."""
        waiting = self._outstanding - self.spec.parallel
        if waiting >= self._max_queue:
            per_turn = self._avg_seconds / self.spec.parallel
            retry = max(1, min(60, math.ceil(per_turn * (waiting + 1))))
            raise Overloaded(f"model {self.spec.name!r} is busy and its queue is full "
                             f"({self._max_queue} waiting); retry in {retry} s",
                             retry_after=retry)

    async def model(self) -> LoadedModel:
        """The resident model, loading it on first use (in a worker thread)."""
        if self._model is not None:
            return self._model
        async with self._load_lock:
            if self._model is None:
                model = await asyncio.to_thread(self._load)
                self._scheduler = Scheduler(
                    Model(model.llm, model.vocab, model.n_ctx, self.spec.name),
                    parallel=self.spec.parallel, step_ms=self.spec.step_ms,
                    n_batch=self.spec.n_batch, cache=model.cache, disk=model.disk,
                    metrics=self._metrics,
                    clock=self._clock, verify_limit=lambda: self._verify_limit,
                    set_verify_limit=self._measured, draft_max=self.spec.draft_max)
                self._model = model
        return self._model

    def _load(self) -> LoadedModel:
        started = self._clock()
        path = self._path_of(self.spec)
        llm = self._loader(self.spec, path)
        self._metrics.model_loaded.labels(self.spec.name).set(1)
        self._metrics.load_seconds.labels(self.spec.name).set(self._clock() - started)
        log.info("model_loaded", model=self.spec.name, seconds=round(self._clock() - started, 3),
                 sequences=self.spec.parallel)
        cache = (prompt_cache.PromptCache(self.spec.prompt_cache_bytes)
                 if self.spec.prompt_cache_bytes > 0 else None)
        return LoadedModel(llm=llm, formatter=make_formatter(llm, self.spec.chat_format),
                           vocab=llama_cpp.llama_model_get_vocab(llm.model),
                           n_ctx=llm.n_ctx(), cache=cache,
                           tools=renders_tools(llm, self.spec.chat_format),
                           disk=self._open_disk())

    def _open_disk(self) -> DiskCache | None:
        """The model's prefix cache on disk, its stored prefixes read (None when off, or
        when its directory cannot be used: the backend then runs without it)."""
        spec, m = self.spec, self._metrics
        if self._prefix_dir is None or spec.prefix_cache_disk_bytes <= 0:
            return None
        name = spec.name
        disk = DiskCache(self._prefix_dir, self._fingerprint, spec.prefix_cache_disk_bytes,
                         spec.prefix_cache_min_tokens, name=name, events=Events(
                             stored=m.prefix_stores.labels(name).inc,
                             rejected=m.prefix_rejected.labels(name).inc,
                             size=m.prefix_bytes.labels(name).set,
                             loaded=m.prefix_load_seconds.labels(name).observe))
        try:
            disk.open()
        except OSError as exc:
            log.warning("prefix_cache_unavailable", model=name, error=type(exc).__name__)
            return None
        return disk

    def _measured(self, limit: int) -> None:
        self._verify_limit = limit
        self._metrics.draft_batch_limit.labels(self.spec.name).set(limit)
        log.info("speculative_batch_limit", model=self.spec.name, tokens=limit)

    async def generate(self, tokens: list[int], params: GenerationParams, max_tokens: int,
                       extra_stops: tuple[str, ...] = (),
                       control: Control | None = None) -> AsyncIterator[Event]:
        """Queue the generation (bounded), then stream its events from the decode loop."""
        self.check_capacity()
        await self.model()
        scheduler = self._scheduler
        assert scheduler is not None
        control = control or Control()
        handoff = Handoff(asyncio.get_running_loop(), self._token_buffer, scheduler.wake)
        started = self._clock()
        self._outstanding += 1
        try:
            stored = (await asyncio.to_thread(self._stored, tokens, control)
                      if control.prefix else None)  # only conversations have one
            scheduler.submit(Job(tokens, params, max_tokens, params.stop + extra_stops, control,
                                 handoff, submitted=started, stored=stored))
            while True:
                event = await handoff.get()
                yield event
                if isinstance(event, Failed) or (isinstance(event, Done)
                                                 and event.index == control.n - 1):
                    return
        finally:
            handoff.cancel()
            self._outstanding -= 1
            self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * (self._clock() - started)

    def _stored(self, tokens: list[int], control: Control) -> prompt_cache.Snapshot | None:
        """For a request with a stable prefix: the stored prefix sharing the most with its
        prompt, read when it holds more than memory does (in a worker thread: comparing
        20k-token prompts and reading hundreds of MB stay off the event loop)."""
        model, scheduler = self._model, self._scheduler
        disk = model.disk if model is not None else None
        if disk is None or scheduler is None or not control.cache_prompt \
                or control.prefix < disk.min_tokens:
            return None
        entry, shared = disk.best(tokens)
        warm = scheduler.warm(tokens)
        if entry is None or shared <= warm:
            if warm < control.prefix:
                self._metrics.prefix_misses.labels(self.spec.name).inc()
            return None
        snapshot = disk.load(entry)
        if snapshot is None:
            self._metrics.prefix_misses.labels(self.spec.name).inc()
        return snapshot

    def close(self) -> None:
        """Stop the decode loop and the disk cache's writer (called at shutdown)."""
        if self._scheduler is not None:
            self._scheduler.close()
        if self._model is not None and self._model.disk is not None:
            self._model.disk.close()
        with suppress(Exception):
            if self._model is not None:
                self._model.llm.close()
