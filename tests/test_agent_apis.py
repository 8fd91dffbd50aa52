"""The agents' wire formats on both tiers, with the real SDKs and Qwen2.5-Coder-0.5B:
OpenAI's Responses API (`client.responses`: create, stream, a function tool round trip, input
tokens) and Anthropic's Messages API (`messages.create`, `.stream`, a tool round trip,
`count_tokens`), errors in each API's own shape, keys as `x-api-key`, prompts past the
context said so."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from conftest import QWEN, base_url, qwen_stack_settings, spec

from vps_appliance.settings import Sampling

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
ASK = "What is the weather in Paris? Use the tool."


@pytest.fixture
async def backend(start_backend, qwen_path):
    server = await start_backend(spec(QWEN, qwen_path, n_ctx=2048,
                                      sampling=Sampling(temperature=0.0, max_tokens=48)),
                                 api_keys=("k-agents",))
    return base_url(server)


@pytest.fixture(params=["backend", "orchestrator"])
async def qwen(request, backend, start_orchestrator):
    """Each tier in turn: the backend, and the orchestrator in front of it."""
    if request.param == "backend":
        return backend
    return await start_orchestrator(qwen_stack_settings(backend, "k-agents"))


def _openai(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="k-agents", base_url=url + "/v1", max_retries=0)


def _anthropic(url: str, **headers: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="k-agents", base_url=url, max_retries=0,
                                    default_headers=headers or None)


async def test_responses_create_and_stream_answer_in_text(qwen):
    async with _openai(qwen) as client:
        made = await client.responses.create(model=QWEN, input="Say hello.",
                                             max_output_tokens=4)
        assert made.status == "incomplete" and made.output_text  # as OpenAI says it
        assert made.incomplete_details.reason == "max_output_tokens"
        assert made.usage.input_tokens > 0 and made.usage.output_tokens == 4
        # No length (as Codex sends it): the answer ends where the model ends it.
        async with client.responses.stream(model=QWEN, input="Say hello.") as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and final.output_text


async def test_responses_function_call_round_trip(qwen):
    async with _openai(qwen) as client:
        first = await client.responses.create(
            model=QWEN, input=ASK, tools=[WEATHER], tool_choice="required",
            max_output_tokens=48)
        calls = [item for item in first.output if item.type == "function_call"]
        assert calls and calls[0].name == "get_weather"
        assert isinstance(json.loads(calls[0].arguments), dict)
        # tool_choice none: the 0.5B otherwise writes its call again (one call: the guard)
        second = await client.responses.create(
            model=QWEN, tools=[WEATHER], tool_choice="none", max_output_tokens=24,
            input=[{"role": "user", "content": ASK}, calls[0].model_dump(exclude_none=True),
                   {"type": "function_call_output", "call_id": calls[0].call_id,
                    "output": "Sunny, 21 degrees."}])
    assert second.output_text


async def test_responses_input_tokens_counts_like_the_answer(qwen, http):
    body = {"model": QWEN, "input": "Say hello."}
    async with http.post(qwen + "/v1/responses/input_tokens", json=body,
                         headers={"Authorization": "Bearer k-agents"}) as resp:
        counted = await resp.json()
    assert resp.status == 200 and counted["object"] == "response.input_tokens"
    async with _openai(qwen) as client:
        made = await client.responses.create(max_output_tokens=4, **body)
    assert counted["input_tokens"] == made.usage.input_tokens


async def test_messages_create_stream_and_count_tokens(qwen):
    async with _anthropic(qwen) as client:
        made = await client.messages.create(model=QWEN, max_tokens=8,
                                            messages=[{"role": "user", "content": "Say hi."}])
        assert made.content[0].type == "text" and made.content[0].text
        assert made.stop_reason in ("end_turn", "max_tokens") and made.usage.input_tokens > 0
        async with client.messages.stream(
                model=QWEN, max_tokens=8, system="Answer briefly.",
                messages=[{"role": "user", "content": "Say hi."}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        counted = await client.messages.count_tokens(
            model=QWEN, system="Answer briefly.",
            messages=[{"role": "user", "content": "Say hi."}])
    assert text and final.content[0].text == text
    assert counted.input_tokens == final.usage.input_tokens + (
        final.usage.cache_read_input_tokens or 0)


async def test_messages_tool_round_trip_with_claude_codes_32k_max_tokens(qwen):
    tool = {"name": "get_weather", "description": "Weather in a city.",
            "input_schema": WEATHER["parameters"]}
    async with _anthropic(qwen) as client:
        # Claude Code asks for 32,000 tokens whatever the model: the answer ends at the context.
        async with client.messages.stream(
                model=QWEN, max_tokens=32000, tools=[tool],
                tool_choice={"type": "tool", "name": "get_weather"},
                messages=[{"role": "user", "content": ASK}]) as stream:
            first = await stream.get_final_message()
        uses = [b for b in first.content if b.type == "tool_use"]
        assert first.stop_reason == "tool_use" and uses and uses[0].name == "get_weather"
        assert isinstance(uses[0].input, dict)
        # tool_choice none: the 0.5B otherwise writes its call again (one call: the guard)
        second = await client.messages.create(
            model=QWEN, max_tokens=24, tools=[tool], tool_choice={"type": "none"},
            messages=[{"role": "user", "content": ASK},
                      {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                      {"role": "user", "content": [{"type": "tool_result",
                                                    "tool_use_id": uses[0].id,
                                                    "content": "Sunny, 21 degrees."}]}])
    assert any(b.type == "text" and b.text for b in second.content)


async def test_errors_come_in_each_apis_own_shape(qwen, http):
    key = {"x-api-key": "k-agents"}
    cases = [
        ("/v1/messages", {"model": QWEN, "messages": []}, key, 400, "invalid_request_error"),
        ("/v1/messages", {"model": QWEN, "max_tokens": 8,
                          "messages": [{"role": "user", "content": "x"}]},
         {"x-api-key": "wrong"}, 401, "authentication_error"),
        ("/v1/messages", {"model": "nope", "max_tokens": 8,
                          "messages": [{"role": "user", "content": "x"}]}, key, 404,
         "not_found_error"),
        ("/v1/messages", {"model": QWEN, "max_tokens": 8,
                          "messages": [{"role": "user", "content": "x"}]},
         {**key, "anthropic-version": "yesterday"}, 400, "invalid_request_error"),
        ("/v1/messages/count_tokens", {"model": QWEN, "max_tokens": 3, "messages": [
            {"role": "user", "content": "x"}]}, key, 400, "invalid_request_error"),
    ]
    for path, body, headers, status, kind in cases:  # "nope": neither a model nor an alias
        async with http.post(qwen + path, json=body, headers=headers) as resp:
            error = await resp.json()
        assert (resp.status, error["type"], error["error"]["type"]) == (status, "error", kind)
    async with http.post(qwen + "/v1/responses", json={"model": QWEN, "input": "x",
                                                       "store": True},
                         headers={"Authorization": "Bearer k-agents"}) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "store"
    async with http.get(qwen + "/health") as resp:
        assert resp.status == 200  # still up


async def test_a_prompt_past_the_context_is_said_so(qwen):
    long = "word " * 3000  # over the 2,048-token context
    async with _anthropic(qwen) as client:
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
            await client.messages.create(model=QWEN, max_tokens=8,
                                         messages=[{"role": "user", "content": long}])
    async with _openai(qwen) as client, client.responses.stream(model=QWEN,
                                                                 input=long) as stream:
        kinds = [event.type async for event in stream if event.type != "error"]
    assert kinds[-1] == "response.failed"


async def test_a_long_prompt_gets_pings_before_the_answer(qwen, http, monkeypatch):
    from vps_appliance.http import handlers
    monkeypatch.setattr(handlers, "KEEPALIVE_SECONDS", 0.02)  # the prompt takes longer
    body = {"model": QWEN, "max_tokens": 4, "stream": True,
            "messages": [{"role": "user", "content": "def f(x):\n    return x\n" * 40}]}
    async with http.post(qwen + "/v1/messages", json=body,
                         headers={"x-api-key": "k-agents"}) as resp:
        assert resp.status == 200
        names = [line.removeprefix(b"event: ").strip() async for line in resp.content
                 if line.startswith(b"event: ")]
    first = names.index(b"content_block_start")
    assert names[0] == b"message_start" and b"ping" in names[:first], names
    assert names[-1] == b"message_stop"


async def test_a_small_model_writing_its_tool_call_again_is_ended_at_the_repeat(qwen, http):
    """Claude Code's turn after a Read result (recorded): the 0.5B writes the same call
    again and again; the answer ends at the first repeat, as one tool call."""
    from pathlib import Path

    recorded = Path(__file__).parent / "data/wire/agents/claude_code_after_read.json"
    body = json.loads(recorded.read_text())["body"] | {
        "model": QWEN, "stream": False, "max_tokens": 300, "temperature": 0.0}
    async with http.post(qwen + "/v1/messages?beta=true", json=body,
                         headers={"x-api-key": "k-agents"}) as resp:
        made = await resp.json()
    assert resp.status == 200, made
    assert made["stop_reason"] == "tool_use", made  # before: "max_tokens", 300 tokens of text
    assert [(b["type"], b["name"]) for b in made["content"]] == [("tool_use", "Read")]
    assert made["usage"]["output_tokens"] < 150, made["usage"]


async def test_the_stop_sequence_hit_is_named_among_several(qwen):
    async with _anthropic(qwen) as client:
        made = await client.messages.create(
            model=QWEN, max_tokens=48, stop_sequences=["zzz", "5"],
            messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}])
    assert (made.stop_reason, made.stop_sequence) == ("stop_sequence", "5"), made


async def test_a_held_back_tool_call_is_not_a_ping_a_token(qwen, http):
    """While a tool call's text is held back the engine reports life every token; the
    client gets a ping at most every KEEPALIVE_SECONDS (it was one a token: 83 KB a
    minute of pings to Claude Code)."""
    import time

    from vps_appliance.http import handlers
    tool = {"name": "get_weather", "description": "Weather in a city.",
            "input_schema": WEATHER["parameters"]}
    body = {"model": QWEN, "max_tokens": 48, "stream": True, "tools": [tool],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "messages": [{"role": "user", "content": ASK}]}
    started = time.monotonic()
    async with http.post(qwen + "/v1/messages", json=body,
                         headers={"x-api-key": "k-agents"}) as resp:
        names = [line.removeprefix(b"event: ").strip() async for line in resp.content
                 if line.startswith(b"event: ")]
    elapsed = time.monotonic() - started
    assert b"content_block_start" in names and names[-1] == b"message_stop"
    assert names.count(b"ping") <= 1 + elapsed / handlers.KEEPALIVE_SECONDS, names


async def test_a_free_form_tool_and_its_past_call_reach_the_model(qwen):
    patch = {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    past = [{"role": "user", "content": "Add a line to a.py."},
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
             "input": "*** Begin Patch\n*** Add File: a.py\n+x = 1\n*** End Patch"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done."}]
    async with _openai(qwen) as client:
        made = await client.responses.create(model=QWEN, input=past, tools=[patch],
                                             max_output_tokens=16)
    assert made.status in ("completed", "incomplete") and made.output


async def test_the_orchestrator_routes_the_agents_own_model_names(backend, start_orchestrator):
    url = await start_orchestrator(qwen_stack_settings(backend, "k-agents"))
    async with _anthropic(url, **{"anthropic-beta": "claude-code-20250219,unknown-beta"}
                          ) as client:
        made = await client.messages.create(  # Claude Code's small side requests use haiku
            model="claude-haiku-4-5", max_tokens=4,
            messages=[{"role": "user", "content": "Say hi."}])
    async with _openai(url) as client:
        answer = await client.responses.create(model="gpt-5-codex", input="Say hi.",
                                               max_output_tokens=4)
    assert made.model == QWEN and made.content[0].text
    assert answer.model == QWEN and answer.output_text


async def test_a_long_prompt_does_not_trip_the_orchestrators_token_timeouts(
        backend, start_orchestrator, monkeypatch):
    """Codex's first prompt takes 43 s here and Claude Code's 289 s: the backend's keep-alives
    (Responses: an SSE comment; Messages: `ping`) keep the orchestrator's between-token
    timeout from taking the evaluation for a stall."""
    import dataclasses

    from pi_appliance.settings import Timeouts
    from vps_appliance.http import handlers
    monkeypatch.setattr(handlers, "KEEPALIVE_SECONDS", 0.05)
    settings = qwen_stack_settings(backend, "k-agents")
    url = await start_orchestrator(dataclasses.replace(
        settings, timeouts=Timeouts(first_token=5.0, between_tokens=0.3)))
    long = "def f(x):\n    return x\n" * 120  # ~1,400 tokens: well over 0.3 s to evaluate
    async with _openai(url) as client:
        made = await client.responses.create(model=QWEN, input=long, max_output_tokens=4)
    assert made.output_text and made.usage.input_tokens > 900
    again = [{"role": "user", "content": long + "# again\n"}]
    async with _anthropic(url) as client, client.messages.stream(
            model=QWEN, max_tokens=4, messages=again) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text
