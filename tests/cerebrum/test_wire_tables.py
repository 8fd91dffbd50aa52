"""Table tests from real recorded bodies (tests/data/wire/, recorder scripts beside them):

1. Requests real clients send, parsed into the internal request: the official `openai` SDK's
   chat and completions bodies (`cerebrum.openai.parse`, both tiers; and chat_messages round
   trips), the real llama.vim plugin's `/infill` bodies, llama.vscode's and Continue's
   (`cerebrum.llamacpp.parse_infill` / `parse_completion`). Each case lists the fields it
   expects.
2. Replies of llama.cpp's own llama-server: its `/infill` and `/completion` replies read back
   as events (`cerebrum.llamacpp.events`), and our renderers (`cerebrum.openai.render.Render`,
   `cerebrum.llamacpp.Reply`) fed the same events give every key llama-server's objects have,
   with the same JSON type, but for the differences listed in DIFFERENCES with their reason.

No model runs here: only the recorded files are read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from editors.llama_vim import fim_request as vim_fim_request
from editors.llama_vim import ring_request as vim_ring_request
from table_cases import matches, plain

from cerebrum.generation.events import Event, Finish, TextDelta, Timing, TokenLogprob, Usage
from cerebrum.llamacpp import Reply, events, finish, parse_completion, parse_infill
from cerebrum.openai import Envelope, chat_messages, parse, text_parts
from cerebrum.openai.render import DONE, Render

WIRE = Path(__file__).resolve().parents[1] / "data" / "wire"
CAP = 4096  # max_tokens_cap: above every recorded client's max_tokens (Continue's 4096)


def _load(name: str) -> Any:
    return json.loads((WIRE / name).read_text())


OPENAI_CASES: list[dict[str, Any]] = _load("openai_sdk.json")
NATIVE_CASES: list[dict[str, Any]] = [
    {**case, "client": name.removesuffix(".json")}
    for name in ("llama_vim.json", "llama_vscode.json", "continue.json") for case in _load(name)]
LLAMA_SERVER: dict[str, Any] = _load("llama_server.json")
SERVER_CASES: list[dict[str, Any]] = LLAMA_SERVER["cases"]
NATIVE_REPLIES = [c for c in SERVER_CASES if not c["endpoint"].startswith("/v1/")]
OPENAI_REPLIES = [c for c in SERVER_CASES if c["endpoint"].startswith("/v1/")]


def _ids(cases: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [f"{c.get('client', '')}:{c[key]}".lstrip(":") for c in cases]


def test_the_tables_are_recorded_and_not_empty():
    assert len(OPENAI_CASES) >= 6
    assert {c["endpoint"] for c in OPENAI_CASES} == {"/v1/chat/completions", "/v1/completions"}
    assert {c["client"] for c in NATIVE_CASES} == {"llama_vim", "llama_vscode", "continue"}
    assert {c["endpoint"] for c in NATIVE_CASES} == {"/infill", "/completion"}
    assert {c["name"] for c in SERVER_CASES} == set(DIFFERENCES)
    for case in OPENAI_CASES + NATIVE_CASES:
        assert case["body"] and case["expect"], case["name"]
        assert case["recorded_with"], case["name"]
    for case in SERVER_CASES:
        assert case.get("body") or len(case.get("lines", ())) >= 3, case["name"]


# -- 1. requests ---------------------------------------------------------------------------

def request_view(request: Any) -> dict[str, Any]:
    """The internal request as the tables write it: turns as [role, text, [[id, name,
    arguments]], call_id], tools by name, tool_choice as [mode, name]."""
    view = plain(dataclasses.asdict(request))
    view["turns"] = [[t.role, t.text, [[c.id, c.name, c.arguments] for c in t.tool_calls],
                      t.call_id] for t in request.turns]
    view["tools"] = [t.name for t in request.tools]
    view["tools_strict"] = [t.strict for t in request.tools]
    choice = request.tool_choice
    view["tool_choice"] = None if choice is None else [choice.mode, choice.name]
    schema = request.output.schema
    view["output"]["schema_properties"] = sorted(schema.get("properties", {})) if schema else []
    return view


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize("case", OPENAI_CASES, ids=_ids(OPENAI_CASES))
def test_openai_sdk_bodies_parse_into_the_expected_request(case, tier):
    request = parse(case["kind"], case["body"], CAP, tier)
    assert request.kind == case["kind"]
    assert matches(request_view(request), case["expect"], case["name"]) == []


def _message_view(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    return [message["role"], "" if content is None else text_parts(content),
            [[c["id"], c["function"]["name"], c["function"]["arguments"]]
             for c in message.get("tool_calls") or []], message.get("tool_call_id")]


CHAT_CASES = [c for c in OPENAI_CASES if c["kind"] == "chat"]


@pytest.mark.parametrize("case", CHAT_CASES, ids=_ids(CHAT_CASES))
def test_chat_messages_give_back_the_clients_conversation(case):
    turns = parse("chat", case["body"], CAP).turns
    messages = chat_messages(turns)
    assert [_message_view(m) for m in messages] == [
        _message_view(m) for m in case["body"]["messages"]]
    # And what an upstream gets parses into the same conversation again.
    assert parse("chat", {"messages": messages}, CAP).turns == turns


def fill_view(native: Any) -> dict[str, Any]:
    view = plain(dataclasses.asdict(native.fill))
    view["response_fields"] = plain(native.response_fields)
    return view


@pytest.mark.parametrize("case", NATIVE_CASES, ids=_ids(NATIVE_CASES))
def test_editor_bodies_parse_into_the_expected_fill(case):
    parser = {"/infill": parse_infill, "/completion": parse_completion}[case["endpoint"]]
    native = parser(case["body"], CAP)
    assert matches(fill_view(native), case["expect"], case["name"]) == []


VIM_CASES = [c for c in NATIVE_CASES if c["client"] == "llama_vim"]


def test_the_real_llama_vims_bodies_have_the_emulated_fields():
    # tests/editors/llama_vim.py stands in for the plugin where Vim cannot run: the recorded
    # plugin's bodies carry exactly its fields.
    fim = set(vim_fim_request("", "", "", [], model="", n_indent=0))
    ring = set(vim_ring_request([], model=""))
    kinds = {c["name"].rstrip("_0123456789") for c in VIM_CASES}
    assert kinds == {"fim", "ring_update"}
    for case in VIM_CASES:
        want = fim if case["name"].startswith("fim") else ring
        assert set(case["body"]) == want, (case["name"], set(case["body"]) ^ want)


# -- 2. llama-server's replies -------------------------------------------------------------

def _data(lines: list[str]) -> list[dict[str, Any]]:
    """A recorded stream's JSON objects ([DONE] left out)."""
    assert all(line.startswith("data: ") for line in lines), lines
    return [json.loads(line[6:]) for line in lines if line != f"data: {DONE}"]


def _objects(case: dict[str, Any]) -> list[dict[str, Any]]:
    return _data(case["lines"]) if "lines" in case else [case["body"]]


FULL_NATIVE = [c for c in NATIVE_REPLIES if "response_fields" not in c["request"]]


@pytest.mark.parametrize("case", FULL_NATIVE, ids=_ids(FULL_NATIVE))
def test_llama_server_replies_read_back_as_events(case):
    objects = _objects(case)
    got = [e for obj in objects for e in events(obj)]
    last = objects[-1]
    assert last["stop"] is True and all(o["stop"] is False for o in objects[:-1])
    texts = [e for e in got[:-1] if isinstance(e, TextDelta)]
    assert len(texts) == len(got) - 1, got  # text, then one Finish at the end
    assert "".join(t.text for t in texts) == "".join(o["content"] for o in objects)
    assert texts and "".join(t.text for t in texts)
    end = got[-1]
    assert isinstance(end, Finish)
    assert end.usage == Usage(prompt_tokens=last["tokens_evaluated"],
                              completion_tokens=last["tokens_predicted"],
                              cached_tokens=last["timings"]["cache_n"])
    assert end.reason == ("length" if last["stop_type"] == "limit" else "stop")
    assert end.timing.stop_type == last["stop_type"]
    assert end.timing.tokens_cached == last["tokens_cached"]
    assert end.timing.predict_seconds == pytest.approx(last["timings"]["predicted_ms"] / 1000)


# What our objects lack, or carry as another JSON type, next to llama-server's, per recorded
# reply: "<which object>: <path>: <difference>" → why. Any other difference fails, and so does
# one listed here that is gone.
TIMINGS = ("llama-server's extension to OpenAI's shape: ours sends it where the usage goes, "
           "in a last chunk of its own (choices []) when asked for, else on the finish chunk")
TOKEN_ID = ("llama-server's extension to OpenAI's logprobs: the token id, which OpenAI's "
            "schema does not have")
TOKENS = ("llama-server's token ids of the text: neither llama.vim, llama.vscode nor "
          "Continue reads them, and ours does not expose the vocabulary's ids")
DIFFERENCES: dict[str, dict[str, str]] = {
    "infill_llama_vim_fields": {},
    "infill_body": {
        "body: tokens: missing": TOKENS,
        "body: prompt: missing": "llama-server echoes the whole rendered FIM prompt (repository "
                                 "context included); no client reads it back",
        "body: has_new_line: missing": "llama-server's internal n_indent bookkeeping; no "
                                       "client reads it",
    },
    "infill_stream": {
        "piece: tokens: missing": TOKENS,
        "last: tokens: missing": TOKENS,
        "last: prompt: missing": "llama-server echoes the rendered prompt; no client reads it",
        "last: has_new_line: missing": "llama-server's internal n_indent bookkeeping",
    },
    "completion_body": {
        "body: tokens: missing": TOKENS,
        "body: prompt: missing": "llama-server echoes the prompt the client sent",
        "body: has_new_line: missing": "llama-server's internal n_indent bookkeeping",
    },
    "completion_stream": {
        "piece: tokens: missing": TOKENS,
        "last: tokens: missing": TOKENS,
        "last: prompt: missing": "llama-server echoes the prompt the client sent",
        "last: has_new_line: missing": "llama-server's internal n_indent bookkeeping",
    },
    "chat_body": {},
    "chat_logprobs_body": {
        "body: choices[0].logprobs.content[0].id: missing": TOKEN_ID,
        "body: choices[0].logprobs.content[0].top_logprobs[0].id: missing": TOKEN_ID,
    },
    "chat_stream": {
        "role: choices[0].delta.content: null in llama-server's, string in ours":
            "llama-server announces the role in a chunk of its own (content null); ours sends "
            "the role with the first text, a shape OpenAI's schema allows",
    },
    "text_completion_body": {},
    "text_completion_stream": {
        "finish: usage: object in llama-server's, null in ours":
            "llama-server puts the usage on the chunk with the finish_reason; ours, as OpenAI "
            "documents stream_options.include_usage, sends it in a last chunk of its own "
            "(choices []) and `usage: null` on the others",
        "finish: timings: missing": TIMINGS,
    },
}
# Objects whose contents are not the renderer's: `generation_settings` comes from the handler.
NOT_COMPARED = frozenset({"generation_settings"})


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape_differences(theirs: Any, ours: Any, where: str = "") -> list[str]:
    """Every key of llama-server's object (nested objects, and the first element of arrays,
    too) that ours lacks or has with another JSON type."""
    if isinstance(theirs, list):
        if theirs and ours and isinstance(ours, list):
            return shape_differences(theirs[0], ours[0], f"{where}[0]")
        return []
    if not isinstance(theirs, dict):
        return []
    out = []
    for key, value in theirs.items():
        path = f"{where}.{key}" if where else key
        if key not in ours:
            out.append(f"{path}: missing")
        elif json_type(value) != json_type(ours[key]):
            out.append(f"{path}: {json_type(value)} in llama-server's, "
                       f"{json_type(ours[key])} in ours")
        elif key not in NOT_COMPARED:
            out.extend(shape_differences(value, ours[key], path))
    return out


def _finish(reason: str, usage: dict[str, Any]) -> Finish:
    return Finish(reason, Usage(prompt_tokens=usage["prompt_tokens"],  # type: ignore[arg-type]
                                completion_tokens=usage["completion_tokens"],
                                cached_tokens=usage["prompt_tokens_details"]["cached_tokens"]))


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    content = (choice.get("logprobs") or {}).get("content") or []
    return tuple(TokenLogprob(bytes(e["bytes"]), e["logprob"],
                              tuple((bytes(t["bytes"]), t["logprob"]) for t in e["top_logprobs"]))
                 for e in content)


def openai_events(case: dict[str, Any]) -> list[Event]:
    """The events that make llama-server's recorded reply: its text, then its finish."""
    out: list[Event] = []
    reason, usage = None, None
    for obj in _objects(case):
        usage = obj.get("usage") or usage
        for choice in obj["choices"]:
            text = choice["delta"].get("content") if "delta" in choice else (
                choice["message"]["content"] if "message" in choice else choice["text"])
            if text:
                out.append(TextDelta(text, logprobs=_logprobs(choice)))
            reason = choice["finish_reason"] or reason
    assert reason is not None and usage is not None
    return [*out, _finish(reason, usage)]


def _classify(chunk: dict[str, Any]) -> str:
    if not chunk["choices"]:
        return "usage"
    choice = chunk["choices"][0]
    if choice["finish_reason"] is not None:
        return "finish"
    return "role" if "role" in choice.get("delta", {}) else "text"


def openai_differences(case: dict[str, Any]) -> tuple[list[str], Render, list[Any]]:
    request = case["request"]
    kind = "chat" if case["endpoint"] == "/v1/chat/completions" else "completion"
    render = Render(Envelope.new(kind, "req-1", "qwen", system_fingerprint="b0-test"),
                    with_logprobs=bool(request.get("logprobs")),
                    prompt_chars=len(request.get("prompt", "")),
                    include_usage=bool(request.get("stream_options", {}).get("include_usage")))
    found = []
    if "body" in case:
        for event in openai_events(case):
            render.collect(event)
        ours = render.body()
        found = [f"body: {d}" for d in shape_differences(case["body"], ours)]
        return found, render, [ours]
    payloads = [p for e in openai_events(case) for p in render.stream(e)]
    assert case["lines"][-1] == f"data: {DONE}" and payloads[-1] == DONE
    chunks = [p for p in payloads if isinstance(p, dict)]
    for chunk in _data(case["lines"]):
        label = _classify(chunk)
        mine = [c for c in chunks if _classify(c) == label]
        assert mine, f"ours has no {label} chunk"
        found += [f"{label}: {d}" for d in shape_differences(chunk, mine[0])]
    return list(dict.fromkeys(found)), render, chunks


@pytest.mark.parametrize("case", OPENAI_REPLIES, ids=_ids(OPENAI_REPLIES))
def test_our_openai_replies_have_llama_servers_shape(case):
    found, _, _ = openai_differences(case)
    assert sorted(found) == sorted(DIFFERENCES[case["name"]])


@pytest.mark.parametrize("case", OPENAI_REPLIES, ids=_ids(OPENAI_REPLIES))
def test_our_openai_replies_carry_llama_servers_values(case):
    _, _, ours = openai_differences(case)
    theirs = _objects(case)

    def text(objects: list[dict[str, Any]]) -> str:
        return "".join(
            c.get("text") or (c.get("delta") or c.get("message") or {}).get("content") or ""
            for o in objects for c in o["choices"])

    assert text(ours) == text(theirs) != ""
    reasons = [c["finish_reason"] for o in ours + theirs for c in o["choices"]
               if c["finish_reason"]]
    assert len(reasons) == 2 and reasons[0] == reasons[1]
    usage = next(o["usage"] for o in reversed(theirs) if o.get("usage"))
    mine = next(o["usage"] for o in reversed(ours) if o.get("usage"))
    assert {k: mine[k] for k in usage} == usage


def native_events(case: dict[str, Any]) -> tuple[list[TextDelta], Finish]:
    objects = _objects(case)
    last = objects[-1]
    if "stop" not in last:  # response_fields: only the fields asked for, flat
        timing = Timing(last["timings/prompt_ms"] / 1000, last["timings/predicted_ms"] / 1000,
                        last["tokens_cached"], last["timings/predicted_per_second"], "limit")
        end = Finish("length", Usage(last["timings/prompt_n"], last["timings/predicted_n"], 0),
                     timing=timing)
    else:
        end = finish(last)
    return [TextDelta(o["content"]) for o in objects if o["content"]], end


def native_reply(case: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Our reply to the same events, and its differences from llama-server's."""
    objects = _objects(case)
    last = objects[-1]
    fields = case["request"].get("response_fields")
    reply = Reply("qwen", last.get("tokens_evaluated", 0), {"n_ctx": 2048},
                  response_fields=tuple(fields) if fields else None)
    texts, end = native_events(case)
    if "body" in case:
        ours = reply.body("".join(t.text for t in texts), end)
        return [f"body: {d}" for d in shape_differences(last, ours)], [ours]
    pieces = [reply.piece(t) for t in texts]
    final = reply.final("", end)
    found = [f"piece: {d}" for p, mine in zip(objects[:-1], pieces, strict=True)
             for d in shape_differences(p, mine)]
    found += [f"last: {d}" for d in shape_differences(last, final)]
    return list(dict.fromkeys(found)), [*pieces, final]


@pytest.mark.parametrize("case", NATIVE_REPLIES, ids=_ids(NATIVE_REPLIES))
def test_our_llamacpp_replies_have_llama_servers_shape(case):
    found, _ = native_reply(case)
    assert sorted(found) == sorted(DIFFERENCES[case["name"]])


def _timings(obj: dict[str, Any]) -> dict[str, Any]:
    """`timings`, or its flattened `timings/…` keys (response_fields)."""
    return obj.get("timings") or {k.removeprefix("timings/"): v for k, v in obj.items()
                                  if k.startswith("timings/")}


@pytest.mark.parametrize("case", NATIVE_REPLIES, ids=_ids(NATIVE_REPLIES))
def test_our_llamacpp_replies_carry_llama_servers_values(case):
    # Read back and rendered again, llama-server's reply keeps its text and accounting.
    _, ours = native_reply(case)
    theirs = _objects(case)
    assert len(ours) == len(theirs)
    keys = ("content", "stop", "tokens_predicted", "tokens_evaluated", "stop_type",
            "tokens_cached", "truncated")
    for mine, their in zip(ours, theirs, strict=True):
        assert {k: mine[k] for k in keys if k in their} == {k: their[k] for k in keys
                                                           if k in their}
        # every timing, the rates too (llama-server's count predicted_n - 1 steps)
        timings = _timings(their)
        assert {k: _timings(mine)[k] for k in timings} == pytest.approx(timings)
    assert any(_timings(o) for o in theirs)
