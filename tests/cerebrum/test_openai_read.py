"""An upstream's OpenAI chunks read back as internal events (`cerebrum.openai.read`):
llama-server's recorded streams, and our own renderer's chunks (tool calls, several choices,
usage) round-tripped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cerebrum.generation.events import (
    Finish,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from cerebrum.openai import Envelope
from cerebrum.openai.read import Reader
from cerebrum.openai.render import Render
from cerebrum.sse import DONE, parse_data

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "data" / "wire"
                       / "llama_server.json").read_text())["cases"]
STREAMS = [c for c in RECORDED if c["endpoint"].startswith("/v1/") and "lines" in c]


def _chunks(lines: list[str]) -> list[dict]:
    payloads = [parse_data(line) for line in lines]
    return [json.loads(p) for p in payloads if p is not None and p != DONE]


def _read(chunks: list[dict]) -> list:
    reader = Reader()
    return [e for chunk in chunks for e in reader.read(chunk)] + reader.end()


def test_there_are_recorded_streams_of_both_endpoints():
    assert {c["endpoint"] for c in STREAMS} == {"/v1/chat/completions", "/v1/completions"}


@pytest.mark.parametrize("case", STREAMS, ids=[c["name"] for c in STREAMS])
def test_llama_servers_streams_read_as_text_and_one_finish(case):
    chunks = _chunks(case["lines"])
    events = _read(chunks)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    sent = "".join((c["choices"][0].get("delta") or {}).get("content") or
                   c["choices"][0].get("text") or "" for c in chunks if c.get("choices"))
    assert text == sent and text
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1 and finishes[0].reason == "length"  # max_tokens 4
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    assert finishes[0].usage.completion_tokens == usage["completion_tokens"]
    assert finishes[0].usage.prompt_tokens == usage["prompt_tokens"]


def test_our_chunks_round_trip_tool_calls_choices_and_usage():
    sent = [
        TextDelta("Let me look.", 0),
        ToolCallStart(0, "call_a", "read_file", 0),
        ToolCallArguments(0, '{"path": "a.py"}', 0),
        ToolCallEnd(0, 0),
        TextDelta("Hi", 1),
        Finish("tool_calls", Usage(10, 7, 4), 0),
        Finish("stop", Usage(10, 1, 4), 1),
    ]
    render = Render(Envelope.new("chat", "r1", "m"), n=2, include_usage=True)
    payloads = [p for e in sent for p in render.stream(e)]
    assert payloads[-1] == DONE
    events = _read([p for p in payloads if isinstance(p, dict)])
    # Choice by choice, in order; a call ends where OpenAI's stream says so, at its finish.
    for choice in (0, 1):
        assert [e for e in events if e.choice == choice and not isinstance(e, Finish)] == \
            [e for e in sent[:5] if e.choice == choice]
    finishes = {e.choice: e for e in events if isinstance(e, Finish)}
    assert (finishes[0].reason, finishes[1].reason) == ("tool_calls", "stop")
    # The usage of the whole request, once: 10 prompt tokens, 8 completion tokens, 4 cached.
    total = [f.usage for f in finishes.values()]
    assert (total[0].prompt_tokens, sum(u.completion_tokens for u in total),
            total[0].cached_tokens) == (10, 8, 4)


def test_a_stream_without_usage_still_finishes():
    chunk = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}
    events = _read([chunk])
    assert events == [TextDelta("x"), Finish("stop", Usage(0, 0, 0), 0)]
