"""The internal events of a generation as OpenAI's stream and body (pure): every choice of
`n`, text with its logprobs in the endpoint's shape, tool calls as `delta.tool_calls`
fragments, finish reasons, the usage of all choices together, and on the last chunk (or the
body) llama-server's `timings` with our `queue_ms`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cerebrum import logprobs, timings
from cerebrum.generation.events import (
    Event,
    Failure,
    Finish,
    KeepAlive,
    TextDelta,
    TokenLogprob,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

from .errors import error_body
from .response import Envelope

DONE = "[DONE]"


def chat_logprobs(entries: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """Chat's `logprobs.content`: token, logprob, bytes and top_logprobs per token."""
    return logprobs.entries(entries)


def completion_logprobs(entries: Sequence[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """The legacy completions' `logprobs`: tokens, token_logprobs, top_logprobs (a token →
    logprob map per position) and text_offset (characters from the start of the answer;
    `offset` is where these entries start)."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(logprobs.text(e.piece))
    return {"tokens": [logprobs.text(e.piece) for e in entries],
            "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [{logprobs.text(p): lp for p, lp in e.top} for e in entries],
            "text_offset": offsets}


def timings_of(finishes: Sequence[Finish]) -> dict[str, float | int]:
    """The request's `timings`: llama-server's object for all its choices together, and our
    `queue_ms` (how long it waited for the model's turn) when known."""
    first = min(finishes, key=lambda f: f.choice).timing
    out = timings.of(total([f.usage for f in finishes]), first,
                     sum(f.timing.predict_seconds for f in finishes))
    if first.queued_seconds is not None:
        out["queue_ms"] = round(first.queued_seconds * 1000, 1)
    return out


def total(usages: Sequence[Usage]) -> Usage:
    """All choices together: the prompt once, every choice's completion tokens."""
    first = usages[0]
    return Usage(prompt_tokens=first.prompt_tokens,
                 completion_tokens=sum(u.completion_tokens for u in usages),
                 cached_tokens=first.cached_tokens,
                 accepted_prediction_tokens=sum(u.accepted_prediction_tokens for u in usages),
                 rejected_prediction_tokens=sum(u.rejected_prediction_tokens for u in usages))


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    chars: int = 0  # text so far (the legacy text_offset)
    started: bool = False  # its first chunk (chat: with the role) went out
    calls: dict[int, list[str]] = field(default_factory=dict)  # call → [id, name, arguments]
    finish: Finish | None = None


@dataclass
class Render:
    """Events in; chunks out (`stream`), or, at the end, one body (`body`)."""

    env: Envelope
    n: int = 1  # choices expected
    with_logprobs: bool = False
    prompt_chars: int = 0  # completions' text_offset counts from the prompt's start
    include_usage: bool = False  # stream_options.include_usage
    choices: dict[int, _Choice] = field(default_factory=dict)

    def _choice(self, index: int) -> _Choice:
        return self.choices.setdefault(index, _Choice())

    def _logprobs(self, entries: Sequence[TokenLogprob], chars: int) -> dict[str, Any] | None:
        if not self.with_logprobs:
            return None
        if self.env.kind == "chat":
            return {"content": chat_logprobs(entries), "refusal": None}
        return completion_logprobs(entries, self.prompt_chars + chars)

    def _chunk(self, choice: _Choice, index: int, text: str | None,
               lp: dict[str, Any] | None = None, calls: list[dict[str, Any]] | None = None,
               finish_reason: str | None = None) -> dict[str, Any]:
        chunk = self.env.chunk(text, first=not choice.started, index=index, logprobs=lp,
                               tool_calls=calls, finish_reason=finish_reason)
        choice.started = True
        if self.include_usage:
            chunk["usage"] = None  # OpenAI's shape: null on every chunk but the last
        return chunk

    @property
    def complete(self) -> bool:
        """Whether every choice has finished."""
        return sum(c.finish is not None for c in self.choices.values()) == self.n

    def _finishes(self) -> list[Finish]:
        return [c.finish for c in self.choices.values() if c.finish is not None]

    def usage(self) -> Usage:
        """The usage of every choice together."""
        return total([f.usage for f in self._finishes()])

    def _take(self, event: Event) -> _Choice | None:
        """Fold an event into its choice's state (for the body, and the stream's offsets)."""
        if isinstance(event, Failure | KeepAlive):
            return None
        choice = self._choice(event.choice)
        if isinstance(event, TextDelta):
            choice.text.append(event.text)
            choice.logprobs.extend(event.logprobs)
        elif isinstance(event, ToolCallStart):
            choice.calls[event.call] = [event.id, event.name, ""]
        elif isinstance(event, ToolCallArguments):
            choice.calls[event.call][2] += event.fragment
        elif isinstance(event, Finish):
            choice.finish = event
        return choice

    def stream(self, event: Event) -> list[dict[str, Any] | str]:
        """The SSE payloads for one event (the last choice's finish adds the usage chunk and
        `[DONE]`; a failure, the error and `[DONE]`)."""
        if isinstance(event, KeepAlive):
            return []
        if isinstance(event, Failure):
            return [error_body(event.message, "server_error", event.code), DONE]
        chars = self.choices[event.choice].chars if event.choice in self.choices else 0
        choice = self._take(event)
        assert choice is not None
        index = event.choice
        if isinstance(event, TextDelta):
            choice.chars += len(event.text)
            return [self._chunk(choice, index, event.text,
                                self._logprobs(event.logprobs, chars))]
        if isinstance(event, ToolCallStart):
            # Two fragments, as OpenAI streams them: the call with its name, then arguments.
            return [self._chunk(choice, index, None, calls=[{
                "index": event.call, "id": event.id, "type": "function",
                "function": {"name": event.name, "arguments": ""}}])]
        if isinstance(event, ToolCallArguments):
            return [self._chunk(choice, index, None, calls=[
                {"index": event.call, "function": {"arguments": event.fragment}}])]
        if isinstance(event, ToolCallEnd):
            return []
        assert isinstance(event, Finish)
        out: list[dict[str, Any] | str] = []
        if not choice.started and self.env.kind == "chat":
            out.append(self._chunk(choice, index, ""))
        last = self._chunk(choice, index, None, finish_reason=event.reason)
        out.append(last)
        if self.complete:
            if self.include_usage:
                last = self.env.usage_chunk(self.usage())
                out.append(last)
            last["timings"] = timings_of(self._finishes())
            out.append(DONE)
        return out

    def collect(self, event: Event) -> None:
        """Take an event of a non-streamed response."""
        self._take(event)

    def body(self) -> dict[str, Any]:
        """The whole response, choices in index order."""
        choices = []
        for index in sorted(self.choices):
            c = self.choices[index]
            assert c.finish is not None
            text: str | None = "".join(c.text)
            calls = None
            if c.calls:
                text = (text or "").strip() or None
                calls = [{"id": i, "type": "function",
                          "function": {"name": name, "arguments": arguments}}
                         for i, name, arguments in (c.calls[k] for k in sorted(c.calls))]
            choices.append(self.env.choice(text, c.finish.reason, index=index,
                                           logprobs=self._logprobs(c.logprobs, 0),
                                           tool_calls=calls))
        return {**self.env.body("", "", self.usage(), choices=choices),
                "timings": timings_of(self._finishes())}
