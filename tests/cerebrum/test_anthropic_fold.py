"""A Messages stream folded into the non-streamed body: what our renderer streams, folded,
is what it gives unstreamed."""

from __future__ import annotations

from cerebrum import anthropic
from cerebrum.anthropic.fold import Folder
from cerebrum.generation.events import (
    Finish,
    KeepAlive,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

EVENTS = [KeepAlive(), TextDelta("Let me "), TextDelta("look."),
          ToolCallStart(0, "toolu_1", "read"), ToolCallArguments(0, '{"path": '),
          ToolCallArguments(0, '"a.py"}'), ToolCallEnd(0),
          Finish("tool_calls", Usage(12, 9, 5))]


def _render() -> anthropic.Render:
    return anthropic.Render("msg_1", "m", 12)


def test_the_stream_folds_into_the_body():
    streamed, whole = _render(), _render()
    folder = Folder()
    for _, payload in [*streamed.start(), *(p for e in EVENTS for p in streamed.stream(e))]:
        folder.add(payload)
    for event in EVENTS:
        whole.collect(event)
    folded, body = folder.body(), whole.body()
    assert folded["content"] == body["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.py"}}]
    assert (folded["stop_reason"], folded["usage"]["output_tokens"]) == ("tool_use", 9)
    assert folded["id"] == body["id"] and folded["role"] == "assistant"
