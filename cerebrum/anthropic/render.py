"""The internal events of a generation as Anthropic's stream and body (pure).

A stream is `message_start` (the message, no content yet, the prompt's usage), then each
content block: `content_block_start`, its deltas (`text_delta`, or a tool_use block's
`input_json_delta` fragments), `content_block_stop`; then `message_delta` (stop_reason,
stop_sequence, the final usage) and `message_stop`. A `KeepAlive` is a `ping`. Each is
returned as (event name, payload): the tier writes `event: <name>\\ndata: <json>` (`frame`).

Anthropic's `message_start` carries the prompt's tokens before any text, while the internal
`Finish` brings the usage at the end: `Render` takes the prompt's token count (and the part of
it the server had cached) up front, as the tier knows them once it has tokenized the prompt;
`message_delta` carries the final usage. `input_tokens` counts the prompt tokens evaluated
for this request and `cache_read_input_tokens` those reused, so that their sum is the prompt,
as Claude Code adds them up; the server writes no separate cache, so
`cache_creation_input_tokens` is 0.

A generation that ran out of context ends with an `error` event saying "prompt is too long"
(never a `max_tokens` stop: the client asked for more and the answer is cut by the context,
which Claude Code answers by compacting); a `Failure`, with an `api_error` event. The SDK
raises on either. A stop sequence that ended the answer is named in `stop_sequence` (the
finish's `stopping_word`; from an upstream that does not say, the only one asked for, or
null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cerebrum.generation.events import (
    Event,
    Failure,
    Finish,
    KeepAlive,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from cerebrum.jsonwire import dumps

from .errors import error_body, prompt_too_long

StreamEvent = tuple[str, dict[str, Any]]
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def usage_dict(prompt_tokens: int, cached_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Anthropic's usage: the prompt split into tokens evaluated and tokens reused."""
    return {"input_tokens": max(prompt_tokens - cached_tokens, 0),
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cached_tokens,
            "cache_creation_input_tokens": 0}


def frame(name: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event as Anthropic writes them: its name, then compact JSON."""
    return f"event: {name}\ndata: {dumps(payload)}\n\n".encode()


def count_tokens_body(input_tokens: int) -> dict[str, Any]:
    """`/v1/messages/count_tokens`'s answer."""
    return {"input_tokens": input_tokens}


def tool_input(arguments: str) -> Any:
    """A call's arguments as the body's `input`: the JSON object the model wrote (its text as
    it is when it is not JSON, as a streaming client would have it)."""
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


@dataclass
class Render:
    """Events in; stream events out (`stream`), or, at the end, one body (`body`)."""

    message_id: str  # `msg_…`: carries the request id, so logs and clients can be matched
    model: str
    input_tokens: int  # the prompt's tokens
    cached_tokens: int = 0  # of which the server had evaluated before
    context: int | None = None  # the model's context, for "prompt is too long"
    stop_sequences: tuple[str, ...] = ()
    content: list[dict[str, Any]] = field(default_factory=list)  # the blocks so far
    arguments: dict[int, list[str]] = field(default_factory=dict)  # block → JSON fragments
    calls: dict[int, int] = field(default_factory=dict)  # call number → its block
    open: int | None = None  # the block streaming now
    started: bool = False
    finish: Finish | None = None
    error: tuple[int, dict[str, Any]] | None = None  # (HTTP status, body) of a failed answer

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None = None,
                 stop_sequence: str | None = None,
                 usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": self.message_id, "type": "message", "role": "assistant",
                "model": self.model, "content": content, "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": usage or usage_dict(self.input_tokens, self.cached_tokens, 0)}

    def start(self) -> list[StreamEvent]:
        """`message_start`, once (the tier may send it as soon as the prompt is counted)."""
        if self.started:
            return []
        self.started = True
        return [("message_start", {"type": "message_start", "message": self._message([])})]

    def _close(self) -> list[StreamEvent]:
        if self.open is None:
            return []
        index, self.open = self.open, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(self, block: dict[str, Any]) -> list[StreamEvent]:
        out = self._close()
        self.open = len(self.content)
        self.content.append(block)
        start = {"type": "content_block_start", "index": self.open, "content_block": {**block}}
        return [*out, ("content_block_start", start)]

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> StreamEvent:
        return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": delta})

    def _stop(self, finish: Finish) -> tuple[str, str | None]:
        if finish.reason == "stop" and finish.timing.stop_type == "word":
            one = self.stop_sequences[0] if len(self.stop_sequences) == 1 else None
            return "stop_sequence", finish.timing.stopping_word or one
        return STOP_REASONS.get(finish.reason, "end_turn"), None

    def _fail(self, status: int, message: str) -> list[StreamEvent]:
        body = error_body(status, message)
        self.error = (status, body)
        return [("error", body)]

    def _finish(self, finish: Finish) -> list[StreamEvent]:
        self.finish = finish
        out = self._close()
        usage = finish.usage
        if finish.reason == "context_exceeded":
            # The answer needed one token more than the context holds.
            tokens = usage.prompt_tokens + usage.completion_tokens
            return out + self._fail(400, prompt_too_long(tokens + 1, self.context or tokens))
        stop_reason, stop_sequence = self._stop(finish)
        delta = {"type": "message_delta", "usage": self._usage(usage),
                 "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}}
        return [*out, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]

    @staticmethod
    def _usage(usage: Usage) -> dict[str, Any]:
        return usage_dict(usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens)

    def _take(self, event: Event) -> list[StreamEvent]:
        if self.finish is not None or self.error is not None:
            return []  # the message is over
        if isinstance(event, KeepAlive):
            return [("ping", {"type": "ping"})]
        if isinstance(event, Failure):
            return self._fail(500, event.message)
        if event.choice != 0:
            return []  # Anthropic's messages have one answer (the request asks for n = 1)
        if isinstance(event, TextDelta):
            if not event.text:
                return []
            out: list[StreamEvent] = []
            if self.open is None or self.content[self.open]["type"] != "text":
                out = self._open({"type": "text", "text": ""})
            assert self.open is not None
            self.content[self.open]["text"] += event.text
            return [*out, self._delta(self.open, {"type": "text_delta", "text": event.text})]
        if isinstance(event, ToolCallStart):
            out = self._open({"type": "tool_use", "id": event.id, "name": event.name,
                              "input": {}})
            assert self.open is not None
            self.calls[event.call] = self.open
            self.arguments[self.open] = []
            return out
        if isinstance(event, ToolCallArguments):
            index = self.calls[event.call]
            self.arguments[index].append(event.fragment)
            if not event.fragment:
                return []
            return [self._delta(index, {"type": "input_json_delta",
                                        "partial_json": event.fragment})]
        if isinstance(event, ToolCallEnd):
            return self._close() if self.open == self.calls.get(event.call) else []
        assert isinstance(event, Finish)
        return self._finish(event)

    def stream(self, event: Event) -> list[StreamEvent]:
        """The stream events of one internal event (`message_start` first)."""
        return self.start() + self._take(event)

    def collect(self, event: Event) -> None:
        """Take an event of a non-streamed answer."""
        self._take(event)

    def body(self) -> dict[str, Any]:
        """The whole message, once it finished (`error` is None)."""
        assert self.finish is not None and self.error is None
        content = [{**block, "input": tool_input("".join(self.arguments[i]))}
                   if block["type"] == "tool_use" else dict(block)
                   for i, block in enumerate(self.content)]
        stop_reason, stop_sequence = self._stop(self.finish)
        return self._message(content, stop_reason, stop_sequence,
                             self._usage(self.finish.usage))
