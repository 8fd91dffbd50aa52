"""Tool calling on the real Qwen2.5-Coder (its template renders tools): calls parsed into
`tool_calls` (streamed as `delta.tool_calls`), `tool_choice` none/auto/required/named,
`parallel_tool_calls`, tool results round-tripping; SmolLM2's template has no tools: a 400."""

from __future__ import annotations

import json

import pytest
from conftest import base_url, spec, sse_events

from vps_appliance.engine.tools import Parser, RepeatGuard
from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "The current time in a time zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                   "required": ["zone"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def test_the_parser_splits_content_and_calls_across_pieces():
    parser = Parser()
    text = 'Let me check.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    content, calls = "", []
    for i in range(0, len(text), 3):
        piece, done = parser.feed(text[i:i + 3])
        content += piece
        calls += done
    assert content == "Let me check.\n" and parser.flush() == ("", [])
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("f", {"a": 1})]
    assert calls[0].id.startswith("call_")


def test_without_parallel_calls_only_the_first_is_kept():
    two = '<tool_call>{"name": "f", "arguments": {}}</tool_call>\n' \
          '<tool_call>{"name": "g", "arguments": {}}</tool_call>'
    parallel, single = Parser(), Parser(parallel=False)
    assert [c.name for c in parallel.feed(two)[1]] == ["f", "g"]
    assert [c.name for c in single.feed(two)[1]] == ["f"] and len(single.calls) == 1


def test_a_block_that_is_not_a_call_stays_text():
    parser = Parser()
    content, calls = parser.feed("<tool_call>not json</tool_call> and <tool_ca")
    assert calls == [] and content == "<tool_call>not json</tool_call> and "
    assert parser.flush() == ("<tool_ca", [])


def test_an_answer_of_bare_json_naming_a_tool_is_a_call():
    parser = Parser(names=frozenset({"f"}))
    assert parser.feed(' {"na') == ("", []) and parser.feed('me": "f", "arguments": {}}') == (
        "", [])
    text, calls = parser.flush()
    assert text == "" and [c.name for c in calls] == ["f"]
    fenced = Parser(names=frozenset({"f"}))
    fenced.feed('```json\n{\n  "name": "f",\n  "arguments": {"a": 1}\n}\n```')
    assert [json.loads(c.arguments) for c in fenced.flush()[1]] == [{"a": 1}]
    code = Parser(names=frozenset({"f"}))
    assert code.feed("```python\nx = 1") == ("```python\nx = 1", [])  # not held back
    other = Parser(names=frozenset({"f"}))
    other.feed('{"name": "g", "arguments": {}}')
    assert other.flush() == ('{"name": "g", "arguments": {}}', [])


READ = '{"name": "Read", "arguments": {"file_path": "notes.txt", "limit": 10}}'


def _fed(guard: RepeatGuard, text: str, step: int = 4) -> int | None:
    """Where (characters fed) the guard stopped the answer, or None."""
    for at in range(0, len(text), step):
        if guard.feed(text[at:at + step]):
            return at + step
    return None


def test_an_answer_writing_the_same_call_again_ends_there():
    # What Qwen2.5-Coder-0.5B wrote after Claude Code's Read result: the call, again and
    # again (11,461 tokens in 5 minutes, held back as bare JSON, until Claude Code gave up).
    loop = (READ + "\n") * 20
    for step in (1, 3, 4, 7, 16):  # pieces of any size: the next copy may have begun
        stopped = _fed(RepeatGuard(), loop, step)
        assert stopped is not None and len(READ) < stopped <= 2 * len(READ) + 1 + step
        parser = Parser(names=frozenset({"Read"}))
        parser.feed(loop[:stopped])
        assert [c.name for c in parser.flush()[1]] == ["Read"], step  # one call, not two
    tagged = f"<tool_call>\n{READ}\n</tool_call>\n" * 3
    assert _fed(RepeatGuard(), tagged) is not None


def test_different_calls_prose_and_code_go_on():
    other = READ.replace("notes.txt", "other.txt")
    for text in (READ + "\n" + other + "\n",  # two different calls: parallel calls
                 'Use {"a": 1} then {"a": 1} again.',  # prose: not a call
                 "```js\nif (a) { f(); }\nif (a) { f(); }\n```",  # code that repeats
                 f"<tool_call>{READ}</tool_call>{{}}{{}}"):
        assert _fed(RepeatGuard(), text) is None, text


@pytest.fixture
async def qwen(start_backend, qwen_path):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=2048,
                                      sampling=Sampling(temperature=0.0, max_tokens=80)))
    return base_url(server)


async def _post(http, url: str, body: dict) -> dict:
    async with http.post(url + CHAT, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_auto_tool_call_is_parsed(qwen, http):
    data = await _post(http, qwen, {"messages": ASK, "tools": [WEATHER, CLOCK]})
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert "paris" in json.loads(call["function"]["arguments"])["city"].lower()
    assert choice["message"]["content"] is None


async def test_streamed_tool_call_arrives_as_fragments(qwen, http):
    body = {"messages": ASK, "tools": [WEATHER, CLOCK], "stream": True}
    async with http.post(qwen + CHAT, json=body) as resp:
        events = [e async for e in sse_events(resp)]
    chunks = [e for e in events[:-1] if e["choices"]]
    fragments = [f for c in chunks for f in c["choices"][0]["delta"].get("tool_calls", [])]
    assert fragments[0]["id"].startswith("call_") and fragments[0]["index"] == 0
    name = "".join(f.get("function", {}).get("name", "") for f in fragments)
    arguments = "".join(f.get("function", {}).get("arguments", "") for f in fragments)
    assert name == "get_weather" and "paris" in json.loads(arguments)["city"].lower()
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "<tool_call>" not in "".join(c["choices"][0]["delta"].get("content") or ""
                                        for c in chunks)


async def test_required_forces_a_call_and_a_named_function_that_one(qwen, http):
    hello = [{"role": "user", "content": "Say hello."}]
    data = await _post(http, qwen, {"messages": hello, "tools": [WEATHER, CLOCK],
                                    "tool_choice": "required", "parallel_tool_calls": False})
    (call,) = data["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] in ("get_weather", "get_time")
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    named = {"type": "function", "function": {"name": "get_time"}}
    data = await _post(http, qwen, {"messages": ASK, "tools": [WEATHER, CLOCK],
                                    "tool_choice": named})
    calls = data["choices"][0]["message"]["tool_calls"]
    assert calls and all(c["function"]["name"] == "get_time" for c in calls)
    assert all("zone" in json.loads(c["function"]["arguments"]) for c in calls)
    assert data["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_choice_none_answers_in_text(qwen, http):
    data = await _post(http, qwen, {"messages": ASK, "tools": [WEATHER], "tool_choice": "none",
                                    "max_tokens": 20})
    message = data["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"]


async def test_a_tool_result_round_trips(qwen, http):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
    messages = [*ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1",
                 "content": json.dumps({"sky": "sunny", "celsius": 22})}]
    data = await _post(http, qwen, {"messages": messages, "tools": [WEATHER]})
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and "22" in choice["message"]["content"]


async def test_bad_tools_are_400s_naming_them(qwen, http):
    cases = [({"tools": [{"type": "function"}]}, "tools"),
             ({"tool_choice": "required"}, "tool_choice"),
             ({"tools": [WEATHER], "tool_choice": {"type": "function",
                                                   "function": {"name": "nope"}}}, "tool_choice"),
             ({"tools": [WEATHER], "parallel_tool_calls": "no"}, "parallel_tool_calls"),
             ({"tools": [WEATHER], "response_format": {"type": "json_object"}},
              "response_format")]
    for extra, param in cases:
        async with http.post(qwen + CHAT, json={"messages": ASK, **extra}) as resp:
            assert resp.status == 400, extra
            assert (await resp.json())["error"]["param"] == param, extra


async def test_a_template_without_tools_is_a_400(start_backend, smollm2, http):
    smol = base_url(await start_backend(spec("smol", smollm2, n_ctx=512)))
    async with http.post(smol + CHAT, json={"messages": ASK, "tools": [WEATHER]}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == "tools" and "does not support tools" in error["message"]
    body = {"messages": ASK, "tools": [WEATHER], "tool_choice": "none", "max_tokens": 4}
    async with http.post(smol + CHAT, json=body) as resp:
        assert resp.status == 200  # not offered: nothing the template must render
