"""The orchestrator passes every request field through to its upstream unchanged, leaves tool
and JSON-mode conversations unreduced, and hands a backend's 400 and its `param` back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REAL_MODEL_CACHE, base_url, orchestrator_settings, spec, sse_events
from faulty import Faulty

from vps_appliance import models
from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
RENAME = (CORPUS / "py_multi_block.md").read_text()  # "rename get_conn to acquire_connection"
CODE = "\n\n".join(f"def fetch_{i}(url):\n    r = requests.get(url)\n    return r.json()"
                   for i in range(40))
EDIT = f"Convert fetch_3 to async/await.\n```python\n{CODE}\n```"
TOOLS = [{"type": "function", "function": {
    "name": "weather", "parameters": {"type": "object",
                                      "properties": {"city": {"type": "string"}}}}}]
# Every kind of field a client of the orchestrator may send, nested shapes included.
PAYLOAD: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": EDIT}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"c\": 3}"},
    ],
    "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "w", "strict": True, "schema": {"type": "object"}}},
    "logprobs": True, "top_logprobs": 2, "n": 2, "logit_bias": {"15": -100},
    "presence_penalty": 0.5, "frequency_penalty": 0.25, "seed": 7, "stop": ["\n\n"],
    "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 8,
    "temperature": 0.0, "top_p": 0.9, "top_k": 4, "min_p": 0.1, "repeat_penalty": 1.1,
    "user": "u-1", "metadata": {"k": "v"}, "speculative": False, "store": False,
    "cerebrum": {"context": "auto"}, "language": "python",
}


@pytest.fixture
async def fake(aiohttp_server, start_orchestrator) -> tuple[Faulty, str]:
    upstream = Faulty()
    url = base_url(await aiohttp_server(upstream.app()))
    return upstream, await start_orchestrator(orchestrator_settings(("f", url), model="m"))


async def test_every_field_reaches_the_upstream_as_sent(fake, http):
    upstream, url = fake
    async with http.post(url + CHAT, json=copy.deepcopy(PAYLOAD)) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
    own = ("cerebrum", "language")  # the orchestrator's; the route's model is sent
    expected = {k: v for k, v in PAYLOAD.items() if k not in own} | {"model": "m"}
    assert upstream.bodies == [expected]


@pytest.mark.parametrize("extra, why", [
    ({"tools": TOOLS}, "offers tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": PAYLOAD["messages"]}, "tool calls"),
])
async def test_tool_and_json_mode_conversations_are_not_reduced(fake, http, extra, why):
    _, url = fake
    body = {"messages": [{"role": "user", "content": EDIT}], "max_tokens": 8, **extra}
    async with http.post(url + "/v1/context/preview", json=body) as resp:
        preview = await resp.json()
    stats = preview["cerebrum"]
    assert stats["context"] == "raw" and why in stats["context_reason"], stats
    assert preview["messages"] == body["messages"] and stats["reduction"] == 0
    assert preview["prediction"] is None  # nothing of ours to draft from: not an edit we cut
    async with http.post(url + "/v1/context/preview", json={
            "messages": [{"role": "user", "content": EDIT}]}) as resp:
        assert (await resp.json())["cerebrum"]["context"] == "pipeline"  # reduced without


async def test_a_non_streamed_answer_asks_its_upstream_for_usage(fake, http):
    upstream, url = fake
    async with http.post(url + CHAT, json={"messages": [{"role": "user", "content": "hi"}]}
                         ) as resp:
        body = await resp.json()
    assert body["usage"]["total_tokens"] == 8 and body["choices"][0]["message"]["content"]
    assert upstream.bodies[0]["stream_options"] == {"include_usage": True}


async def test_a_field_nobody_defines_is_refused_by_the_orchestrator(fake, http):
    upstream, url = fake
    async with http.post(url + CHAT, json={**PAYLOAD, "temprature": 1}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert (error["param"], error["code"]) == ("temprature", "unknown_parameter")
    assert upstream.calls == 0


@pytest.fixture
async def real(start_backend, smollm2, start_orchestrator) -> str:
    backend = await start_backend(spec("smol", smollm2))
    return await start_orchestrator(orchestrator_settings(("vps", base_url(backend)),
                                                          model="smol"))


async def test_the_real_backend_judges_what_the_orchestrator_passes_through(real, http):
    # A field our backend refuses: its 400, code and param come back through as they are.
    for path, body, param in [
            (CHAT, {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"},
             "reasoning_effort"),
            (COMPLETIONS, {"prompt": "def f", "best_of": 3}, "best_of")]:
        async with http.post(real + path, json={**body, "max_tokens": 4}) as resp:
            assert resp.status == 400, await resp.text()
            error = (await resp.json())["error"]
        assert (error["param"], error["code"]) == (param, "unsupported_parameter"), error
        assert param in error["message"]
    # `speculative` reaches it: an edit drafts from the code by default, and not when off.
    drafted = {}
    for speculative in (None, False):
        extra = {} if speculative is None else {"speculative": speculative}
        async with http.post(real + CHAT, json={
                "messages": [{"role": "user", "content": RENAME}], "max_tokens": 48,
                "temperature": 0, **extra}) as resp:
            assert resp.status == 200, await resp.text()
            answer = await resp.json()
        details = answer["usage"]["completion_tokens_details"]
        drafted[speculative] = (details["accepted_prediction_tokens"]
                                + details["rejected_prediction_tokens"])
        assert answer["cerebrum"]["drafted_tokens"] == drafted[speculative]
        assert answer["system_fingerprint"].startswith("fp_")  # the backend's, passed on
    assert drafted[None] > 0 and drafted[False] == 0


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


async def _answer(http, url: str, body: dict) -> dict:
    async with http.post(url + CHAT, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_tools_json_logprobs_n_and_usage_through_the_orchestrator_on_qwen(
        start_backend, start_orchestrator, http):
    path = models.resolve("qwen2.5-coder-0.5b-instruct", REAL_MODEL_CACHE)
    backend = await start_backend(spec("qwen", path, n_ctx=2048,
                                       sampling=Sampling(temperature=0.0, max_tokens=80)))
    url = await start_orchestrator(orchestrator_settings(("vps", base_url(backend)),
                                                         model="qwen"))
    # A tool call, folded from the upstream's fragments into one non-streamed message.
    answer = await _answer(http, url, {"messages": ASK, "tools": [WEATHER]})
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["id"].startswith("call_")
    assert "paris" in json.loads(call["function"]["arguments"])["city"].lower()
    assert answer["cerebrum"]["context"] == "raw" and "tools" in answer["cerebrum"][
        "context_reason"]
    # The tool's result goes back with the assistant's call: the model answers from it.
    answer = await _answer(http, url, {"tools": [WEATHER], "max_tokens": 40, "messages": [
        *ASK, choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"celsius\": 31}"}]})
    assert "31" in answer["choices"][0]["message"]["content"]
    # A JSON schema: the answer parses and has what it requires.
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    answer = await _answer(http, url, {"messages": [{"role": "user", "content":
                                                    "Name a city in France as JSON."}],
                                       "response_format": {"type": "json_schema", "json_schema": {
                                           "name": "city", "strict": True, "schema": schema}}})
    assert isinstance(json.loads(answer["choices"][0]["message"]["content"])["city"], str)
    # n choices with their logprobs, each folded apart.
    answer = await _answer(http, url, {"messages": [{"role": "user", "content": "Say hi."}],
                                       "n": 2, "max_tokens": 3, "logprobs": True,
                                       "top_logprobs": 2, "temperature": 1.0, "seed": 1})
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    for c in answer["choices"]:
        tokens = c["logprobs"]["content"]
        assert 1 <= len(tokens) <= 3 and all(len(t["top_logprobs"]) == 2 for t in tokens)
        assert "".join(t["token"] for t in tokens) == c["message"]["content"]
    assert answer["usage"]["completion_tokens"] == sum(
        len(c["logprobs"]["content"]) for c in answer["choices"])
    # Streamed with include_usage: OpenAI's last chunk (no choices, the usage) carries ours.
    async with http.post(url + CHAT, json={"messages": [{"role": "user", "content": "Hi"}],
                                           "max_tokens": 4, "stream": True,
                                           "stream_options": {"include_usage": True}}) as resp:
        events = [e async for e in sse_events(resp)]
    *chunks, usage, done = events
    assert done == "[DONE]" and "cerebrum" in usage
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] >= 1
    assert all(c["usage"] is None for c in chunks)
