"""Record the Responses API request bodies the official `openai` Python SDK sends
(openai_sdk_responses.json).

Each case below calls the SDK as an application would (`responses.create`, `create(stream=
True)`, the `responses.stream()` helper, `responses.input_tokens.count`); a stand-in server on
127.0.0.1:0 keeps the exact bytes of each request and answers with a minimal valid reply. The
case's `expect` (what `cerebrum.responses.parse` must make of the body, as
tests/cerebrum/test_responses_wire.py views it) is written by hand here, so re-recording with
a newer SDK keeps the expectations and shows what the SDK changed.

    .venv/bin/python tests/data/wire/record_openai_sdk_responses.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
from aiohttp import web
from pydantic import BaseModel

OUT = Path(__file__).with_name("openai_sdk_responses.json")
MODEL = "qwen2.5-coder-0.5b-instruct"


class Weather(BaseModel):
    """The answer's shape for the structured output case (the SDK makes it a strict schema)."""

    city: str
    celsius: float


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather.",
                "strict": True, "parameters": {
                    "type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"], "additionalProperties": False}}
TIME_TOOL = {"type": "function", "name": "get_time", "strict": False,
             "parameters": {"type": "object", "properties": {}}}
PATCH_GRAMMAR = 'start: "*** Begin Patch" LF hunk+ "*** End Patch" LF?\nhunk: /.+/ LF\n'
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
              "format": {"type": "grammar", "syntax": "lark", "definition": PATCH_GRAMMAR}}
NOTE_TOOL = {"type": "custom", "name": "note", "format": {"type": "text"}}
SHELL_TOOL = {"type": "function", "name": "shell", "description": "Run a command.",
              "parameters": {"type": "object", "properties": {
                  "command": {"type": "array", "items": {"type": "string"}}},
                  "required": ["command"]}}
ITEMS = [
    {"role": "developer", "content": [{"type": "input_text", "text": "Answer in "},
                                      {"type": "input_text", "text": "English."}]},
    {"role": "user", "content": "Weather in Oslo?"},
    {"type": "reasoning", "id": "rs_1", "summary": [
        {"type": "summary_text", "text": "The user wants Oslo's weather."}]},
    {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Looking it up.", "annotations": []}]},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather",
     "arguments": "{\"city\": \"Oslo\"}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "{\"celsius\": 4}"},
    {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                     "text": "And the time?"}]},
]
ITEM_TURNS = [
    ["developer", "Answer in English.", [], None, ""],
    ["user", "Weather in Oslo?", [], None, ""],
    ["assistant", "Looking it up.", [["call_1", "get_weather", "{\"city\": \"Oslo\"}"]], None,
     "The user wants Oslo's weather."],
    ["tool", "{\"celsius\": 4}", [], "call_1", ""],
    ["user", "And the time?", [], None, ""],
]
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
CUSTOM_ITEMS = [
    {"role": "user", "content": "Add a.txt, then list the files."},
    {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": PATCH},
    {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"},
    {"type": "function_call", "call_id": "call_s", "name": "shell",
     "arguments": "{\"command\": [\"ls\"]}"},
    {"type": "function_call_output", "call_id": "call_s",
     "output": [{"type": "input_text", "text": "a.txt\n"}]},
]
CUSTOM_TURNS = [
    ["user", "Add a.txt, then list the files.", [], None, ""],
    ["assistant", "", [["call_p", "apply_patch", PATCH]], None, ""],
    ["tool", "Done!", [], "call_p", ""],
    ["assistant", "", [["call_s", "shell", "{\"command\": [\"ls\"]}"]], None, ""],
    ["tool", "a.txt\n", [], "call_s", ""],
]

# name → (how the SDK is called, its arguments, what parse must make of the body)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("create_instructions_string_input", "create", dict(
        model=MODEL, instructions="You are terse.", input="Say hi.", temperature=0.2,
        top_p=0.9, max_output_tokens=64, store=False, user="u-1",
        metadata={"session": "s-1"}, prompt_cache_key="conv-1", service_tier="auto",
        truncation="disabled", safety_identifier="h-1",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"]),
     {"model": MODEL, "stream": False, "turns": [["system", "You are terse.", [], None, ""],
                                                 ["user", "Say hi.", [], None, ""]],
      "max_tokens": 64, "cache_key": "conv-1", "tools": [], "tool_choice": None,
      "logprobs": False, "top_logprobs": 0, "output": {"type": "text"},
      "sampling": {"temperature": 0.2, "top_p": 0.9}}),
    ("create_items_function_tools", "create", dict(
        model=MODEL, input=ITEMS, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "name": "get_time"}, parallel_tool_calls=False,
        text={"verbosity": "low"}, top_logprobs=2, include=["message.output_text.logprobs"]),
     {"turns": ITEM_TURNS, "tools": ["get_weather", "get_time"], "tools_strict": [True, False],
      "tools_freeform": [False, False], "tool_choice": ["named", "get_time"],
      "parallel_tool_calls": False, "logprobs": True, "top_logprobs": 2,
      "output": {"type": "text"}, "max_tokens": None, "cache_key": None}),
    ("create_stream_custom_tools", "create", dict(
        model=MODEL, input=CUSTOM_ITEMS, stream=True,
        tools=[PATCH_TOOL, NOTE_TOOL, SHELL_TOOL, {"type": "web_search"},
               {"type": "image_generation"}],
        tool_choice="required", parallel_tool_calls=True, store=False),
     {"stream": True, "turns": CUSTOM_TURNS, "tools": ["apply_patch", "note", "shell"],
      "tools_freeform": [True, True, False], "tool_choice": ["required", None],
      "parallel_tool_calls": True}),
    ("stream_helper_text_format", "stream", dict(
        model=MODEL, input="Oslo's weather as JSON.", text_format=Weather,
        max_output_tokens=32, temperature=0),
     {"stream": True, "turns": [["user", "Oslo's weather as JSON.", [], None, ""]],
      "max_tokens": 32, "sampling": {"temperature": 0.0},
      "output": {"type": "json_schema", "name": "Weather", "strict": True,
                 "schema_properties": ["celsius", "city"]}}),
    ("create_json_object_custom_choice", "create", dict(
        model=MODEL, input=[{"role": "user", "content": "Write a note as JSON."}],
        text={"format": {"type": "json_object"}}, tools=[NOTE_TOOL],
        tool_choice={"type": "custom", "name": "note"}),
     {"turns": [["user", "Write a note as JSON.", [], None, ""]],
      "output": {"type": "json_object"}, "tools": ["note"], "tools_freeform": [True],
      "tool_choice": ["named", "note"]}),
    ("input_tokens_count", "input_tokens", dict(
        model=MODEL, instructions="You are terse.", input=ITEMS[:2], tools=[WEATHER_TOOL],
        tool_choice="auto", parallel_tool_calls=True, truncation="disabled",
        reasoning={"effort": "minimal"}, text={"format": {"type": "text"}}),
     {"stream": False, "turns": [["system", "You are terse.", [], None, ""], *ITEM_TURNS[:2]],
      "tools": ["get_weather"], "tool_choice": ["auto", None]}),
]


def response_object(status: str) -> dict[str, Any]:
    """The least a client accepts of a response object."""
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": status,
            "model": MODEL, "output": [], "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "error": None, "incomplete_details": None, "instructions": None,
            "metadata": {}, "temperature": None, "top_p": None}


def reply(path: str, stream: bool) -> web.StreamResponse:
    """A minimal valid reply: the token count, the response, or its created and completed
    events."""
    if path.endswith("/input_tokens"):
        return web.json_response({"object": "response.input_tokens", "input_tokens": 1})
    if not stream:
        return web.json_response(response_object("completed"))
    events = [("response.created", response_object("in_progress")),
              ("response.completed", response_object("completed"))]
    text = "".join(f"event: {name}\ndata: "
                   f"{json.dumps({'type': name, 'sequence_number': i, 'response': r})}\n\n"
                   for i, (name, r) in enumerate(events))
    return web.Response(text=text, content_type="text/event-stream")


async def call(client: openai.AsyncOpenAI, how: str, arguments: dict[str, Any]) -> None:
    """Call the SDK as `how` says, reading a stream to its end."""
    if how == "input_tokens":
        await client.responses.input_tokens.count(**arguments)
    elif how == "stream":
        async with client.responses.stream(**arguments) as stream:
            await stream.get_final_response()
    else:
        out = await client.responses.create(**arguments)
        if isinstance(out, openai.AsyncStream):
            async for _ in out:
                pass


async def record() -> list[dict[str, Any]]:
    seen: list[tuple[str, bytes]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        seen.append((request.path, raw))
        return reply(request.path, json.loads(raw).get("stream") is True)

    app = web.Application()
    app.router.add_post("/v1/responses", handle)
    app.router.add_post("/v1/responses/input_tokens", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1",
                                max_retries=0)
    cases = []
    try:
        for name, how, arguments, expect in CASES:
            await call(client, how, arguments)
            path, raw = seen.pop()
            assert not seen
            cases.append({"name": name, "endpoint": path,
                          "kind": "input_tokens" if how == "input_tokens" else "create",
                          "recorded_with": f"openai-python {openai.__version__}",
                          "sdk_call": {"create": "responses.create", "stream":
                                       "responses.stream", "input_tokens":
                                       "responses.input_tokens.count"}[how],
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
