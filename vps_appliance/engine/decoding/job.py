"""A generation as the decode loop receives it (`Job`: tokens, sampling, controls) and what it
streams back (`Piece`, `Done`, `Failed`) through a `Handoff` to the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cerebrum.generation.events import Usage

from .. import logprobs
from ..params import GenerationParams
from ..prompt_cache import Snapshot
from ..sampling import SamplerSpec
from ..speculative import DraftConfig


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
    prompt_seconds: float = 0.0  # the start of its turn to the first sampled token
    predict_seconds: float = 0.0  # first to last sampled token
    tokens_cached: int = 0  # tokens its sequence holds afterwards
    drafted: int = 0  # speculative decoding: tokens drafted, and how many were accepted
    accepted: int = 0
    index: int = 0  # the choice (of `Control.n`) that ended
    queued_seconds: float = 0.0  # waiting for a sequence and room in the KV cache


@dataclass(frozen=True)
class Control:
    """Generation controls beyond the sampling parameters: the sampler chain's order and
    extras, stop tokens, llama-server's limits (FIM), speculative drafting, priority."""

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
    interactive: bool = False  # an editor's completion: admitted and evaluated first
    prefix: int = 0  # tokens of the request's stable prefix (system prompt, tools): on disk


@dataclass(frozen=True)
class Failed:
    """llama.cpp failed mid-generation."""

    message: str


Event = Piece | Done | Failed


class Handoff:
    """Events from the decode loop's thread to the event loop, never blocking the loop's
    thread: `put` always queues (until the consumer has gone), and `ready` says whether the
    consumer has room for more, so a sequence whose client reads slowly sits out decode
    steps instead of holding up the others. `wake` is called when room frees or the consumer
    leaves."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int,
                 wake: Callable[[], None] = lambda: None):
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._size = size
        self._held = 0  # events put and not yet taken
        self._lock = threading.Lock()
        self._wake = wake
        self.cancelled = threading.Event()

    def put(self, event: Event) -> bool:
        """Decode loop: queue an event; False once the consumer has gone."""
        if self.cancelled.is_set():
            return False
        with self._lock:
            self._held += 1
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancelled.set()
            return False
        return True

    def ready(self) -> bool:
        """Decode loop: whether the consumer has room for another step's events."""
        with self._lock:
            return self._held < self._size

    async def get(self) -> Event:
        """Event loop: the next event."""
        event = await self._queue.get()
        with self._lock:
            self._held -= 1
            freed = self._held == self._size - 1
        if freed:
            self._wake()
        return event

    def cancel(self) -> None:
        """Event loop: the consumer has gone; the decode loop drops the sequence."""
        if not self.cancelled.is_set():
            self.cancelled.set()
            self._wake()


@dataclass
class Job:
    """One request for the decode loop: its prompt, sampling, length, stops and controls, and
    where its events go."""

    tokens: list[int]
    params: GenerationParams
    max_tokens: int
    stops: tuple[str, ...]
    control: Control
    handoff: Handoff
    submitted: float = 0.0
    stored: Snapshot | None = None  # a stable prefix read from disk for it, to load first

    @property
    def priority(self) -> int:
        """0 for an editor's completion, 1 for the rest (lower runs first)."""
        return 0 if self.control.interactive else 1
