"""A generation's pieces as the internal events every wire format renders (pure): text, the
tool calls parsed out of it when tools are offered, and each choice's finish."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebrum.generation.events import (
    Event,
    Failure,
    Finish,
    TextDelta,
    Timing,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
)

from . import tools
from .decoding.job import Done, Failed, Piece


@dataclass
class Answer:
    """Turns the engine's `Piece`, `Done` and `Failed` into events, choice by choice."""

    tooling: tools.Tooling = field(default_factory=tools.Tooling)
    with_logprobs: bool = False
    parsers: dict[int, tools.Parser] = field(default_factory=dict)

    def _parser(self, index: int) -> tools.Parser | None:
        if not self.tooling.active:
            return None
        if index not in self.parsers:
            self.parsers[index] = tools.Parser(self.tooling.parallel, self.tooling.names)
        return self.parsers[index]

    def events(self, event: Piece | Done | Failed) -> list[Event]:
        """The events one engine event comes to."""
        if isinstance(event, Failed):
            return [Failure(event.message)]
        if isinstance(event, Piece):
            return self._piece(event)
        return self._done(event)

    def _piece(self, piece: Piece) -> list[Event]:
        parser = self._parser(piece.index)
        if parser is None:
            return [TextDelta(piece.text, piece.index, piece.logprobs)]
        text, calls = parser.feed(piece.text)
        return self._parsed(parser, piece.index, text, calls, piece.logprobs)

    def _parsed(self, parser: tools.Parser, index: int, text: str,
                calls: list[tools.ToolCall], logprobs: tuple = ()) -> list[Event]:
        out: list[Event] = []
        if text or (self.with_logprobs and logprobs):
            out.append(TextDelta(text, index, logprobs))
        first = len(parser.calls) - len(calls)
        for i, call in enumerate(calls, start=first):
            out += [ToolCallStart(i, call.id, call.name, index),
                    ToolCallArguments(i, call.arguments, index), ToolCallEnd(i, index)]
        return out

    def _done(self, done: Done) -> list[Event]:
        out: list[Event] = []
        parser = self._parser(done.index)
        reason = done.finish_reason
        if parser is not None:
            held, calls = parser.flush()
            out += self._parsed(parser, done.index, held, calls)
            if parser.calls and reason == "stop":
                reason = "tool_calls"
        timing = Timing(prompt_seconds=done.prompt_seconds, predict_seconds=done.predict_seconds,
                        tokens_cached=done.tokens_cached,
                        tokens_per_second=done.decode_tokens_per_second,
                        stop_type=done.stop_type,  # type: ignore[arg-type]
                        stopping_word=done.stopping_word,
                        queued_seconds=done.queued_seconds if done.index == 0 else None)
        out.append(Finish(reason, done.usage, done.index, timing))  # type: ignore[arg-type]
        return out
