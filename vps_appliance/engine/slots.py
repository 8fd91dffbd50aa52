"""Model slots: lazy loading, one generation at a time per model, a bounded wait queue,
and a worker thread that hands tokens to the event loop through a bounded buffer.

Every sampled token checks for cancellation, so a client that goes away frees the model
within one token; the slot's gate is released only when the worker thread has let go of
the model, never before.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import dataclasses
import functools
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import structlog

from cerebrum.activation import Clock
from cerebrum.generation.events import Usage

from ..errors import ModelLoadError, Overloaded
from ..metrics import Metrics
from ..settings import ModelSpec
from . import logprobs, prompt_cache, tools
from .chat import ChatFormatter, make_formatter, renders_tools
from .decode import decode, invariant_batch
from .fim import IndentGuard
from .params import GenerationParams
from .sampling import SamplerSpec, build_chain
from .speculative import DraftConfig, Drafter
from .stops import StopScanner

log = structlog.get_logger("cerebrum.backend")


class MeteredLlama(llama_cpp.Llama):
    """A Llama that counts the tokens it evaluates, to prove prompt-cache reuse."""

    tokens_evaluated = 0

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate `tokens`, counting them."""
        self.tokens_evaluated += len(tokens)
        super().eval(tokens)


Loader = Callable[[ModelSpec, Path], llama_cpp.Llama]


def load_llama(spec: ModelSpec, path: Path) -> llama_cpp.Llama:
    """Load a GGUF with the spec's threads and batch (the same for prompt and decode)."""
    try:
        with _model_params(use_extra_bufts=spec.weight_repack):
            return MeteredLlama(
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


_LOAD_LOCK = threading.Lock()


@contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Set llama_model_params fields llama-cpp-python's Llama takes no argument for.

    Llama.__init__ builds its params from `llama_cpp.llama_model_default_params()`; for the
    duration of one load (serialised by a lock) that function returns them with `fields` set.
    """
    module = llama_cpp.llama_cpp
    with _LOAD_LOCK:
        original = module.llama_model_default_params

        def defaults() -> Any:
            params = original()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        module.llama_model_default_params = defaults
        try:
            yield
        finally:
            module.llama_model_default_params = original


@dataclass(frozen=True)
class Piece:
    """Text decoded from one or more tokens, of choice `index`, with their logprobs when
    asked for."""

    text: str
    index: int = 0
    logprobs: tuple[logprobs.Logprob, ...] = ()


@dataclass(frozen=True)
class Done:
    """The generation ended; what it cost."""

    finish_reason: str
    usage: Usage
    decode_tokens_per_second: float | None
    stop_type: str = "none"  # llama-server's: eos, word, limit, none
    stopping_word: str = ""  # the stop sequence hit (stop_type "word")
    prompt_seconds: float = 0.0  # start of the worker's turn to the first sampled token
    predict_seconds: float = 0.0  # first to last sampled token
    tokens_cached: int = 0  # tokens the context holds afterwards
    drafted: int = 0  # speculative decoding: tokens drafted, and how many were accepted
    accepted: int = 0
    index: int = 0  # the choice (of `Control.n`) that ended


@dataclass(frozen=True)
class Control:
    """Generation controls beyond the sampling parameters: the sampler chain's order and
    extras, stop tokens, llama-server's limits (FIM), speculative drafting."""

    samplers: SamplerSpec = field(default_factory=SamplerSpec)
    stop_tokens: frozenset[int] = frozenset()
    t_max_predict_ms: int = 0  # once past, stop at the next newline
    n_indent: int = 0
    cache_prompt: bool = True  # False: evaluate the whole prompt, as llama-server does
    drafting: DraftConfig = field(default_factory=lambda: DraftConfig(enabled=False))
    prediction: tuple[int, ...] = ()  # tokens the answer is expected to repeat
    top_logprobs: int | None = None  # None: no logprobs; else alternatives per token
    n: int = 1  # choices, generated one after another on the evaluated prompt
    repeated_calls_end: bool = False  # tools offered: an answer writing a call again ends


@dataclass(frozen=True)
class Failed:
    """llama.cpp failed mid-generation."""

    message: str


Event = Piece | Done | Failed


class Handoff:
    """Bounded hand-off of events from a worker thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int):
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._space = threading.Semaphore(size)
        self.cancelled = threading.Event()

    def put(self, event: Event) -> bool:
        """Worker side: block while the buffer is full; False once the consumer has gone."""
        self._space.acquire()
        if self.cancelled.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancelled.set()
            return False
        return True

    async def get(self) -> Event:
        """Loop side: the next event."""
        event = await self._queue.get()
        self._space.release()
        return event

    def cancel(self) -> None:
        """Loop side: stop the producer at its next token."""
        if not self.cancelled.is_set():
            self.cancelled.set()
            self._space.release()


@dataclass
class LoadedModel:
    """A resident model and what is derived from it once."""

    llm: llama_cpp.Llama
    formatter: ChatFormatter
    vocab: Any
    n_ctx: int
    cache: prompt_cache.PromptCache | None
    tools: bool = False  # its chat template renders tools


class ModelSlot:
    """One manifest model: loads it lazily, serialises its generations, bounds its queue."""

    def __init__(self, spec: ModelSpec, *, path_of: Callable[[ModelSpec], Path], loader: Loader,
                 max_queue: int, token_buffer: int, metrics: Metrics, clock: Clock):
        self.spec = spec
        self._path_of = path_of
        self._loader = loader
        self._max_queue = max_queue
        self._token_buffer = token_buffer
        self._metrics = metrics
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{spec.name}")
        self._load_lock = asyncio.Lock()
        self._gate = asyncio.Semaphore(1)
        self._model: LoadedModel | None = None
        self._verify_limit: int | None = None  # measured on the first drafting generation
        self.waiting = 0
        self._avg_seconds = 5.0

    @property
    def loaded(self) -> bool:
        """Whether the model is resident."""
        return self._model is not None

    @property
    def busy(self) -> bool:
        """Whether a generation holds the model."""
        return self._gate.locked()

    def check_capacity(self) -> None:
        """Shed at once when the wait queue is full: 503 with a Retry-After estimate."""
        if self.busy and self.waiting >= self._max_queue:
            retry = max(1, min(60, math.ceil(self._avg_seconds * (self.waiting + 1))))
            raise Overloaded(f"model {self.spec.name!r} is busy and its queue is full "
                             f"({self._max_queue} waiting); retry in {retry} s",
                             retry_after=retry)

    async def model(self) -> LoadedModel:
        """The resident model, loading it on first use (in the slot's thread)."""
        if self._model is not None:
            return self._model
        async with self._load_lock:
            if self._model is None:
                loop = asyncio.get_running_loop()
                self._model = await loop.run_in_executor(self._executor, self._load)
        return self._model

    def _load(self) -> LoadedModel:
        started = self._clock()
        path = self._path_of(self.spec)
        llm = self._loader(self.spec, path)
        self._metrics.model_loaded.labels(self.spec.name).set(1)
        self._metrics.load_seconds.labels(self.spec.name).set(self._clock() - started)
        log.info("model_loaded", model=self.spec.name, seconds=round(self._clock() - started, 3))
        cache = (prompt_cache.PromptCache(self.spec.prompt_cache_bytes)
                 if self.spec.prompt_cache_bytes > 0 else None)
        return LoadedModel(llm=llm, formatter=make_formatter(llm, self.spec.chat_format),
                           vocab=llama_cpp.llama_model_get_vocab(llm.model),
                           n_ctx=llm.n_ctx(), cache=cache,
                           tools=renders_tools(llm, self.spec.chat_format))

    async def generate(self, tokens: list[int], params: GenerationParams, max_tokens: int,
                       extra_stops: tuple[str, ...] = (),
                       control: Control | None = None) -> AsyncIterator[Event]:
        """Wait for the model (bounded), then stream events from its worker thread."""
        self.check_capacity()
        model = await self.model()
        name = self.spec.name
        self.waiting += 1
        self._metrics.queue_depth.labels(name).inc()
        try:
            await self._gate.acquire()
        finally:
            self.waiting -= 1
            self._metrics.queue_depth.labels(name).dec()
        loop = asyncio.get_running_loop()
        handoff = Handoff(loop, self._token_buffer)
        try:
            future = loop.run_in_executor(self._executor, self._run, model, tokens, params,
                                          max_tokens, params.stop + extra_stops, handoff,
                                          control)
        except BaseException:
            self._gate.release()
            raise
        future.add_done_callback(self._finished)
        choices = (control or Control()).n
        try:
            while True:
                event = await handoff.get()
                yield event
                if isinstance(event, Failed) or (isinstance(event, Done)
                                                 and event.index == choices - 1):
                    return
        finally:
            handoff.cancel()

    def _finished(self, future: asyncio.Future[None]) -> None:
        self._gate.release()
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("worker_crashed", model=self.spec.name, error=type(exc).__name__)

    def _run(self, model: LoadedModel, tokens: list[int], params: GenerationParams,
             max_tokens: int, stops: tuple[str, ...], handoff: Handoff,
             control: Control | None = None) -> None:
        """Worker thread: generate each choice (choice i seeded with seed + i); whatever
        happens, the consumer gets a terminal event."""
        control = control or Control()
        try:
            for index in range(control.n):
                seed = None if params.seed is None else (params.seed + index) % 2**32
                if not self._generate(model, tokens, dataclasses.replace(params, seed=seed),
                                      max_tokens, stops, handoff, control, index):
                    return
        except Exception as exc:  # llama.cpp failure: report it, leave a clean context
            model.llm.reset()
            log.error("generation_failed", model=self.spec.name, error=type(exc).__name__)
            handoff.put(Failed(f"generation failed: {type(exc).__name__}"))

    def _generate(self, model: LoadedModel, tokens: list[int], params: GenerationParams,
                  max_tokens: int, stops: tuple[str, ...], handoff: Handoff,
                  control: Control | None = None, index: int = 0) -> bool:
        """One choice; False when the consumer went away."""
        llm, name = model.llm, self.spec.name
        started = self._clock()
        control = self._exact_drafting(llm, control or Control())
        if not control.cache_prompt:
            llm.reset()
        elif model.cache is not None:
            snap, shared = model.cache.best(tokens)
            live = prompt_cache.common_prefix(llm.input_ids[: llm.n_tokens], tokens)
            if snap is not None and shared > live:
                prompt_cache.restore(llm, snap, tokens)
        evaluated_before = getattr(llm, "tokens_evaluated", 0)
        scanner = StopScanner(stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        piece_buf = ctypes.create_string_buffer(256)
        completion = 0
        evaluated = len(tokens)
        finish, stop_type = "length", "limit"
        first_at = last_at = None
        cancelled = False
        stop_tokens, indent = control.stop_tokens, IndentGuard(control.n_indent)
        repeats = tools.RepeatGuard() if control.repeated_calls_end else None
        chain = build_chain(model.vocab, llm.n_vocab(), control.samplers.for_context(model.n_ctx),
                            temperature=params.temperature, top_k=params.top_k,
                            top_p=params.top_p, min_p=params.min_p,
                            repeat_penalty=params.repeat_penalty, seed=params.seed)
        drafter = (Drafter(control.drafting, tokens, control.prediction)
                   if control.drafting.enabled else None)
        score = None
        if control.top_logprobs is not None:
            score = functools.partial(logprobs.at, llm.ctx, n_vocab=llm.n_vocab(),
                                      top_n=control.top_logprobs,
                                      piece=logprobs.speller(model.vocab))
        pending: list[logprobs.Logprob] = []
        stream = decode(llm, tokens, chain, drafter, max_new=max(max_tokens, 1), score=score)
        deadline = control.t_max_predict_ms / 1000 if control.t_max_predict_ms > 0 else None
        try:
            for token, scored in stream:
                if handoff.cancelled.is_set():
                    cancelled = True
                    break
                if first_at is None:
                    first_at = self._clock()
                    evaluated = getattr(llm, "tokens_evaluated", evaluated_before + len(tokens))
                    evaluated -= evaluated_before
                    self._metrics.prompt_tokens_evaluated.labels(name).inc(evaluated)
                    if max_tokens == 0:  # llama-server's n_predict 0: fill the cache only
                        break
                if llama_cpp.llama_vocab_is_eog(model.vocab, token) or token in stop_tokens:
                    finish, stop_type = "stop", "eos"
                    break
                completion += 1
                if scored is not None:
                    pending.append(scored)
                last_at = self._clock()
                self._metrics.completion_tokens.labels(name).inc()
                n = llama_cpp.llama_token_to_piece(model.vocab, token, piece_buf, 256, 0, False)
                text = indent.feed(scanner.feed(decoder.decode(piece_buf.raw[: max(n, 0)])))
                if text and not handoff.put(Piece(text, index, tuple(pending))):
                    cancelled = True
                    break
                if text:
                    pending.clear()
                if scanner.stopped:
                    finish, stop_type = "stop", "word"
                    break
                if repeats is not None and repeats.feed(text):
                    finish, stop_type = "stop", "none"
                    break
                if indent.stopped or (deadline is not None and "\n" in text
                                      and last_at - first_at > deadline):
                    finish = "stop"
                    break
                if completion >= max_tokens:
                    break
        finally:
            stream.close()
        if cancelled:
            self._metrics.cancelled.labels(name).inc()
            log.info("generation_cancelled", model=name, completion_tokens=completion)
            return False
        tail = indent.feed(scanner.flush() + decoder.decode(b"", final=True))
        if not indent.stopped:
            tail += indent.flush()
        if (tail or pending) and not handoff.put(Piece(tail, index, tuple(pending))):
            return False
        rate = None
        if first_at is not None and last_at is not None and completion > 1 and last_at > first_at:
            rate = (completion - 1) / (last_at - first_at)
            self._metrics.tokens_per_second.labels(name).observe(rate)
        stats = drafter.stats if drafter is not None else None
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=completion,
                      cached_tokens=len(tokens) - evaluated,
                      accepted_prediction_tokens=stats.accepted if stats else 0,
                      rejected_prediction_tokens=stats.rejected if stats else 0)
        if stats is not None:
            self._metrics.drafted_tokens.labels(name).inc(stats.drafted)
            self._metrics.accepted_tokens.labels(name).inc(stats.accepted)
        ended = self._clock()
        delivered = handoff.put(Done(finish, usage, rate, stop_type=stop_type,
                                     stopping_word=scanner.word,
                                     prompt_seconds=(first_at or ended) - started,
                                     predict_seconds=ended - (first_at or ended),
                                     tokens_cached=llm.n_tokens, index=index))
        self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * (self._clock() - started)
        if model.cache is not None and (snap := prompt_cache.snapshot(llm)) is not None:
            model.cache.put(snap)
        return delivered

    def _exact_drafting(self, llm: llama_cpp.Llama, control: Control) -> Control:
        """In "exact" mode, keep drafts within the batch size whose logits match one-token
        steps (measured once per model, in the worker thread); drafting is off where no batch
        does."""
        drafting = control.drafting
        if not (drafting.enabled and drafting.exact):
            return control
        if self._verify_limit is None:
            self._verify_limit = invariant_batch(llm, self.spec.draft_max + 1)
            self._metrics.draft_batch_limit.labels(self.spec.name).set(self._verify_limit)
            log.info("speculative_batch_limit", model=self.spec.name, tokens=self._verify_limit)
        draft_max = min(drafting.draft_max, self._verify_limit - 1)
        exact = dataclasses.replace(drafting, enabled=draft_max >= drafting.draft_min,
                                    draft_max=draft_max, align=1)
        return dataclasses.replace(control, drafting=exact)

    def close(self) -> None:
        """Stop the worker thread after its current task (called at shutdown)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with suppress(Exception):
            if self._model is not None:
                self._model.llm.close()
