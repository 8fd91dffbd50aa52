"""The shared OpenAI wire format: every field honoured or refused per tier, unknown fields
refused, the table of docs/openai-fields.md generated from the module, errors that cross
processes."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import pytest

from cerebrum import openai
from cerebrum.generation.request import ToolCall
from cerebrum.openai.fields import FIELDS, HONOURED, NO_OP, PASSED, REFUSED, markdown_table
from cerebrum.openai.fold import Folder
from cerebrum.openai.options import stream_options

FIELDS_DOC = Path(__file__).resolve().parents[2] / "docs" / "openai-fields.md"
BASE = {"chat": {"messages": [{"role": "user", "content": "hi"}]}, "completion": {"prompt": "x"}}
# A valid value for each field that asks for something (not OpenAI's default).
SAMPLES: dict[str, Any] = {
    "model": "m", "suffix": "y", "stream": True, "stream_options": {"include_usage": True},
    "max_tokens": 5, "max_completion_tokens": 6, "temperature": 0.5, "top_p": 0.5, "n": 2,
    "stop": ["\n"], "seed": 3, "presence_penalty": 0.5, "frequency_penalty": 0.5,
    "logit_bias": {"42": -100}, "logprobs": True, "top_logprobs": 2,
    "response_format": {"type": "json_object"},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "auto", "parallel_tool_calls": False,
    "functions": [{"name": "f", "parameters": {}}], "function_call": "auto", "user": "u1",
    "metadata": {"k": "v"}, "store": True, "service_tier": "flex", "echo": True, "best_of": 2,
    "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
    "reasoning_effort": "low", "web_search_options": {},
    "prediction": {"type": "content", "content": "x"}, "top_k": 5, "min_p": 0.1,
    "repeat_penalty": 1.1, "speculative": False, "cerebrum": {"context": "raw"},
    "language": "rust",
}
# Fields a sample needs beside it, and samples that differ by endpoint.
COMPANIONS = {"stream_options": {"stream": True}, "top_logprobs": {"logprobs": True},
              "tool_choice": {"tools": SAMPLES["tools"]},
              "parallel_tool_calls": {"tools": SAMPLES["tools"]}}
BY_KIND = {("logprobs", "completion"): 2}
# Honoured fields read by the renderer (cerebrum.openai.render) rather than into the request.
RENDERED = {"stream_options": stream_options}
CASES = [(name, kind) for name, f in FIELDS.items() for kind in sorted(f.kinds)
         if name not in ("messages", "prompt")]


def test_every_field_has_a_sample_and_a_reason():
    assert set(SAMPLES) == set(FIELDS) - {"messages", "prompt"}
    for f in FIELDS.values():
        assert f.backend in (HONOURED, REFUSED, NO_OP) and f.why, f.name
        assert f.orchestrator in (HONOURED, REFUSED, PASSED), f.name


def sample(name: str, kind: str) -> dict[str, Any]:
    """A body asking for `name` (first, so a refusal names it), on top of a minimal request."""
    return {name: BY_KIND.get((name, kind), SAMPLES[name]), **COMPANIONS.get(name, {}),
            **BASE[kind]}


@pytest.mark.parametrize("name, kind", CASES)
def test_the_backend_honours_or_refuses_each_field(name, kind):
    body = sample(name, kind)
    field = FIELDS[name]
    if field.backend == REFUSED:
        with pytest.raises(openai.InvalidRequest, match=f"'{name}' is not supported") as info:
            openai.parse(kind, body, 100, "backend")
        assert info.value.param == name and info.value.code == "unsupported_parameter"
        return
    plain_body = {**COMPANIONS.get(name, {}), **BASE[kind]}
    plain = openai.parse(kind, plain_body, 100, "backend")
    read = openai.parse(kind, body, 100, "backend")
    if name in RENDERED:  # it shapes only OpenAI's rendering of the answer, not the request
        assert read == plain and RENDERED[name](body) != RENDERED[name](plain_body)
    elif field.backend == HONOURED:  # read into the typed request, not accepted and ignored
        assert read != plain, f"{name} is marked honoured but the request does not carry it"
    else:
        assert read == plain


@pytest.mark.parametrize("name, kind", CASES)
def test_the_orchestrator_refuses_only_what_no_upstream_could_honour(name, kind):
    body = sample(name, kind)
    if FIELDS[name].orchestrator == REFUSED:
        with pytest.raises(openai.InvalidRequest) as info:
            openai.parse(kind, body, 100, "orchestrator")
        assert info.value.param == name
    else:
        openai.parse(kind, body, 100, "orchestrator")


@pytest.mark.parametrize("name, value", [
    ("n", 1), ("logprobs", False), ("store", False), ("service_tier", "auto"),
    ("tools", []), ("tool_choice", "none"), ("logit_bias", {}), ("presence_penalty", 0),
    ("frequency_penalty", 0.0), ("modalities", ["text"]), ("parallel_tool_calls", True),
    ("response_format", {"type": "text"}), ("stream_options", {"include_usage": False}),
])
def test_a_refused_fields_default_value_asks_for_nothing_and_is_accepted(name, value):
    openai.parse("chat", {**BASE["chat"], name: value, "stream": True}, 100, "backend")


@pytest.mark.parametrize("value", [True, 1.0, "1"])
def test_a_neutral_value_must_match_its_type(value):
    with pytest.raises(openai.InvalidRequest) as info:
        openai.parse("chat", {**BASE["chat"], "n": value}, 100, "backend")
    assert info.value.param == "n"


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
@pytest.mark.parametrize("kind, name", [("chat", "temprature"), ("chat", "suffix"),
                                        ("completion", "messages"), ("completion", "tools")])
def test_an_unknown_field_is_a_400_naming_it(tier, kind, name):
    with pytest.raises(openai.InvalidRequest, match=f"unknown field '{name}'") as info:
        openai.parse(kind, {**BASE[kind], name: 1}, 100, tier)
    assert info.value.param == name and info.value.code == "unknown_parameter"


def test_tool_messages_are_kept_on_both_tiers():
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "w", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    for tier in ("orchestrator", "backend"):  # the backend renders them with its template
        req = openai.parse("chat", {"messages": messages}, 100, tier)
        assert req.turns[1].tool_calls == (ToolCall("c1", "w", "{}"),)
        assert req.turns[2].call_id == "c1" and req.turns[2].text == "sunny"
        # and back in OpenAI's shape, as an upstream of the orchestrator gets them
        assert openai.chat_messages(req.turns) == messages


@pytest.mark.parametrize("message", [{"role": "user", "content": "x", "name": "bob"},
                                     {"role": "user", "content": "x", "tool_calls": []}])
def test_a_message_field_that_is_not_honoured_is_refused(message):
    with pytest.raises(openai.InvalidRequest, match=r"messages\[0\]") as info:
        openai.parse("chat", {"messages": [message]}, 100, "orchestrator")
    assert info.value.param == "messages"


@pytest.mark.parametrize("body, param", [
    ({"user": 5}, "user"), ({"metadata": {"k": 1}}, "metadata"), ({"metadata": []}, "metadata"),
])
def test_no_op_fields_are_still_checked(body, param):
    with pytest.raises(openai.InvalidRequest) as info:
        openai.parse("chat", {**BASE["chat"], **body}, 100, "backend")
    assert info.value.param == param


def test_the_request_keeps_what_was_sent():
    req = openai.parse("completion", {"prompt": ["a"], "suffix": "b", "stop": ["x"] * 16,
                                      "seed": 2**64 - 1, "max_completion_tokens": 9}, 100)
    assert (req.prompt, req.suffix, len(req.stop), req.sampling.seed, req.max_tokens) == \
        ("a", "b", 16, 2**64 - 1, 9)
    assert dataclasses.replace(req, prompt="z").content == "z"


def test_errors_survive_a_process_boundary():
    err = pickle.loads(pickle.dumps(openai.InvalidRequest("m", "p", "c")))
    assert (str(err), err.param, err.code) == ("m", "p", "c")
    body = pickle.loads(pickle.dumps(openai.InvalidBody("bad", "invalid_json")))
    assert (str(body), body.code, body.param) == ("bad", "invalid_json", None)


def test_docs_field_table_is_the_modules():
    assert markdown_table() in FIELDS_DOC.read_text(encoding="utf-8"), (
        "docs/openai-fields.md's 'OpenAI request fields' table is stale: paste "
        "`python -m cerebrum.openai.fields` into it")


def test_a_stream_folds_into_the_body_openai_would_send():
    folder = Folder()
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "m",
            "system_fingerprint": "fp"}
    for choices in (
        [{"index": 0, "delta": {"role": "assistant", "content": "He"}, "finish_reason": None,
          "logprobs": {"content": [{"token": "He", "logprob": -0.1}]}},
         {"index": 1, "delta": {"role": "assistant", "tool_calls": [
             {"index": 0, "id": "call_1", "type": "function",
              "function": {"name": "weather", "arguments": "{\"ci"}}]}}],
        [{"index": 0, "delta": {"content": "llo"}, "finish_reason": "stop",
          "logprobs": {"content": [{"token": "llo", "logprob": -0.2}]}},
         {"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {
             "arguments": "ty\": \"Oslo\"}"}}]}, "finish_reason": "tool_calls"}],
        [],  # stream_options.include_usage: the last chunk has no choices, only usage
    ):
        folder.add({**base, "choices": choices,
                    **({} if choices else {"usage": {"total_tokens": 9}})})
    assert folder.body() == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "m",
        "system_fingerprint": "fp", "usage": {"total_tokens": 9},
        "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "Hello"},
             "logprobs": {"content": [{"token": "He", "logprob": -0.1},
                                      {"token": "llo", "logprob": -0.2}]}},
            {"index": 1, "finish_reason": "tool_calls", "logprobs": None,
             "message": {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "call_1", "type": "function",
                  "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]}}]}


def test_a_text_completion_stream_folds_its_legacy_logprobs():
    folder = Folder()
    for text, finish in (("a", None), ("b", "length")):
        folder.add({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "text": text, "finish_reason": finish,
                                 "logprobs": {"tokens": [text], "token_logprobs": [-1.0]}}]})
    choice = folder.body()["choices"][0]
    assert folder.body()["object"] == "text_completion"
    assert (choice["text"], choice["finish_reason"]) == ("ab", "length")
    assert choice["logprobs"] == {"tokens": ["a", "b"], "token_logprobs": [-1.0, -1.0]}
