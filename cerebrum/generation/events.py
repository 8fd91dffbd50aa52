"""The events a generation yields, whatever wire format renders them (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reason = Literal["stop", "length", "tool_calls", "context_exceeded"]
StopType = Literal["eos", "word", "limit", "none"]


@dataclass(frozen=True)
class TokenLogprob:
    """One sampled token: its bytes and logprob, and the likeliest tokens at its place."""

    piece: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(frozen=True)
class Usage:
    """Token accounting: cached prompt tokens, and drafted tokens accepted and rejected."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


@dataclass(frozen=True)
class TextDelta:
    """Answer text of choice `choice`, with its tokens' logprobs when asked for."""

    text: str
    choice: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallStart:
    """The answer calls a tool: call number `call` of the choice."""

    call: int
    id: str
    name: str
    choice: int = 0


@dataclass(frozen=True)
class ToolCallArguments:
    """A fragment of a call's arguments."""

    call: int
    fragment: str
    choice: int = 0


@dataclass(frozen=True)
class ToolCallEnd:
    """A call's arguments are complete."""

    call: int
    choice: int = 0


@dataclass(frozen=True)
class Timing:
    """How the generation went, as llama.cpp reports it."""

    prompt_seconds: float = 0.0
    predict_seconds: float = 0.0
    tokens_cached: int = 0  # tokens the context holds afterwards
    tokens_per_second: float | None = None
    stop_type: StopType = "none"
    stopping_word: str = ""  # the stop sequence that ended it (stop_type "word")
    queued_seconds: float | None = None  # waiting for the model's turn; None: not known


@dataclass(frozen=True)
class Finish:
    """A choice ended, why, and what it cost."""

    reason: Reason
    usage: Usage
    choice: int = 0
    timing: Timing = Timing()


@dataclass(frozen=True)
class Failure:
    """The generation failed after it started."""

    message: str
    code: str = "generation_failed"


@dataclass(frozen=True)
class KeepAlive:
    """Nothing yet: a long prompt is being evaluated."""


Event = TextDelta | ToolCallStart | ToolCallArguments | ToolCallEnd | Finish | Failure | KeepAlive
