"""Record the request bodies the official `openai` Python SDK sends (openai_sdk.json).

Each case below calls the SDK as an application would; a stand-in server on 127.0.0.1:0
keeps the exact bytes of each request and answers with a minimal valid reply. The case's
`expect` (what `cerebrum.openai.parse` must make of the body) is written by hand here, so
re-recording with a newer SDK keeps the expectations and shows what the SDK changed.

    .venv/bin/python tests/data/wire/record_openai_sdk.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
from aiohttp import web
from pydantic import BaseModel

OUT = Path(__file__).with_name("openai_sdk.json")


class Weather(BaseModel):
    """The answer's shape for the structured output case (the SDK makes it a strict schema)."""

    city: str
    celsius: float


class Lookup(BaseModel):
    """A tool's parameters, as `openai.pydantic_function_tool` makes a strict tool of them."""

    symbol: str


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {}}}}
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Answer in "},
                                      {"type": "text", "text": "English."}]},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"celsius\": 4}"},
    {"role": "user", "content": "And the time?"},
]
TURNS = [["system", "You are terse.", [], None],
         ["developer", "Answer in English.", [], None],
         ["user", "Weather in Oslo?", [], None],
         ["assistant", "", [["call_1", "get_weather", "{\"city\": \"Oslo\"}"]], None],
         ["tool", "{\"celsius\": 4}", [], "call_1"],
         ["user", "And the time?", [], None]]

# name → (endpoint, how the SDK is called, what parse must make of the body)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("chat_tools_stream_usage", "chat", dict(
        model="qwen2.5-coder-0.5b-instruct", messages=CONVERSATION,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False, stream=True, stream_options={"include_usage": True},
        temperature=0.2, top_p=0.9, seed=7, stop=["\n\n"], max_completion_tokens=64,
        presence_penalty=0.5, frequency_penalty=0.25, logit_bias={"42": -100}, user="u-1"),
     {"model": "qwen2.5-coder-0.5b-instruct", "stream": True, "turns": TURNS,
      "tools": ["get_weather", "get_time"], "tool_choice": ["named", "get_time"],
      "parallel_tool_calls": False, "max_tokens": 64, "stop": ["\n\n"], "n": 1,
      "logprobs": False, "top_logprobs": 0, "output": {"type": "text"},
      "sampling": {"temperature": 0.2, "top_p": 0.9, "seed": 7, "presence_penalty": 0.5,
                   "frequency_penalty": 0.25, "logit_bias": [[42, -100.0]]}}),
    ("chat_json_schema_parse", "chat", dict(
        model="qwen2.5-coder-0.5b-instruct", response_format=Weather, max_tokens=32,
        messages=[{"role": "user", "content": "Oslo's weather as JSON."}], temperature=0,
        extra_body={"top_k": 20, "min_p": 0.05}),
     {"stream": False, "turns": [["user", "Oslo's weather as JSON.", [], None]],
      "tools": [], "tool_choice": None, "max_tokens": 32, "stop": [],
      "output": {"type": "json_schema", "name": "Weather", "strict": True,
                 "schema_properties": ["celsius", "city"]},
      "sampling": {"temperature": 0.0, "top_k": 20, "min_p": 0.05}}),
    ("chat_pydantic_tool_required_logprobs", "chat", dict(
        model="m", messages=[{"role": "user", "content": "Look up AAPL."}],
        tools=[openai.pydantic_function_tool(Lookup, name="lookup")], tool_choice="required",
        logprobs=True, top_logprobs=2, n=2, stop="END", max_tokens=16),
     {"model": "m", "turns": [["user", "Look up AAPL.", [], None]], "tools": ["lookup"],
      "tools_strict": [True], "tool_choice": ["required", None], "parallel_tool_calls": True,
      "logprobs": True, "top_logprobs": 2, "n": 2, "stop": ["END"], "max_tokens": 16}),
    ("chat_json_object_prediction", "chat", dict(
        model="m", messages=[{"role": "user", "content": "Rename x to y: x = 1"}],
        response_format={"type": "json_object"},
        prediction={"type": "content", "content": "y = 1"}, stream=True),
     {"stream": True, "output": {"type": "json_object"}, "prediction": "y = 1",
      "tool_choice": None, "turns": [["user", "Rename x to y: x = 1", [], None]]}),
    ("completion_suffix", "completion", dict(
        model="qwen2.5-coder-0.5b-instruct", prompt="def add(a, b):\n    ",
        suffix="\n\nprint(add(1, 2))\n", max_tokens=24, temperature=0.0, stop=["\ndef "],
        logprobs=2, echo=False, n=1),
     {"model": "qwen2.5-coder-0.5b-instruct", "stream": False,
      "prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))\n",
      "max_tokens": 24, "stop": ["\ndef "], "logprobs": True, "top_logprobs": 2, "n": 1,
      "sampling": {"temperature": 0.0}}),
    ("completion_stream_prompt_list", "completion", dict(
        model="m", prompt=["Once upon a time"], max_tokens=8, stream=True,
        stream_options={"include_usage": True}, seed=3),
     {"stream": True, "prompt": "Once upon a time", "suffix": None, "max_tokens": 8,
      "stop": [], "logprobs": False, "sampling": {"seed": 3}}),
]


def reply(kind: str, stream: bool) -> web.StreamResponse:
    """The least a client accepts: one choice, then (streamed) [DONE]."""
    base = {"id": "x-1", "created": 1, "model": "m"}
    if kind == "chat":
        body = {**base, "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop", "logprobs": None,
            "message": {"role": "assistant", "content": "{\"city\": \"Oslo\", \"celsius\": 4}"}}]}
        chunk = {**base, "object": "chat.completion.chunk", "choices": [{
            "index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    else:
        body = {**base, "object": "text_completion", "choices": [{
            "index": 0, "text": "ok", "logprobs": None, "finish_reason": "stop"}]}
        chunk = body
    if not stream:
        return web.json_response(body)
    text = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return web.Response(text=text, content_type="text/event-stream")


async def record() -> list[dict[str, Any]]:
    seen: list[tuple[str, bytes]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        seen.append((request.path, raw))
        kind = "chat" if request.path.endswith("/chat/completions") else "completion"
        return reply(kind, json.loads(raw).get("stream") is True)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    app.router.add_post("/v1/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1",
                                max_retries=0)
    cases = []
    try:
        for name, kind, call, expect in CASES:
            if kind == "chat" and isinstance(call.get("response_format"), type):
                out: Any = await client.chat.completions.parse(**call)
            elif kind == "chat":
                out = await client.chat.completions.create(**call)
            else:
                out = await client.completions.create(**call)
            if isinstance(out, openai.AsyncStream):
                async for _ in out:
                    pass
            path, raw = seen.pop()
            assert not seen
            cases.append({"name": name, "endpoint": path, "kind": kind,
                          "recorded_with": f"openai-python {openai.__version__}",
                          "body": json.loads(raw), "expect": expect})
    finally:
        await client.close()
        await runner.cleanup()
    return cases


def main() -> None:
    cases = asyncio.run(record())
    OUT.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases → {OUT}")


if __name__ == "__main__":
    main()
