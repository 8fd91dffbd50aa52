"""A completion's engine events as OpenAI's chunks or body (pure): every choice of `n`, its
logprobs in the endpoint's shape, and the usage of all choices together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cerebrum.openai import Envelope, Usage

from . import logprobs
from .engine import Done, Piece


@dataclass
class _Choice:
    parts: list[str] = field(default_factory=list)
    logprobs: list[logprobs.Logprob] = field(default_factory=list)
    chars: int = 0  # text so far (the legacy text_offset)
    started: bool = False  # its first chunk (chat: with the role) went out
    done: Done | None = None


@dataclass
class Response:
    """Folds events into chunks (`piece`, `finish`) or, at the end, one body."""

    env: Envelope
    n: int = 1  # choices expected
    with_logprobs: bool = False
    prompt_chars: int = 0  # completions' text_offset counts from the prompt's start
    choices: dict[int, _Choice] = field(default_factory=dict)

    def _choice(self, index: int) -> _Choice:
        return self.choices.setdefault(index, _Choice())

    def _logprobs(self, entries: tuple[logprobs.Logprob, ...] | list[logprobs.Logprob],
                  chars: int) -> dict[str, Any] | None:
        if not self.with_logprobs:
            return None
        if self.env.kind == "chat":
            return {"content": logprobs.chat_content(entries), "refusal": None}
        return logprobs.completion_logprobs(entries, self.prompt_chars + chars)

    def piece(self, piece: Piece) -> dict[str, Any]:
        """The chunk for one piece of text."""
        choice = self._choice(piece.index)
        chunk = self.env.chunk(piece.text, first=not choice.started, index=piece.index,
                               logprobs=self._logprobs(piece.logprobs, choice.chars))
        choice.started = True
        self._add(choice, piece)
        return chunk

    def _add(self, choice: _Choice, piece: Piece) -> None:
        choice.parts.append(piece.text)
        choice.logprobs.extend(piece.logprobs)
        choice.chars += len(piece.text)

    def finish(self, done: Done) -> list[dict[str, Any]]:
        """The chunks that close a choice (chat: its role first, if nothing was sent)."""
        choice = self._choice(done.index)
        choice.done = done
        out = []
        if not choice.started and self.env.kind == "chat":
            out.append(self.env.chunk("", first=True, index=done.index))
        choice.started = True
        out.append(self.env.chunk(None, finish_reason=done.finish_reason, index=done.index))
        return out

    def collect(self, event: Piece | Done) -> None:
        """Take an event of a non-streamed response."""
        if isinstance(event, Piece):
            self._add(self._choice(event.index), event)
        else:
            self._choice(event.index).done = event

    @property
    def complete(self) -> bool:
        """Whether every choice has ended."""
        return sum(c.done is not None for c in self.choices.values()) == self.n

    def usage(self) -> Usage:
        """All choices together: the prompt once, every choice's completion tokens."""
        dones = [c.done for c in self.choices.values() if c.done is not None]
        first = dones[0].usage
        return Usage(prompt_tokens=first.prompt_tokens,
                     completion_tokens=sum(d.usage.completion_tokens for d in dones),
                     cached_tokens=first.cached_tokens,
                     accepted_prediction_tokens=sum(d.usage.accepted_prediction_tokens
                                                    for d in dones),
                     rejected_prediction_tokens=sum(d.usage.rejected_prediction_tokens
                                                    for d in dones))

    def body(self) -> dict[str, Any]:
        """The whole response, choices in index order."""
        choices = []
        for index in sorted(self.choices):
            c = self.choices[index]
            assert c.done is not None
            choices.append(self.env.choice("".join(c.parts), c.done.finish_reason, index=index,
                                           logprobs=self._logprobs(c.logprobs, 0)))
        return self.env.body("", "", self.usage(), choices=choices)
