"""The internal events of a generation as the Responses API's stream and body (pure).

`Render.stream(event)` gives the (event type, payload) pairs a tier writes as
`event: <type>` / `data: <json>` (`response.sse`): response.created and
response.in_progress first; the answer's text as a message item (output_item.added,
content_part.added, output_text.delta…, output_text.done, content_part.done,
output_item.done); each tool call as a function_call item (function_call_arguments.delta /
.done) or, for a free-form tool, a custom_tool_call item (custom_tool_call_input.delta /
.done) whose `input` is the call's string argument (`freeform.Input`); and one terminal event:
response.completed, response.incomplete (max_output_tokens reached) or response.failed
(`error.code` context_length_exceeded when the conversation did not fit, else the failure's
code). Every payload has `type` and `sequence_number` (0, 1, 2, …); item events
`output_index` and `item_id`; content events `content_index`, as the `openai` SDK's
`responses.stream()` helper needs them.

A non-streamed response takes the same events (`collect`) and gives the response object
(`body`). One answer per response: the Responses API has no `n`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cerebrum import logprobs as openai_logprobs
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
)

from .freeform import Input
from .response import Envelope

Pair = tuple[str, dict[str, Any]]
CONTEXT_EXCEEDED = "context_length_exceeded"


def logprobs(entries: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """Output text logprobs: token, logprob, bytes and top_logprobs per token."""
    return openai_logprobs.entries(entries)


@dataclass
class _Item:
    """An output item being streamed: its place, id and what it holds so far."""

    index: int
    id: str
    kind: str  # message, function_call or custom_tool_call
    text: list[str] = field(default_factory=list)  # message text, or call arguments
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    input: Input | None = None  # a free-form call's input, decoded from its arguments

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": "".join(self.text), "annotations": [],
                "logprobs": list(self.logprobs)}

    def snapshot(self, status: str) -> dict[str, Any]:
        """The item as output_item.added (in_progress) or .done shows it."""
        base = {"id": self.id, "type": self.kind, "status": status}
        if self.kind == "message":
            content = [] if status == "in_progress" else [self.part()]
            return {**base, "role": "assistant", "content": content}
        if self.input is not None:
            return {**base, "call_id": self.call_id, "name": self.name,
                    "input": "" if status == "in_progress" else self.input.text}
        return {**base, "call_id": self.call_id, "name": self.name,
                "arguments": "" if status == "in_progress" else "".join(self.text)}


@dataclass
class Render:
    """Events in; (type, payload) pairs out (`stream`), or one response object (`body`)."""

    env: Envelope
    sequence: int = 0
    started: bool = False
    items: int = 0  # output items opened so far
    done: dict[int, dict[str, Any]] = field(default_factory=dict)  # output index → item
    message: _Item | None = None  # the message item open now
    calls: dict[int, _Item] = field(default_factory=dict)  # call number → open item
    final: dict[str, Any] | None = None  # the response object, once the stream ended

    def _pair(self, kind: str, /, **payload: Any) -> Pair:
        out = (kind, {"type": kind, "sequence_number": self.sequence, **payload})
        self.sequence += 1
        return out

    def start(self) -> list[Pair]:
        """response.created and response.in_progress (once): a tier may send them before the
        first event, while the prompt is evaluated."""
        if self.started:
            return []
        self.started = True
        response = self.env.response("in_progress", [])
        return [self._pair("response.created", response=response),
                self._pair("response.in_progress", response=response)]

    @property
    def output(self) -> list[dict[str, Any]]:
        """The output items done, in their order."""
        return [self.done[i] for i in sorted(self.done)]

    def _open(self, kind: str, prefix: str, **fields: Any) -> tuple[_Item, Pair]:
        index, self.items = self.items, self.items + 1
        item = _Item(index, self.env.item_id(prefix, index), kind, **fields)
        return item, self._pair("response.output_item.added", output_index=index,
                                item=item.snapshot("in_progress"))

    def _item_done(self, item: _Item, status: str) -> Pair:
        snapshot = item.snapshot(status)
        self.done[item.index] = snapshot
        return self._pair("response.output_item.done", output_index=item.index, item=snapshot)

    def _close_message(self, status: str = "completed") -> list[Pair]:
        item = self.message
        if item is None:
            return []
        self.message = None
        ids = dict(item_id=item.id, output_index=item.index, content_index=0)
        return [self._pair("response.output_text.done", **ids, text="".join(item.text),
                           logprobs=list(item.logprobs)),
                self._pair("response.content_part.done", **ids, part=item.part()),
                self._item_done(item, status)]

    def _text(self, event: TextDelta) -> list[Pair]:
        if not event.text and not event.logprobs:
            return []
        out: list[Pair] = []
        if self.message is None:
            self.message, added = self._open("message", "msg")
            out += [added, self._pair("response.content_part.added", item_id=self.message.id,
                                      output_index=self.message.index, content_index=0,
                                      part=self.message.part())]
        item = self.message
        item.text.append(event.text)
        entries = logprobs(event.logprobs)
        item.logprobs.extend(entries)
        out.append(self._pair("response.output_text.delta", item_id=item.id,
                              output_index=item.index, content_index=0, delta=event.text,
                              logprobs=entries))
        return out

    def _call_start(self, event: ToolCallStart) -> list[Pair]:
        out = self._close_message()
        free = event.name in self.env.freeform
        kind, prefix = ("custom_tool_call", "ctc") if free else ("function_call", "fc")
        call_id = event.id or f"call_{self.env.request_id}_{self.items}"
        item, added = self._open(kind, prefix, call_id=call_id, name=event.name,
                                 input=Input() if free else None)
        self.calls[event.call] = item
        return [*out, added]

    def _arguments(self, item: _Item, fragment: str) -> list[Pair]:
        item.text.append(fragment)
        ids = dict(item_id=item.id, output_index=item.index)
        if item.input is None:
            return [self._pair("response.function_call_arguments.delta", **ids, delta=fragment)]
        delta = item.input.feed(fragment)
        return [self._pair("response.custom_tool_call_input.delta", **ids, delta=delta)
                ] if delta else []

    def _call_end(self, call: int, status: str = "completed") -> list[Pair]:
        item = self.calls.pop(call, None)
        if item is None:
            return []
        ids = dict(item_id=item.id, output_index=item.index)
        if item.input is None:
            done = self._pair("response.function_call_arguments.done", **ids, name=item.name,
                              arguments="".join(item.text))
            return [done, self._item_done(item, status)]
        out = []
        delta = item.input.finish()
        if delta:
            out.append(self._pair("response.custom_tool_call_input.delta", **ids, delta=delta))
        out.append(self._pair("response.custom_tool_call_input.done", **ids,
                              input=item.input.text))
        return [*out, self._item_done(item, status)]

    def _close_all(self, status: str) -> list[Pair]:
        out = self._close_message(status)
        for call in sorted(self.calls, key=lambda c: self.calls[c].index):
            out += self._call_end(call, status)
        return out

    def _end(self, event: Finish | Failure) -> list[Pair]:
        if isinstance(event, Failure):
            out = self._close_all("incomplete")
            error = {"code": event.code, "message": str(event.message)}
            self.final = self.env.response("failed", self.output, error=error)
            return [*out, self._pair("response.failed", response=self.final)]
        if event.reason == "context_exceeded":
            out = self._close_all("incomplete")
            error = {"code": CONTEXT_EXCEEDED, "message": "the conversation does not fit the "
                     "model's context window"}
            self.final = self.env.response("failed", self.output, usage=event.usage,
                                           error=error)
            return [*out, self._pair("response.failed", response=self.final)]
        if event.reason == "length":
            out = self._close_all("incomplete")
            self.final = self.env.response("incomplete", self.output, usage=event.usage,
                                           incomplete="max_output_tokens")
            return [*out, self._pair("response.incomplete", response=self.final)]
        out = self._close_all("completed")
        self.final = self.env.response("completed", self.output, usage=event.usage)
        return [*out, self._pair("response.completed", response=self.final)]

    def stream(self, event: Event) -> list[Pair]:
        """The pairs for one event (none after the terminal one)."""
        if self.final is not None:
            return []
        out = self.start()
        if isinstance(event, KeepAlive):
            return out  # a tier keeps the connection alive with an SSE comment of its own
        if isinstance(event, Finish | Failure):
            return out + self._end(event)
        if event.choice != 0:
            return out  # never asked for: the Responses API has no `n`
        if isinstance(event, TextDelta):
            return out + self._text(event)
        if isinstance(event, ToolCallStart):
            return out + self._call_start(event)
        if isinstance(event, ToolCallArguments):
            item = self.calls.get(event.call)
            return out + (self._arguments(item, event.fragment) if item else [])
        assert isinstance(event, ToolCallEnd)
        return out + self._call_end(event.call)

    def collect(self, event: Event) -> None:
        """Take an event of a non-streamed response."""
        self.stream(event)

    @property
    def failed(self) -> bool:
        """Whether the response ended in response.failed (a non-streamed one: a tier's
        error status)."""
        return self.final is not None and self.final["status"] == "failed"

    def body(self) -> dict[str, Any]:
        """The whole non-streamed response object, once the generation ended."""
        assert self.final is not None, "the generation has not ended"
        return self.final
