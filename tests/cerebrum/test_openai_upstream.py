"""The internal request written back as a Chat Completions body (`cerebrum.openai.upstream`),
what the orchestrator sends its upstream for a request that came in another format: the
real SDK's recorded chat bodies, and Responses and Messages bodies, parse to the same
internal request again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cerebrum import anthropic, openai, responses
from cerebrum.openai.upstream import chat_body

WIRE = Path(__file__).resolve().parents[1] / "data" / "wire"
CHATS = [c for c in json.loads((WIRE / "openai_sdk.json").read_text()) if c["kind"] == "chat"]


def _plain(req):
    """What Chat Completions can say of a request: streamed or not is the upstream's (always),
    a free-form tool is a function (the answer is read back as the client's format asked),
    and the tool choice in force is said explicitly."""
    return dataclasses.replace(
        req, stream=False, tool_choice=req.choice if req.tools else req.tool_choice,
        tools=tuple(dataclasses.replace(t, freeform=False) for t in req.tools))


def _same(a, b) -> None:
    assert _plain(a) == _plain(b)


@pytest.mark.parametrize("case", CHATS, ids=[c["name"] for c in CHATS])
def test_a_chat_request_survives_the_round_trip(case):
    req = openai.parse("chat", case["body"], 4096, "backend")
    _same(openai.parse("chat", chat_body(req), 4096, "backend"), req)


def test_there_are_recorded_chat_bodies():
    assert len(CHATS) >= 3


def test_a_responses_request_reaches_chat_with_its_tools_and_calls():
    body = {"model": "m", "instructions": "Be brief.", "tools": [
        {"type": "function", "name": "read", "parameters": {"type": "object"}},
        {"type": "custom", "name": "apply_patch", "description": "Patch."}],
        "input": [{"role": "user", "content": "Fix a.py"},
                  {"type": "function_call", "call_id": "c1", "name": "read",
                   "arguments": "{\"path\": \"a.py\"}"},
                  {"type": "function_call_output", "call_id": "c1", "output": "x = 1"}]}
    req = responses.parse(body, 4096, "backend")
    sent = chat_body(req)
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["tools"][1]["function"]["parameters"]["required"] == ["input"]
    _same(openai.parse("chat", sent, 4096, "backend"), req)


def test_a_messages_request_reaches_chat_with_its_tool_use():
    body = {"model": "m", "max_tokens": 64, "system": "Be brief.",
            "tools": [{"name": "read", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "read"},
            "messages": [{"role": "user", "content": "Read a.py"},
                         {"role": "assistant", "content": [
                             {"type": "tool_use", "id": "t1", "name": "read",
                              "input": {"path": "a.py"}}]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]}
    req = anthropic.parse(body, "backend")
    sent = chat_body(req)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "read"}}
    assert sent["messages"][2]["tool_calls"][0]["id"] == "t1"
    _same(dataclasses.replace(openai.parse("chat", sent, 4096, "backend"),
                              cache_key=req.cache_key), req)
