"""Anthropic's Messages wire format (cerebrum.anthropic): recorded `anthropic` SDK bodies and
hand-written Claude-Code-like ones parsed field by field, bad bodies refused naming the field,
the billing line neutralised, headers, errors, the field table's doc, and the rendered
stream and body, read back by the real `anthropic` SDK from a server on 127.0.0.1:0."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from agent_cases import GOOD, MODEL
from agent_cases import MESSAGES_BAD as BAD
from aiohttp import web
from conftest import base_url
from hypothesis import given, settings
from hypothesis import strategies as st
from table_cases import matches, plain

from cerebrum import anthropic as wire
from cerebrum.anthropic.fields import FIELDS, markdown_table
from cerebrum.anthropic.render import Render, frame
from cerebrum.generation.errors import InvalidRequest
from cerebrum.generation.events import (
    Event,
    Failure,
    Finish,
    KeepAlive,
    TextDelta,
    Timing,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "tests" / "data" / "wire"
SDK_CASES: list[dict[str, Any]] = json.loads((WIRE / "anthropic_sdk.json").read_text())
CLAUDE_CODE: dict[str, Any] = json.loads((WIRE / "claude_code_like.json").read_text())
CC_CASES: list[dict[str, Any]] = CLAUDE_CODE["cases"]
ALL_CASES = [{**c, "client": "sdk"} for c in SDK_CASES] + [
    {**c, "client": "claude_code_like"} for c in CC_CASES]


def _parser(endpoint: str) -> Any:
    return wire.parse_count_tokens if endpoint.startswith("/v1/messages/count_tokens") \
        else wire.parse


def request_view(request: Any) -> dict[str, Any]:
    """The internal request as the tables write it: turns as [role, text, [[id, name,
    arguments]], call_id, reasoning], tools by name, tool_choice as [mode, name]."""
    view = plain(dataclasses.asdict(request))
    view["turns"] = [[t.role, t.text, [[c.id, c.name, c.arguments] for c in t.tool_calls],
                      t.call_id, t.reasoning] for t in request.turns]
    view["tools"] = [t.name for t in request.tools]
    choice = request.tool_choice
    view["tool_choice"] = None if choice is None else [choice.mode, choice.name]
    schema = request.output.schema
    view["output"]["schema_properties"] = sorted(schema.get("properties", {})) if schema else []
    return view


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{c['client']}:{c['name']}" for c in cases]


# -- requests --------------------------------------------------------------------------------

def test_the_tables_are_recorded_and_not_empty():
    assert len(SDK_CASES) >= 5 and all(c["recorded_with"].startswith("anthropic-python")
                                       for c in SDK_CASES)
    assert {c["endpoint"] for c in SDK_CASES} == {"/v1/messages", "/v1/messages/count_tokens"}
    assert "not recorded" in CLAUDE_CODE["note"].lower()
    for case in ALL_CASES:
        assert case["body"] and case["expect"] and case["headers"], case["name"]


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize("case", ALL_CASES, ids=_ids(ALL_CASES))
def test_bodies_parse_into_the_expected_request(case, tier):
    request = _parser(case["endpoint"])(case["body"], tier)
    assert request.kind == "chat" and request.n == 1
    assert matches(request_view(request), case["expect"], case["name"]) == []


@pytest.mark.parametrize("case", ALL_CASES, ids=_ids(ALL_CASES))
def test_the_clients_headers_are_well_formed_and_carry_the_key(case):
    assert wire.check_headers(case["headers"]) == "sk-ant-test-key"


def test_claude_codes_fields_each_land_where_documented():
    first = wire.parse(CC_CASES[0]["body"])
    assert first.max_tokens == 32000  # carried as asked: the tier clips it to the context
    assert first.tools[0].parameters["required"] == ["command"]
    assert first.tools[0].description.startswith("Executes a given bash command")
    system = first.turns[0].text
    assert system.startswith("You are Claude Code") and "billing" not in system
    later = wire.parse(CC_CASES[1]["body"])
    # The system message inside `messages` stays in place, between the turns around it.
    roles = [t.role for t in later.turns]
    assert roles == ["system", "user", "assistant", "tool", "user", "system", "assistant",
                     "tool"]
    call = later.turns[2].tool_calls[0]
    assert json.loads(call.arguments) == CC_CASES[1]["body"]["messages"][1]["content"][3][
        "input"]
    # redacted_thinking is dropped; the readable thinking is the turn's reasoning.
    assert later.turns[2].reasoning == "Run the tests first to see what fails."


def _with_billing(body: dict[str, Any], line: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["system"][0]["text"] = line
    return out


def test_the_billing_line_does_not_change_the_request():
    body = CC_CASES[1]["body"]
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header:")
    one = wire.parse(_with_billing(body, "x-anthropic-billing-header: cc_version=2.1.37.0d9; "
                                         "cc_entrypoint=cli; cch=fa690;"))
    two = wire.parse(_with_billing(body, "x-anthropic-billing-header: cc_version=2.1.37.0d9; "
                                         "cc_entrypoint=cli; cch=1b2c3;"))
    three = wire.parse(_with_billing(body, "x-anthropic-billing-header: cc_version=2.1.181."
                                           "73f; cc_entrypoint=sdk-cli;"))
    assert one == two == three
    assert not any("cch=" in t.text or "cc_version" in t.text for t in one.turns)
    # A proxy may prepend the line to the identity block, or send a string system.
    joined = copy.deepcopy(body)
    joined["system"] = [{"type": "text", "text": "x-anthropic-billing-header: cch=00000;\n"
                         + body["system"][1]["text"]}, body["system"][2]]
    as_string = {**body, "system": "x-anthropic-billing-header: cch=99999;\n"
                 + body["system"][1]["text"] + "\n\n" + body["system"][2]["text"]}
    assert wire.parse(joined) == wire.parse(as_string) == one
    # In a system message inside `messages` too; elsewhere the text is the user's own.
    inside = {**body, "messages": [*body["messages"], {
        "role": "system", "content": "x-anthropic-billing-header: cch=abcde;"}]}
    assert wire.parse(inside).turns == one.turns
    quoted = "x-anthropic-billing-header: cch=abcde;"
    user = wire.parse({"model": "m", "max_tokens": 8,
                       "messages": [{"role": "user", "content": quoted}]})
    assert user.turns[0].text == quoted


def test_text_blocks_are_one_text_and_consecutive_turns_merge():
    as_blocks = wire.parse({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}]}]})
    as_string = wire.parse({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "a\n\nb"}]})
    two_messages = wire.parse({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})
    assert as_blocks == as_string == two_messages
    prefill = wire.parse({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]})
    assert prefill.turns[-1].role == "assistant"


def test_system_messages_before_the_first_answer_go_first_and_later_ones_stay():
    def roles_and_texts(messages: list[dict]) -> list[tuple[str, str]]:
        parsed = wire.parse({"model": "m", "max_tokens": 8, "system": "S", "messages": messages})
        return [(t.role, t.text) for t in parsed.turns]

    opening = [{"role": "user", "content": "date"}, {"role": "system", "content": "agents"},
               {"role": "user", "content": "task"}, {"role": "system", "content": "more"}]
    first = roles_and_texts(opening)
    assert first == [("system", "S"), ("system", "agents"), ("system", "more"),
                     ("user", "date\n\ntask")]
    later = roles_and_texts([*opening, {"role": "assistant", "content": "ok"},
                             {"role": "system", "content": "late"},
                             {"role": "user", "content": "next"}])
    # The next turn's conversation extends the first's; a later system message stays put.
    assert later[:len(first)] == first
    assert later[len(first):] == [("assistant", "ok"), ("system", "late"), ("user", "next")]


def test_metadata_user_id_keys_the_prompt_cache():
    def key(user_id: str) -> str | None:
        return wire.parse({"model": "m", "max_tokens": 8, "metadata": {"user_id": user_id},
                           "messages": [{"role": "user", "content": "x"}]}).cache_key

    assert key(json.dumps({"device_id": "d", "account_uuid": "", "session_id": "s1"})) == "s1"
    assert key("user_abc_account__session_5e7a-11") == "5e7a-11"
    assert key("just-an-id") == "just-an-id"
    assert key(json.dumps({"device_id": "d"})) == json.dumps({"device_id": "d"})


@pytest.mark.parametrize(("name", "body", "param", "word"), BAD, ids=[b[0] for b in BAD])
def test_bad_bodies_are_refused_naming_the_field(name, body, param, word):
    with pytest.raises(InvalidRequest) as caught:
        wire.parse(body)
    assert caught.value.param == param, str(caught.value)
    assert word.lower() in str(caught.value).lower()
    assert wire.invalid(caught.value)["error"]["type"] == "invalid_request_error"


def test_a_cache_control_is_named_where_it_is_sent():
    for body, name in (({**GOOD, "cache_control": {"type": "x"}}, "'cache_control' must"),
                       ({**GOOD, "messages": [{"role": "user", "content": [
                           {"type": "text", "text": "x", "cache_control": {"type": "x"}}]}]},
                        "messages[0].content[0].cache_control must")):
        with pytest.raises(InvalidRequest) as caught:
            wire.parse(body)
        assert str(caught.value).startswith(name), str(caught.value)


def test_enough_bad_bodies_and_the_good_one_passes():
    assert len(BAD) >= 30
    assert wire.parse(GOOD).turns[0].text == "hi"


def test_count_tokens_takes_its_own_fields():
    count = {k: v for k, v in GOOD.items() if k != "max_tokens"}
    assert wire.parse_count_tokens(count).max_tokens is None
    for key, value in (("max_tokens", 8), ("stream", True), ("stop_sequences", ["x"]),
                       ("metadata", {"user_id": "u"})):
        with pytest.raises(InvalidRequest) as caught:
            wire.parse_count_tokens({**count, key: value})
        assert (caught.value.param, caught.value.code) == (key, "unknown_parameter")
    with pytest.raises(InvalidRequest) as caught:
        wire.parse(count)
    assert caught.value.param == "max_tokens"


def test_no_ops_and_neutral_values_are_accepted():
    body = {**GOOD, "service_tier": "standard_only", "speed": "fast", "inference_geo": "us",
            "container": None, "diagnostics": {"previous_message_id": None},
            "cache_control": {"type": "ephemeral", "ttl": "5m"},
            "context_management": {"edits": [{"type": "clear_tool_uses_20250919",
                                              "trigger": {"type": "input_tokens",
                                                          "value": 30000}}]},
            "thinking": {"type": "disabled"}, "output_config": {"effort": "max"}}
    assert wire.parse(body) == wire.parse(GOOD)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, inner in items:
        out += _paths(inner, (*path, key))
    return out


RICH = {**CC_CASES[1]["body"], "tool_choice": {"type": "tool", "name": "Bash",
                                                "disable_parallel_tool_use": True},
        "stop_sequences": ["END"], "metadata": CC_CASES[0]["body"]["metadata"],
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {}}}}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_paths(RICH)[1:]), JSON, st.booleans())
def test_any_change_to_a_body_parses_or_is_refused_naming_a_field(path, value, count):
    body = copy.deepcopy(RICH)
    into = body
    for key in path[:-1]:
        into = into[key]
    into[path[-1]] = value
    if count:
        body = {k: v for k, v in body.items() if k not in FIELDS or "count_tokens" in
                FIELDS[k].kinds}
    try:
        (wire.parse_count_tokens if count else wire.parse)(body)
    except InvalidRequest as refused:
        assert refused.param in FIELDS, str(refused)


# -- headers and errors ----------------------------------------------------------------------

def test_headers_give_the_key_and_refuse_malformed_ones():
    assert wire.check_headers({}) is None
    assert wire.check_headers({"X-Api-Key": "k1"}) == "k1"
    assert wire.check_headers({"AUTHORIZATION": "Bearer k2"}) == "k2"
    assert wire.check_headers({"x-api-key": "k3", "authorization": "Bearer k3"}) == "k3"
    assert wire.check_headers({"anthropic-beta": "made-up-beta-2099-01-01, another"}) is None
    assert wire.betas({"anthropic-beta": "a-1,b.2"}) == ("a-1", "b.2")
    for headers, param in (({"anthropic-version": "latest"}, "anthropic-version"),
                           ({"anthropic-beta": "a,,b"}, "anthropic-beta"),
                           ({"anthropic-beta": "a b"}, "anthropic-beta"),
                           ({"x-api-key": "has space"}, "x-api-key"),
                           ({"authorization": "Basic dXNlcg=="}, "authorization"),
                           ({"authorization": "Bearer "}, "authorization"),
                           ({"x-api-key": "k1", "authorization": "Bearer k2"},
                            "authorization")):
        with pytest.raises(InvalidRequest) as caught:
            wire.check_headers(headers)
        assert caught.value.param == param, headers


def test_error_bodies_have_anthropics_types():
    types = {status: wire.error_body(status, "m")["error"]["type"]
             for status in (400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 529)}
    assert types == {400: "invalid_request_error", 401: "authentication_error",
                     403: "permission_error", 404: "not_found_error",
                     413: "request_too_large", 422: "invalid_request_error",
                     429: "rate_limit_error", 500: "api_error", 502: "api_error",
                     503: "overloaded_error", 529: "overloaded_error"}
    assert wire.error_body(404, "no model", "req_1") == {
        "type": "error", "error": {"type": "not_found_error", "message": "no model"},
        "request_id": "req_1"}


def test_docs_field_table_is_the_modules():
    assert markdown_table() in (ROOT / "docs" / "anthropic-fields.md").read_text(), (
        "docs/anthropic-fields.md's table is stale: paste `python -m "
        "cerebrum.anthropic.fields` into it")
    assert {"model", "messages", "max_tokens", "system", "tools", "tool_choice", "thinking",
            "metadata", "stop_sequences", "stream", "temperature", "top_p", "top_k",
            "context_management", "output_config", "service_tier"} <= set(FIELDS)


# -- render ----------------------------------------------------------------------------------

USAGE = Usage(prompt_tokens=120, completion_tokens=7, cached_tokens=100)
TEXT: list[Event] = [KeepAlive(), TextDelta("Hel"), TextDelta(""), TextDelta("lo"),
                     Finish("stop", USAGE)]
ONE_CALL: list[Event] = [
    TextDelta("Let me check."), ToolCallStart(0, "call_1", "get_weather"),
    ToolCallArguments(0, '{"city": '), ToolCallArguments(0, '"Oslo"}'), ToolCallEnd(0),
    Finish("tool_calls", USAGE)]
TWO_CALLS: list[Event] = [
    ToolCallStart(0, "call_1", "get_weather"), ToolCallArguments(0, '{"city": "Oslo"}'),
    ToolCallEnd(0), ToolCallStart(1, "call_2", "get_time"), ToolCallArguments(1, "{}"),
    ToolCallEnd(1), Finish("tool_calls", USAGE)]


def _render(**kw: Any) -> Render:
    return Render("msg_req1", MODEL, input_tokens=120, cached_tokens=100, **kw)


def _stream(events: list[Event], render: Render | None = None) -> list[tuple[str, Any]]:
    render = render or _render()
    return [pair for event in events for pair in render.stream(event)]


def _names(pairs: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in pairs]


def test_text_streams_in_anthropics_order_and_shapes():
    pairs = _stream(TEXT)
    assert _names(pairs) == ["message_start", "ping", "content_block_start",
                             "content_block_delta", "content_block_delta",
                             "content_block_stop", "message_delta", "message_stop"]
    assert all(payload["type"] == name for name, payload in pairs)
    start = pairs[0][1]["message"]
    assert start == {"id": "msg_req1", "type": "message", "role": "assistant", "model": MODEL,
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": 20, "output_tokens": 0,
                               "cache_read_input_tokens": 100,
                               "cache_creation_input_tokens": 0}}
    assert pairs[2][1] == {"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}}
    assert [p["delta"] for _, p in pairs[3:5]] == [{"type": "text_delta", "text": "Hel"},
                                                   {"type": "text_delta", "text": "lo"}]
    assert pairs[6][1] == {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"input_tokens": 20, "output_tokens": 7,
                                     "cache_read_input_tokens": 100,
                                     "cache_creation_input_tokens": 0}}


def test_a_tool_call_streams_as_a_tool_use_block():
    pairs = _stream(ONE_CALL)
    assert _names(pairs) == ["message_start", "content_block_start", "content_block_delta",
                             "content_block_stop", "content_block_start",
                             "content_block_delta", "content_block_delta",
                             "content_block_stop", "message_delta", "message_stop"]
    assert pairs[4][1] == {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}
    assert "".join(p["delta"]["partial_json"] for _, p in pairs[5:7]) == '{"city": "Oslo"}'
    assert all(p["index"] == 1 and p["delta"]["type"] == "input_json_delta"
               for _, p in pairs[5:7])
    assert pairs[8][1]["delta"]["stop_reason"] == "tool_use"


def test_two_tool_calls_are_two_blocks():
    pairs = _stream(TWO_CALLS)
    starts = [p for name, p in pairs if name == "content_block_start"]
    assert [(s["index"], s["content_block"]["name"]) for s in starts] == [
        (0, "get_weather"), (1, "get_time")]
    assert [p["index"] for name, p in pairs if name == "content_block_stop"] == [0, 1]
    render = _render()
    for event in TWO_CALLS:
        render.collect(event)
    body = render.body()
    assert body["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}]
    assert body["stop_reason"] == "tool_use"


def test_a_failure_is_an_error_event_and_ends_the_stream():
    pairs = _stream([TextDelta("x"), Failure("the model crashed"), Finish("stop", USAGE)])
    assert _names(pairs) == ["message_start", "content_block_start", "content_block_delta",
                             "error"]
    assert pairs[-1][1] == {"type": "error", "error": {"type": "api_error",
                                                       "message": "the model crashed"}}


def test_running_out_of_context_is_prompt_too_long_never_max_tokens():
    render = _render(context=4096)
    pairs = _stream([TextDelta("x"), Finish("context_exceeded", Usage(4000, 96, 0))], render)
    assert _names(pairs) == ["message_start", "content_block_start", "content_block_delta",
                             "content_block_stop", "error"]
    assert pairs[-1][1]["error"] == {"type": "invalid_request_error",
                                     "message": "prompt is too long: 4097 tokens > 4096 "
                                                "maximum"}
    assert "max_tokens" not in json.dumps(pairs)
    assert render.error is not None and render.error[0] == 400


def test_keep_alives_are_pings_after_the_message_start():
    render = _render()
    assert _names(render.start()) == ["message_start"]
    assert _names(_stream([KeepAlive(), KeepAlive()], render)) == ["ping", "ping"]


def test_stop_reasons_and_the_stop_sequence():
    word = Timing(stop_type="word")
    cases = [(Finish("length", USAGE), (), ("max_tokens", None)),
             (Finish("stop", USAGE, timing=word), ("END",), ("stop_sequence", "END")),
             (Finish("stop", USAGE, timing=word), ("A", "B"), ("stop_sequence", None)),
             (Finish("stop", USAGE, timing=Timing(stop_type="word", stopping_word="B")),
              ("A", "B"), ("stop_sequence", "B")),
             (Finish("stop", USAGE, timing=Timing(stop_type="eos")), ("END",),
              ("end_turn", None))]
    for finish, stops, want in cases:
        delta = _stream([finish], _render(stop_sequences=stops))[-2][1]["delta"]
        assert (delta["stop_reason"], delta["stop_sequence"]) == want


def test_the_body_is_the_stream_folded():
    render = _render()
    for event in ONE_CALL:
        render.collect(event)
    assert render.body() == {
        "id": "msg_req1", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather",
                     "input": {"city": "Oslo"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 0}}
    assert wire.count_tokens_body(42) == {"input_tokens": 42}
    assert frame("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


# -- the real SDK reads what we render --------------------------------------------------------

async def _serve(aiohttp_server: Any, events: list[Event], **kw: Any) -> str:
    """A server answering /v1/messages with `events` rendered (streamed or not) and
    /v1/messages/count_tokens with 42; the request must parse."""

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        req = wire.parse(body)
        render = _render(stop_sequences=req.stop, **kw)
        if not req.stream:
            for event in events:
                render.collect(event)
            if render.error is not None:
                return web.json_response(render.error[1], status=render.error[0])
            return web.json_response(render.body())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            for name, payload in render.stream(event):
                await response.write(frame(name, payload))
        await response.write_eof()
        return response

    async def count(request: web.Request) -> web.Response:
        wire.parse_count_tokens(await request.json())
        return web.json_response(wire.count_tokens_body(42))

    async def refused(request: web.Request) -> web.Response:
        return web.json_response(wire.error_body(400, "'top_k' must be between 0 and 2"),
                                 status=400)

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count)
    app.router.add_post("/refused/v1/messages", refused)
    return base_url(await aiohttp_server(app))


def _client(sdk: Any, url: str) -> Any:
    return sdk.AsyncAnthropic(api_key="sk-ant-test-key", base_url=url, max_retries=0)


ASK = dict(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Weather?"}],
           tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])


async def test_the_sdk_accumulates_our_stream(aiohttp_server):
    sdk = pytest.importorskip("anthropic")
    url = await _serve(aiohttp_server, [KeepAlive(), *ONE_CALL])
    client = _client(sdk, url)
    try:
        async with client.messages.stream(**ASK) as stream:
            message = await stream.get_final_message()
    finally:
        await client.close()
    assert message.id == "msg_req1" and message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Let me check."
    call = message.content[1]
    assert (call.id, call.name, call.input) == ("call_1", "get_weather", {"city": "Oslo"})
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.output_tokens) == (20, 100, 7)


async def test_the_sdk_reads_our_body_count_and_errors(aiohttp_server):
    sdk = pytest.importorskip("anthropic")
    url = await _serve(aiohttp_server, TWO_CALLS)
    client = _client(sdk, url)
    try:
        message = await client.messages.create(**ASK)
        counted = await client.messages.count_tokens(
            model=MODEL, messages=ASK["messages"], tools=ASK["tools"])
        refused = _client(sdk, url + "/refused")
        try:
            with pytest.raises(sdk.BadRequestError) as caught:
                await refused.messages.create(**ASK)
        finally:
            await refused.close()
    finally:
        await client.close()
    assert [(b.name, b.input) for b in message.content] == [
        ("get_weather", {"city": "Oslo"}), ("get_time", {})]
    assert counted.input_tokens == 42
    assert caught.value.body["error"]["type"] == "invalid_request_error"


async def test_the_sdk_raises_on_our_error_events(aiohttp_server):
    sdk = pytest.importorskip("anthropic")
    for events, kind in (([TextDelta("x"), Failure("boom")], "api_error"),
                         ([TextDelta("x"), Finish("context_exceeded", Usage(4000, 96, 0))],
                          "invalid_request_error")):
        url = await _serve(aiohttp_server, events, context=4096)
        client = _client(sdk, url)
        try:
            with pytest.raises(sdk.APIStatusError) as caught:
                async with client.messages.stream(**ASK) as stream:
                    await stream.get_final_message()
        finally:
            await client.close()
        assert caught.value.body["error"]["type"] == kind
