"""The official `openai` SDK against both tiers (the backend, and the orchestrator in front of
it) with the real Qwen2.5-Coder: structured outputs parsed into a pydantic model, a tool call
round trip, logprobs, n, and a stream with include_usage."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest
from conftest import base_url, orchestrator_settings, spec

from vps_appliance.settings import Sampling


class Person(pydantic.BaseModel):
    name: str
    age: int
    languages: list[str]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}


@pytest.fixture(params=["backend", "orchestrator"])
async def client(request, start_backend, start_orchestrator, qwen_path):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=2048,
                                      sampling=Sampling(temperature=0.0, max_tokens=100)))
    url = base_url(server)
    if request.param == "orchestrator":  # its route's model is the backend's "qwen"
        url = await start_orchestrator(orchestrator_settings(("vps", url), model="qwen"))
    async with openai.AsyncOpenAI(api_key="unused", base_url=url + "/v1",
                                  max_retries=0, timeout=300) as sdk:
        yield sdk


async def test_structured_output_parses_into_the_model(client):
    completion = await client.chat.completions.parse(
        model="qwen", response_format=Person,
        messages=[{"role": "user", "content": "Ann is 31 and writes Python and Go."}])
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person) and person.age == 31


async def test_a_tool_call_round_trips(client):
    ask = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    first = await client.chat.completions.create(model="qwen", messages=ask, tools=[WEATHER])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = message.tool_calls
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    answer = await client.chat.completions.create(model="qwen", tools=[WEATHER], messages=[
        *ask, message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny", "celsius": 22}'}])
    assert "22" in answer.choices[0].message.content


async def test_logprobs_and_n(client):
    out = await client.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=6,
        n=2, temperature=1.0, seed=5, logprobs=True, top_logprobs=2)
    assert [c.index for c in out.choices] == [0, 1]
    for choice in out.choices:
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries) == choice.message.content
        assert all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in entries)
    assert out.usage.completion_tokens == sum(len(c.logprobs.content) for c in out.choices)


async def test_a_stream_with_include_usage(client):
    stream = await client.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8,
        stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text
