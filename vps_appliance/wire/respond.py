"""A completion's engine events as OpenAI's chunks or body (pure): every choice of `n`, its
logprobs in the endpoint's shape, its tool calls parsed out of the text (streamed as
`delta.tool_calls`), and the usage of all choices together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cerebrum.openai import Envelope, Usage

from ..engine import logprobs, tools
from ..engine.slots import Done, Piece


@dataclass
class _Choice:
    parts: list[str] = field(default_factory=list)
    logprobs: list[logprobs.Logprob] = field(default_factory=list)
    chars: int = 0  # text so far (the legacy text_offset)
    started: bool = False  # its first chunk (chat: with the role) went out
    done: Done | None = None
    parser: tools.Parser | None = None  # with tools: the answer's calls


@dataclass
class Response:
    """Folds events into chunks (`piece`, `finish`) or, at the end, one body."""

    env: Envelope
    n: int = 1  # choices expected
    with_logprobs: bool = False
    prompt_chars: int = 0  # completions' text_offset counts from the prompt's start
    tool_calls: bool = False  # parse the answers for tool calls
    parallel_tool_calls: bool = True
    tool_names: frozenset[str] = frozenset()
    choices: dict[int, _Choice] = field(default_factory=dict)

    def _choice(self, index: int) -> _Choice:
        if index not in self.choices:
            parser = tools.Parser(self.parallel_tool_calls, self.tool_names) \
                if self.tool_calls else None
            self.choices[index] = _Choice(parser=parser)
        return self.choices[index]

    def _logprobs(self, entries: tuple[logprobs.Logprob, ...] | list[logprobs.Logprob],
                  chars: int) -> dict[str, Any] | None:
        if not self.with_logprobs:
            return None
        if self.env.kind == "chat":
            return {"content": logprobs.chat_content(entries), "refusal": None}
        return logprobs.completion_logprobs(entries, self.prompt_chars + chars)

    def piece(self, piece: Piece) -> list[dict[str, Any]]:
        """The chunks for one piece of text: its content, and the tool calls it completes."""
        choice = self._choice(piece.index)
        lp = self._logprobs(piece.logprobs, choice.chars)
        self._add(choice, piece)
        if choice.parser is None:
            return [self._chunk(choice, piece.index, piece.text, lp)]
        text, calls = choice.parser.feed(piece.text)
        return self._parsed(choice, piece.index, text, calls, lp)

    def _chunk(self, choice: _Choice, index: int, text: str | None,
               lp: dict[str, Any] | None = None,
               calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        chunk = self.env.chunk(text, first=not choice.started, index=index, logprobs=lp,
                               tool_calls=calls)
        choice.started = True
        return chunk

    def _parsed(self, choice: _Choice, index: int, text: str, calls: list[tools.ToolCall],
                lp: dict[str, Any] | None) -> list[dict[str, Any]]:
        out = []
        if text or lp is not None:
            out.append(self._chunk(choice, index, text, lp))
        assert choice.parser is not None
        first = len(choice.parser.calls) - len(calls)
        for i, call in enumerate(calls, start=first):
            # Two fragments, as OpenAI streams them: the call with its name, then arguments.
            head = {"index": i, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            out.append(self._chunk(choice, index, None, calls=[head]))
            out.append(self._chunk(choice, index, None, calls=[
                {"index": i, "function": {"arguments": call.arguments}}]))
        return out

    def _add(self, choice: _Choice, piece: Piece) -> None:
        choice.parts.append(piece.text)
        choice.logprobs.extend(piece.logprobs)
        choice.chars += len(piece.text)

    def finish(self, done: Done) -> list[dict[str, Any]]:
        """The chunks that close a choice (chat: its role first, if nothing was sent)."""
        choice = self._choice(done.index)
        choice.done = done
        out = []
        if choice.parser is not None:
            held, calls = choice.parser.flush()
            out += self._parsed(choice, done.index, held, calls, None)
        if not choice.started and self.env.kind == "chat":
            out.append(self.env.chunk("", first=True, index=done.index))
        choice.started = True
        out.append(self.env.chunk(None, finish_reason=self._finish_reason(choice),
                                  index=done.index))
        return out

    @staticmethod
    def _finish_reason(choice: _Choice) -> str:
        assert choice.done is not None
        if choice.parser is not None and choice.parser.calls and \
                choice.done.finish_reason == "stop":
            return "tool_calls"
        return choice.done.finish_reason

    def collect(self, event: Piece | Done) -> None:
        """Take an event of a non-streamed response."""
        choice = self._choice(event.index)
        if isinstance(event, Piece):
            self._add(choice, event)
            if choice.parser is not None:
                choice.parser.feed(event.text)
        else:
            choice.done = event

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
            text: str | None = "".join(c.parts)
            calls = None
            if c.parser is not None:
                c.parser.flush()
                if c.parser.calls:
                    text = "".join(c.parser.content).strip() or None
                    calls = [call.as_dict() for call in c.parser.calls]
            choices.append(self.env.choice(text, self._finish_reason(c), index=index,
                                           logprobs=self._logprobs(c.logprobs, 0),
                                           tool_calls=calls))
        return self.env.body("", "", self.usage(), choices=choices)

