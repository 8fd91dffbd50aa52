"""Record the requests the official `anthropic` Python SDK sends (anthropic_sdk.json).

Each case below calls the SDK as an application would (`messages.create`, `messages.stream`,
a tool round trip, `messages.count_tokens`, the beta stream Claude Code's features live on);
a stand-in server on 127.0.0.1:0 keeps each request's exact body, its path (with any query)
and the headers that `cerebrum.anthropic.check_headers` reads (this SDK sends `api_key` and
`auth_token` alike as `Authorization: Bearer`), and answers with a minimal valid reply. The
case's `expect` (what `cerebrum.anthropic.parse` must make of the body) is written by hand
here, so re-recording with a newer SDK keeps the expectations and shows what the SDK changed.

    .venv/bin/python tests/data/wire/record_anthropic_sdk.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
from aiohttp import web

OUT = Path(__file__).with_name("anthropic_sdk.json")
MODEL = "qwen2.5-coder-0.5b-instruct"
KEY = "sk-ant-test-key"
HEADERS = ("anthropic-version", "anthropic-beta", "x-api-key", "authorization")

WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]},
           "cache_control": {"type": "ephemeral"}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Oslo and Bergen?"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Two cities: two calls.", "signature": "c2ln"},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
         "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_02", "name": "get_weather",
         "input": {"city": "Bergen"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "{\"celsius\": 4}"},
        {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True,
         "content": [{"type": "text", "text": "station offline"}]},
        {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral"}}]},
    {"role": "system", "content": "Answer in one line."},
]
ROUND_TRIP_TURNS = [
    ["user", "Weather in Oslo and Bergen?", [], None, ""],
    ["assistant", "Checking both.", [["toolu_01", "get_weather", "{\"city\": \"Oslo\"}"],
                                     ["toolu_02", "get_weather", "{\"city\": \"Bergen\"}"]],
     None, "Two cities: two calls."],
    ["tool", "{\"celsius\": 4}", [], "toolu_01", ""],
    ["tool", "Error: station offline", [], "toolu_02", ""],
    ["user", "Summarise.", [], None, ""],
    ["system", "Answer in one line.", [], None, ""],
]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                           "celsius": {"type": "number"}},
          "required": ["city", "celsius"], "additionalProperties": False}

# name → (how the SDK is called, with which client options, what parse must make of it)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("create_system_blocks_sampling", "create", dict(
        model=MODEL, max_tokens=256,
        system=[{"type": "text", "text": "You are terse.",
                 "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "Answer in English."}],
        messages=[{"role": "user", "content": "Hello"}], stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u-1"}, service_tier="auto",
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40}),
     {"model": MODEL, "stream": False, "max_tokens": 256, "stop": ["\n\nHuman:"],
      "turns": [["system", "You are terse.\n\nAnswer in English.", [], None, ""],
                ["user", "Hello", [], None, ""]],
      "tools": [], "tool_choice": None, "cache_key": "u-1",
      "sampling": {"temperature": 0.2, "top_p": 0.9, "top_k": 40}}),
    ("stream_tools_thinking", "stream", dict(
        model=MODEL, max_tokens=32000, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What time is it?"}]}],
        tools=[WEATHER, TIME], tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 2048}, output_config={"effort": "high"}),
     {"stream": True, "max_tokens": 32000, "turns": [["user", "What time is it?", [], None, ""]],
      "tools": ["get_weather", "get_time"], "tool_choice": ["auto", None],
      "parallel_tool_calls": False, "output": {"type": "text"}}),
    ("create_tool_round_trip", "create", dict(
        model=MODEL, max_tokens=64, messages=ROUND_TRIP, tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"}),
     {"stream": False, "turns": ROUND_TRIP_TURNS, "tools": ["get_weather"],
      "tool_choice": ["named", "get_weather"], "parallel_tool_calls": True}),
    ("create_json_output_auth_token", "create_auth_token", dict(
        model=MODEL, max_tokens=128, messages=[{"role": "user", "content": "Oslo as JSON."}],
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        tools=[WEATHER], tool_choice={"type": "none"}),
     {"output": {"type": "json_schema", "strict": True,
                 "schema_properties": ["celsius", "city"]},
      "tool_choice": ["none", None], "turns": [["user", "Oslo as JSON.", [], None, ""]]}),
    ("count_tokens", "count_tokens", dict(
        model=MODEL, system="You are terse.", messages=ROUND_TRIP[:3], tools=[WEATHER, TIME],
        tool_choice={"type": "any"}, thinking={"type": "adaptive"}),
     {"stream": False, "max_tokens": None, "turns": [
         ["system", "You are terse.", [], None, ""], *ROUND_TRIP_TURNS[:5]],
      "tools": ["get_weather", "get_time"], "tool_choice": ["required", None]}),
    ("beta_stream_context_management", "beta_stream", dict(
        model=MODEL, max_tokens=32000, messages=[{"role": "user", "content": "hi"}],
        betas=["context-management-2025-06-27", "interleaved-thinking-2025-05-14"],
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        thinking={"type": "adaptive"}, metadata={"user_id": json.dumps(
            {"device_id": "d1", "account_uuid": "", "session_id": "s-42"})}),
     {"stream": True, "turns": [["user", "hi", [], None, ""]], "cache_key": "s-42"}),
]


def _message(stream: bool) -> web.StreamResponse:
    """The least a client accepts: a message of one text block."""
    usage = {"input_tokens": 3, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    if not stream:
        return web.json_response({**message, "content": [{"type": "text", "text": "ok"}],
                                  "stop_reason": "end_turn"})
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "ok"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 1},
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
        ("message_stop", {"type": "message_stop"})]
    text = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return web.Response(text=text, content_type="text/event-stream")


async def _call(how: str, call: dict[str, Any], port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    if how == "create_auth_token":
        client = anthropic.AsyncAnthropic(auth_token=KEY, base_url=base, max_retries=0)
    else:
        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base, max_retries=0)
    try:
        if how in ("create", "create_auth_token"):
            await client.messages.create(**call)
        elif how == "stream":
            async with client.messages.stream(**call) as stream:
                await stream.get_final_message()
        elif how == "beta_stream":
            async with client.beta.messages.stream(**call) as beta:
                await beta.get_final_message()
        else:
            await client.messages.count_tokens(**call)
    finally:
        await client.close()


async def record() -> list[dict[str, Any]]:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {h: request.headers[h] for h in HEADERS if h in request.headers}
        seen.append((request.path_qs, headers, raw))
        if request.path.endswith("/count_tokens"):
            return web.json_response({"input_tokens": 3})
        return _message(json.loads(raw).get("stream") is True)

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    app.router.add_post("/v1/messages/count_tokens", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cases = []
    try:
        for name, how, call, expect in CASES:
            await _call(how, call, port)
            path, headers, raw = seen.pop()
            assert not seen
            cases.append({"name": name, "endpoint": path,
                          "recorded_with": f"anthropic-python {anthropic.__version__}",
                          "headers": headers, "body": json.loads(raw), "expect": expect})
    finally:
        await runner.cleanup()
    return cases


def main() -> None:
    cases = asyncio.run(record())
    OUT.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases → {OUT}")


if __name__ == "__main__":
    main()
