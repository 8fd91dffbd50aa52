"""The agents' formats through the orchestrator to an upstream that speaks only OpenAI's
(`api = "openai"`: vLLM, Ollama): the request translated to Chat Completions, the answer read
back and rendered in the client's format, with the real `openai` and `anthropic` SDKs. (The
same requests to upstreams that speak the formats, real ones: tests/test_agent_apis.py.)"""

from __future__ import annotations

import dataclasses

import anthropic
import openai
import pytest
from conftest import base_url, orchestrator_settings
from faulty import Faulty

SYSTEM = "You are a careful agent.\nNever guess."
TOOL = {"name": "read_file", "description": "Read a file.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}


@pytest.fixture
async def openai_only(aiohttp_server, start_orchestrator) -> tuple[Faulty, str]:
    upstream = Faulty()
    settings = orchestrator_settings(("vllm", base_url(await aiohttp_server(upstream.app()))),
                                     model="m")
    settings = dataclasses.replace(settings, backends=tuple(
        dataclasses.replace(b, api="openai") for b in settings.backends))
    return upstream, await start_orchestrator(settings)


async def test_messages_reach_an_openai_only_upstream_as_chat(openai_only):
    upstream, url = openai_only
    async with anthropic.AsyncAnthropic(api_key="x", base_url=url, max_retries=0) as client:
        async with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=32000, system=SYSTEM, tools=[TOOL],
                messages=[{"role": "user", "content": "Read a.py"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        made = await client.messages.create(model="claude-haiku-4-5", max_tokens=8,
                                            messages=[{"role": "user", "content": "Hi"}])
    assert text == "tok0 tok1 tok2 tok3 tok4 " == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5
    assert made.content[0].text == text
    sent = upstream.bodies[0]
    # The agent's system prompt and tools reach the upstream as they were written.
    assert sent["messages"][0] == {"role": "system", "content": SYSTEM}
    assert sent["tools"][0]["function"]["parameters"] == TOOL["input_schema"]
    assert sent["model"] == "m" and sent["stream"] is True
    assert 0 < sent["max_tokens"] < 4096  # 32,000 asked: ends at the route's context


async def test_responses_reach_an_openai_only_upstream_as_chat(openai_only):
    upstream, url = openai_only
    async with openai.AsyncOpenAI(api_key="x", base_url=url + "/v1", max_retries=0) as client:
        async with client.responses.stream(model="gpt-5-codex", instructions=SYSTEM,
                                           input="Read a.py") as stream:
            final = await stream.get_final_response()
        made = await client.responses.create(model="gpt-5-codex", input="Hi")
    assert final.output_text == made.output_text == "tok0 tok1 tok2 tok3 tok4 "
    assert final.usage.input_tokens == 3 and final.usage.output_tokens == 5
    assert upstream.bodies[0]["messages"][0] == {"role": "system", "content": SYSTEM}


async def test_a_failure_midstream_is_the_formats_own_error(openai_only):
    upstream, url = openai_only
    upstream.mode = "die_midstream"
    async with anthropic.AsyncAnthropic(api_key="x", base_url=url, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError):
            async with client.messages.stream(
                    model="m", max_tokens=8,
                    messages=[{"role": "user", "content": "Hi"}]) as stream:
                async for _ in stream:
                    pass
