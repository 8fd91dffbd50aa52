"""OpenAI's Responses API wire format (cerebrum.responses), table-driven from real bodies:

1. Requests: the `openai` SDK's recorded `responses.create` / `create(stream=True)` /
   `responses.stream()` / `input_tokens.count` bodies (tests/data/wire/openai_sdk_responses.json,
   recorder beside it) and a Codex-like body written by hand from its described shape
   (codex_like.json, not recorded), parsed field by field under both tiers; bad bodies each
   refused naming the right param; the field table (every field honoured, a no-op or refused,
   docs/responses-fields.md generated from it).
2. Rendering: event sequences (text, a function call, a free-form call, two calls, a failure,
   context exceeded, max_output_tokens) give the Responses stream in order, numbered from 0,
   every item event with its output_index and item id, content events with content_index; the
   real `openai` SDK's stream helper, served our stream on 127.0.0.1:0, accumulates it into the
   final response (text, function and custom tool calls), and reads our non-streamed body.

No model runs here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import openai
import pytest
from agent_cases import BASE, CAP, CUSTOM, FN, item
from agent_cases import RESPONSES_BAD as BAD
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from table_cases import matches, plain

from cerebrum.generation.errors import InvalidRequest
from cerebrum.generation.events import (
    Event,
    Failure,
    Finish,
    KeepAlive,
    TextDelta,
    TokenLogprob,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from cerebrum.responses import (
    Envelope,
    Render,
    error_body,
    input_tokens_body,
    invalid_request_body,
    parse,
    sse,
)
from cerebrum.responses.fields import FIELDS, HONOURED, NO_OP, REFUSED, markdown_table
from cerebrum.responses.freeform import Input

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "tests" / "data" / "wire"
FIELDS_DOC = ROOT / "docs" / "responses-fields.md"


def _load(name: str) -> Any:
    return json.loads((WIRE / name).read_text())


SDK_CASES: list[dict[str, Any]] = _load("openai_sdk_responses.json")
CODEX: dict[str, Any] = _load("codex_like.json")
CODEX_CASES: list[dict[str, Any]] = CODEX["cases"]
ALL_CASES = [*SDK_CASES, *CODEX_CASES]


def test_the_tables_are_recorded_and_not_empty():
    assert len(SDK_CASES) >= 5
    assert {c["sdk_call"] for c in SDK_CASES} == {
        "responses.create", "responses.stream", "responses.input_tokens.count"}
    assert {c["endpoint"] for c in SDK_CASES} == {"/v1/responses", "/v1/responses/input_tokens"}
    assert any(c["body"].get("stream") is True and c["sdk_call"] == "responses.create"
               for c in SDK_CASES)
    for case in SDK_CASES:
        assert case["recorded_with"].startswith("openai-python "), case["name"]
    assert "NOT recorded" in CODEX["about"]
    for case in ALL_CASES:
        assert case["body"] and case["expect"], case["name"]


# -- 1. requests ---------------------------------------------------------------------------

def request_view(request: Any) -> dict[str, Any]:
    """The internal request as the tables write it: turns as [role, text, [[id, name,
    arguments]], call_id, reasoning], tools by name, tool_choice as [mode, name]."""
    view = plain(dataclasses.asdict(request))
    view["turns"] = [[t.role, t.text, [[c.id, c.name, c.arguments] for c in t.tool_calls],
                      t.call_id, t.reasoning] for t in request.turns]
    view["tools"] = [t.name for t in request.tools]
    view["tools_strict"] = [t.strict for t in request.tools]
    view["tools_freeform"] = [t.freeform for t in request.tools]
    choice = request.tool_choice
    view["tool_choice"] = None if choice is None else [choice.mode, choice.name]
    schema = request.output.schema
    view["output"]["schema_properties"] = sorted(schema.get("properties", {})) if schema else []
    return view


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize("case", ALL_CASES, ids=[c["name"] for c in ALL_CASES])
def test_real_bodies_parse_into_the_expected_request(case, tier):
    request = parse(case["body"], CAP, tier, case.get("kind", "create"))
    assert request.kind == "chat"
    assert matches(request_view(request), case["expect"], case["name"]) == []


def test_a_free_form_tool_is_offered_as_a_function_of_one_string():
    body = next(c["body"] for c in CODEX_CASES if c["name"] == "codex_full_session")
    patch = next(t for t in parse(body, CAP).tools if t.name == "apply_patch")
    assert patch.freeform
    assert patch.parameters is not None
    assert patch.parameters["required"] == ["input"]
    assert patch.parameters["properties"]["input"]["type"] == "string"
    # The grammar is shown to the model (not enforced: llama.cpp reads GBNF, not Lark).
    assert "begin_patch hunk+ end_patch" in patch.parameters["properties"]["input"][
        "description"]
    assert patch.description == body["tools"][2]["description"]


def test_tools_the_server_cannot_run_are_not_offered():
    body = next(c["body"] for c in CODEX_CASES if c["name"] == "codex_full_session")
    offered = {t.name for t in parse(body, CAP).tools}
    sent = {t.get("type") for t in body["tools"]}
    assert {"namespace", "local_shell", "web_search", "image_generation"} <= sent
    assert offered == {"shell", "update_plan", "apply_patch"}
    # Only dropped tools: nothing offered, so `auto` means none and `required` cannot be met.
    hosted = {"input": "hi", "tools": [{"type": "web_search"}, {"type": "local_shell"}]}
    assert parse({**hosted, "tool_choice": "auto"}, CAP).choice.mode == "none"
    with pytest.raises(InvalidRequest) as caught:
        parse({**hosted, "tool_choice": "required"}, CAP)
    assert caught.value.param == "tool_choice"


def test_reasoning_items_with_no_text_are_accepted():
    items = [{"role": "user", "content": "hi"},
             {"type": "reasoning", "summary": None, "content": None},
             {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA…"},
             {"type": "message", "role": "assistant", "content": "hello"}]
    assert [(t.role, t.text, t.reasoning) for t in parse({"input": items}, CAP).turns] == [
        ("user", "hi", ""), ("assistant", "hello", "")]
    # A trailing reasoning item with nothing readable adds no turn.
    assert len(parse({"input": items[:2]}, CAP).turns) == 1


def test_a_string_input_and_instructions_are_a_system_and_a_user_turn():
    turns = parse({"instructions": "Be brief.", "input": "hi"}, CAP).turns
    assert [(t.role, t.text) for t in turns] == [("system", "Be brief."), ("user", "hi")]
    assert parse({"instructions": "", "input": "hi"}, CAP).turns[0].role == "user"


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize(("what", "body", "param"), BAD, ids=[b[0] for b in BAD])
def test_bad_bodies_are_refused_naming_the_param(what, body, param, tier):
    if isinstance(body, dict) and "input" not in body:
        body = {**BASE, **body}
    with pytest.raises(InvalidRequest) as caught:
        parse(body, CAP, tier)
    assert caught.value.param == param, (what, str(caught.value))


def test_there_are_at_least_thirty_bad_bodies():
    assert len(BAD) >= 30


@pytest.mark.parametrize(("body", "param", "word"), [
    (item(role="user", content=[{"type": "input_image", "image_url": "x"}]),
     "input[0].content[0]", "input_image"),
    ({"input": [{"type": "web_search_call", "action": {}}]}, "input[0]", "web_search_call"),
    ({"input": "hi", "store": True}, "store", "store"),
    ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id",
     "previous_response_id"),
    ({"input": "hi", "foo": 1}, "foo", "foo"),
])
def test_refusals_name_what_they_refuse(body, param, word):
    with pytest.raises(InvalidRequest) as caught:
        parse(body, CAP)
    assert caught.value.param == param
    assert word in str(caught.value)


def test_unknown_fields_are_unknown_parameters_and_refused_ones_unsupported():
    with pytest.raises(InvalidRequest) as caught:
        parse({"input": "hi", "frobnicate": True}, CAP)
    assert caught.value.code == "unknown_parameter"
    with pytest.raises(InvalidRequest) as caught:
        parse({"input": "hi", "store": True}, CAP)
    assert caught.value.code == "unsupported_parameter"
    # input_tokens has no sampling, no stream: those are unknown there.
    for key, value in (("stream", True), ("temperature", 0.5), ("store", False)):
        with pytest.raises(InvalidRequest) as caught:
            parse({"input": "hi", key: value}, CAP, kind="input_tokens")
        assert (caught.value.param, caught.value.code) == (key, "unknown_parameter")


def test_the_error_body_is_the_responses_apis():
    exc = InvalidRequest("'store' is not supported", "store", "unsupported_parameter")
    assert invalid_request_body(exc) == {"error": {
        "message": "'store' is not supported", "type": "invalid_request_error",
        "param": "store", "code": "unsupported_parameter"}}
    assert set(error_body("m", "server_error", None)["error"]) == {
        "message", "type", "param", "code"}
    assert input_tokens_body(42) == {"object": "response.input_tokens", "input_tokens": 42}


# -- the field table -----------------------------------------------------------------------

# A valid value for each field that asks for something (not OpenAI's default).
SAMPLES: dict[str, Any] = {
    "model": "m", "instructions": "Be brief.", "input": "hi", "tools": [FN, CUSTOM],
    "tool_choice": "required", "parallel_tool_calls": False,
    "text": {"format": {"type": "json_object"}, "verbosity": "high"},
    "reasoning": {"effort": "high", "summary": "detailed"}, "truncation": "auto",
    "previous_response_id": "resp_1", "conversation": {"id": "conv_1"}, "stream": True,
    "stream_options": {"include_obfuscation": True}, "store": True, "background": True,
    "include": ["message.output_text.logprobs"], "prompt_cache_key": "k",
    "prompt_cache_retention": "24h", "service_tier": "priority",
    "client_metadata": {"x-codex-turn-id": "t"}, "metadata": {"k": "v"}, "user": "u",
    "safety_identifier": "h", "temperature": 0.5, "top_p": 0.5, "max_output_tokens": 8,
    "top_logprobs": 3, "max_tool_calls": 2, "prompt": {"id": "pmpt_1"},
}
COMPANIONS = {"tool_choice": {"tools": [FN]}}


def test_every_field_has_a_sample_and_a_reason():
    assert set(SAMPLES) == set(FIELDS)
    for field in FIELDS.values():
        assert field.why, field.name
        assert field.backend in (HONOURED, NO_OP, REFUSED), field.name
        assert field.status("orchestrator") in (HONOURED, NO_OP, REFUSED), field.name


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_field_is_honoured_or_refused_as_its_row_says(name, tier):
    field = FIELDS[name]
    for kind in sorted(field.kinds):
        body = {**BASE, **COMPANIONS.get(name, {}), name: SAMPLES[name]}
        if field.status(tier) == REFUSED:
            with pytest.raises(InvalidRequest) as caught:
                parse(body, CAP, tier, kind)
            assert caught.value.param == name
            for neutral in field.neutral:
                parse({**body, name: neutral}, CAP, tier, kind)
        else:
            parse(body, CAP, tier, kind)


def test_fields_honoured_reach_the_internal_request():
    request = parse({**BASE, **{k: v for k, v in SAMPLES.items() if FIELDS[k].backend
                                != REFUSED}}, CAP)
    assert request.model == "m" and request.stream
    assert [t.role for t in request.turns] == ["system", "user"]
    assert [t.name for t in request.tools] == ["shell", "apply_patch"]
    assert request.choice.mode == "required" and not request.parallel_tool_calls
    assert request.output.type == "json_object"
    assert request.cache_key == "k" and request.max_tokens == 8
    assert (request.sampling.temperature, request.sampling.top_p) == (0.5, 0.5)
    assert (request.logprobs, request.top_logprobs) == (True, 3)
    # top_logprobs without the include has nowhere to go: dropped.
    assert parse({**BASE, "top_logprobs": 3}, CAP).top_logprobs == 0


def test_the_field_table_doc_is_generated_from_the_module():
    assert markdown_table() in FIELDS_DOC.read_text(encoding="utf-8"), (
        "docs/responses-fields.md's table is stale: paste "
        "`python -m cerebrum.responses.fields` into it")


# -- 2. rendering --------------------------------------------------------------------------

USAGE = Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=4)
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+héllo \"x\" \\ 😀\n*** End Patch\n"
PATCH_ARGUMENTS = json.dumps({"input": PATCH})
TOOLS_BODY = {"input": "hi", "tools": [
    {"type": "function", "name": "shell", "parameters": {
        "type": "object", "properties": {"command": {"type": "string"}}}},
    {"type": "custom", "name": "apply_patch"}]}


def _render(events: list[Event], body: dict[str, Any] = TOOLS_BODY) -> tuple[
        list[tuple[str, dict[str, Any]]], Render]:
    render = Render(Envelope.new(parse(body, CAP), "req1", "m"))
    return [pair for event in events for pair in render.stream(event)], render


def _call(call: int, id_: str, name: str, arguments: str, pieces: int = 3) -> list[Event]:
    step = -(-len(arguments) // pieces)  # `pieces` fragments (fewer when it is short)
    fragments = [arguments[i:i + step] for i in range(0, len(arguments), step)]
    return [ToolCallStart(call, id_, name), *(ToolCallArguments(call, f) for f in fragments),
            ToolCallEnd(call)]


TEXT = [TextDelta("Hel"), TextDelta("lo"), Finish("stop", USAGE)]
FUNCTION = [*_call(0, "call_1", "shell", '{"command": "ls -la"}'), Finish("tool_calls", USAGE)]
CUSTOM_CALL = [TextDelta("Patching."),
               *_call(0, "call_2", "apply_patch", PATCH_ARGUMENTS, pieces=7),
               Finish("tool_calls", USAGE)]
TWO_CALLS = [*_call(0, "call_a", "shell", '{"command": "ls"}'),
             *_call(1, "call_b", "shell", '{"command": "pwd"}'), Finish("tool_calls", USAGE)]
FAILURE = [KeepAlive(), TextDelta("Par"), Failure("the model crashed")]
CONTEXT = [Finish("context_exceeded", Usage(9000, 0, 0))]
LENGTH = [TextDelta("Once upon"), Finish("length", USAGE)]

START = ["response.created", "response.in_progress"]
MESSAGE_OPEN = ["response.output_item.added", "response.content_part.added"]
MESSAGE_CLOSE = ["response.output_text.done", "response.content_part.done",
                 "response.output_item.done"]
ORDERS = {
    "text": (TEXT, [*START, *MESSAGE_OPEN, "response.output_text.delta",
                    "response.output_text.delta", *MESSAGE_CLOSE, "response.completed"]),
    "function_call": (FUNCTION, [*START, "response.output_item.added",
                                 *["response.function_call_arguments.delta"] * 3,
                                 "response.function_call_arguments.done",
                                 "response.output_item.done", "response.completed"]),
    "custom_tool_call": (CUSTOM_CALL, [
        *START, *MESSAGE_OPEN, "response.output_text.delta", *MESSAGE_CLOSE,
        "response.output_item.added", "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done", "response.output_item.done",
        "response.completed"]),
    "two_calls": (TWO_CALLS, [*START, *([
        "response.output_item.added", *["response.function_call_arguments.delta"] * 3,
        "response.function_call_arguments.done", "response.output_item.done"] * 2),
        "response.completed"]),
    "failure": (FAILURE, [*START, *MESSAGE_OPEN, "response.output_text.delta", *MESSAGE_CLOSE,
                          "response.failed"]),
    "context_exceeded": (CONTEXT, [*START, "response.failed"]),
    "length": (LENGTH, [*START, *MESSAGE_OPEN, "response.output_text.delta", *MESSAGE_CLOSE,
                        "response.incomplete"]),
}
ITEM_EVENTS = ("response.output_text.", "response.content_part.",
               "response.function_call_arguments.", "response.custom_tool_call_input.")
CONTENT_EVENTS = ("response.output_text.", "response.content_part.")


def _deltas_collapsed(names: list[str]) -> list[str]:
    """Names with runs of custom_tool_call_input.delta collapsed (their count depends on
    where the fragments split escapes)."""
    out: list[str] = []
    for name in names:
        if name == "response.custom_tool_call_input.delta" and out and out[-1] == name:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("case", sorted(ORDERS))
def test_events_render_as_the_responses_stream_in_order(case):
    events, want = ORDERS[case]
    pairs, _ = _render(events)
    assert _deltas_collapsed([name for name, _ in pairs]) == want
    assert [p["sequence_number"] for _, p in pairs] == list(range(len(pairs)))
    items: dict[int, str] = {}
    for name, payload in pairs:
        assert payload["type"] == name
        if name.startswith("response.output_item."):
            assert isinstance(payload["output_index"], int) and payload["item"]["id"]
            items.setdefault(payload["output_index"], payload["item"]["id"])
            assert items[payload["output_index"]] == payload["item"]["id"]
        if name.startswith(ITEM_EVENTS):
            assert items[payload["output_index"]] == payload["item_id"], name
        if name.startswith(CONTENT_EVENTS):
            assert payload["content_index"] == 0, name
    assert sorted(items) == list(range(len(items)))  # output indexes 0, 1, 2, …
    # Nothing after the terminal event.
    _, render = _render(events)
    assert render.stream(TextDelta("late")) == []


def test_the_terminal_events_carry_the_response():
    pairs, render = _render(TWO_CALLS)
    done = pairs[-1][1]["response"]
    assert done == render.body()
    assert done["status"] == "completed" and done["id"] == "resp_req1"
    assert [(i["type"], i["call_id"], i["arguments"]) for i in done["output"]] == [
        ("function_call", "call_a", '{"command": "ls"}'),
        ("function_call", "call_b", '{"command": "pwd"}')]
    assert done["usage"] == {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4},
                             "output_tokens": 7, "output_tokens_details": {
                                 "reasoning_tokens": 0}, "total_tokens": 19}
    failed = _render(CONTEXT)[0][-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "context_length_exceeded"
    crashed = _render(FAILURE)[0][-1][1]["response"]
    assert crashed["error"] == {"code": "generation_failed", "message": "the model crashed"}
    assert crashed["output"][0]["status"] == "incomplete"
    cut = _render(LENGTH)[0][-1][1]["response"]
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_free_form_call_comes_back_as_a_custom_tool_call_with_its_string():
    pairs, render = _render(CUSTOM_CALL)
    deltas = "".join(p["delta"] for n, p in pairs
                     if n == "response.custom_tool_call_input.delta")
    assert deltas == PATCH
    done = next(p for n, p in pairs if n == "response.custom_tool_call_input.done")
    assert done["input"] == PATCH
    call = render.body()["output"][1]
    assert call == {"id": "ctc_req1_1", "type": "custom_tool_call", "status": "completed",
                    "call_id": "call_2", "name": "apply_patch", "input": PATCH}
    # Arguments a model sent without the {"input": …} wrapper are the input as they are.
    raw = _render([*_call(0, "call_3", "apply_patch", PATCH), Finish("tool_calls", USAGE)])
    assert raw[1].body()["output"][0]["input"] == PATCH


def test_text_logprobs_ride_on_the_deltas_and_the_part():
    logprob = TokenLogprob(b"Hi", -0.25, ((b"Hi", -0.25), (b"Yo", -2.0)))
    pairs, render = _render([TextDelta("Hi", logprobs=(logprob,)), Finish("stop", USAGE)])
    delta = next(p for n, p in pairs if n == "response.output_text.delta")
    assert delta["logprobs"] == [{"token": "Hi", "logprob": -0.25, "bytes": [72, 105],
                                  "top_logprobs": [
                                      {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
                                      {"token": "Yo", "logprob": -2.0, "bytes": [89, 111]}]}]
    assert render.body()["output"][0]["content"][0]["logprobs"] == delta["logprobs"]
    # Each payload is a snapshot: the part announced empty stays empty.
    added = next(p for n, p in pairs if n == "response.content_part.added")
    assert added["part"] == {"type": "output_text", "text": "", "annotations": [],
                             "logprobs": []}


def test_the_response_echoes_the_requests_settings():
    body = {"input": "hi", "tools": [CUSTOM], "tool_choice": {"type": "custom",
                                                               "name": "apply_patch"},
            "temperature": 0.3, "max_output_tokens": 9, "prompt_cache_key": "k",
            "parallel_tool_calls": False}
    _, render = _render(TEXT, body)
    out = render.body()
    assert out["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    assert out["tools"] == [{"type": "custom", "name": "apply_patch", "description": None}]
    assert (out["temperature"], out["max_output_tokens"], out["prompt_cache_key"],
            out["parallel_tool_calls"], out["store"]) == (0.3, 9, "k", False, False)


def test_the_rendered_output_parses_back_as_the_next_requests_input():
    # What Codex does: the output items of one response are the next request's input.
    _, render = _render(CUSTOM_CALL)
    output = render.body()["output"]
    turns = parse({**TOOLS_BODY, "input": [{"role": "user", "content": "hi"}, *output, {
        "type": "custom_tool_call_output", "call_id": "call_2", "output": "ok"}]}, CAP).turns
    assert [(t.role, t.text, [(c.id, c.name, c.arguments) for c in t.tool_calls], t.call_id)
            for t in turns] == [("user", "hi", [], None),
                                ("assistant", "Patching.", [("call_2", "apply_patch", PATCH)],
                                 None),
                                ("tool", "ok", [], "call_2")]


@given(st.text(), st.lists(st.integers(min_value=0, max_value=400), max_size=8),
       st.booleans())
def test_a_free_form_input_decodes_whole_wherever_the_arguments_split(text, cuts, ascii_):
    arguments = json.dumps({"input": text}, ensure_ascii=ascii_)
    bounds = sorted({0, len(arguments), *(c % (len(arguments) + 1) for c in cuts)})
    decoder = Input()
    deltas = [decoder.feed(arguments[a:b]) for a, b in pairwise(bounds)]
    deltas.append(decoder.finish())
    assert "".join(deltas) == decoder.text == text


def test_a_free_form_input_decodes_in_linear_time():
    # Escapes, quotes and astral characters, one character per fragment: every character is
    # looked at a bounded number of times (a hang or a quadratic rescan would blow the bound).
    text = 'a"\\\n\u00e9\U0001F600' * 8000  # 48K characters
    arguments = json.dumps({"input": text})
    decoder = Input()
    started = time.perf_counter()
    for c in arguments:
        decoder.feed(c)
    decoder.finish()
    assert decoder.text == text
    assert time.perf_counter() - started < 10  # ~0.15 s here; generous: catches hangs only


def test_a_cut_off_free_form_input_keeps_its_whole_characters():
    decoder = Input()
    decoder.feed('{"input": "ab\\u00e9c\\ud83d')
    assert decoder.finish() == ""
    assert decoder.text == "abéc"


# -- the real openai SDK reads our stream and body -----------------------------------------

def _sse_body(pairs: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(sse(name, payload) for name, payload in pairs)


async def _client(aiohttp_server: Any, reply: web.Response) -> openai.AsyncOpenAI:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return reply

    app = web.Application()
    app.router.add_post("/v1/responses", handle)
    server = await aiohttp_server(app)
    return openai.AsyncOpenAI(api_key="sk-test", max_retries=0,
                              base_url=f"http://127.0.0.1:{server.port}/v1")


def _stream_reply(events: list[Event], body: dict[str, Any] = TOOLS_BODY) -> web.Response:
    return web.Response(body=_sse_body(_render(events, body)[0]),
                        content_type="text/event-stream")


async def test_the_sdks_stream_helper_accumulates_our_stream(aiohttp_server):
    events = [TextDelta("Hel"), TextDelta("lo"),
              *_call(0, "call_1", "shell", '{"command": "ls"}'), Finish("tool_calls", USAGE)]
    client = await _client(aiohttp_server, _stream_reply(events))
    seen = []
    async with client.responses.stream(model="m", input="hi",
                                       tools=TOOLS_BODY["tools"]) as stream:
        async for event in stream:
            seen.append(event.type)
        final = await stream.get_final_response()
    await client.close()
    assert final.output_text == "Hello"
    call = next(i for i in final.output if i.type == "function_call")
    assert (call.call_id, call.name, call.arguments) == ("call_1", "shell", '{"command": "ls"}')
    assert final.status == "completed" and final.usage is not None
    assert final.usage.input_tokens == 12 and final.usage.input_tokens_details.cached_tokens == 4
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    assert "response.output_text.delta" in seen


async def test_the_sdks_stream_helper_takes_a_custom_tool_call(aiohttp_server):
    client = await _client(aiohttp_server, _stream_reply(CUSTOM_CALL))
    async with client.responses.stream(model="m", input="hi",
                                       tools=TOOLS_BODY["tools"]) as stream:
        final = await stream.get_final_response()
    await client.close()
    assert final.output_text == "Patching."
    call = next(i for i in final.output if i.type == "custom_tool_call")
    assert (call.call_id, call.name, call.input) == ("call_2", "apply_patch", PATCH)


async def test_the_sdks_raw_stream_types_every_event(aiohttp_server):
    client = await _client(aiohttp_server, _stream_reply(CUSTOM_CALL))
    stream = await client.responses.create(model="m", input="hi", stream=True)
    events = [event async for event in stream]
    await client.close()
    # Every event parsed into the SDK's own class for its type (none left as the fallback).
    assert all(type(e).__name__.startswith("Response") for e in events)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


async def test_the_sdk_sees_a_failed_stream_as_failed(aiohttp_server):
    client = await _client(aiohttp_server, _stream_reply(CONTEXT))
    async with client.responses.stream(model="m", input="hi") as stream:
        events = [event async for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    await client.close()
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "context_length_exceeded"


async def test_the_sdk_reads_our_non_streamed_body(aiohttp_server):
    render = Render(Envelope.new(parse(TOOLS_BODY, CAP), "req2", "m"))
    for event in [TextDelta("Done."), *_call(0, "call_9", "apply_patch", PATCH_ARGUMENTS),
                  Finish("tool_calls", USAGE)]:
        render.collect(event)
    client = await _client(aiohttp_server, web.json_response(render.body()))
    response = await client.responses.create(model="m", input="hi")
    await client.close()
    assert response.id == "resp_req2" and response.output_text == "Done."
    assert [i.type for i in response.output] == ["message", "custom_tool_call"]
    assert response.output[1].input == PATCH
    assert response.usage is not None and response.usage.total_tokens == 19
