"""Pure wire-format pieces: request validation, budgets, stop scanning, chunk shapes."""

from __future__ import annotations

import pytest

from cerebrum import openai
from cerebrum.generation.events import Usage
from cerebrum.generation.request import Turn
from cerebrum.jsonwire import decode_json
from cerebrum.openai import Envelope, InvalidRequest
from vps_appliance.engine.params import completion_budget, params_of
from vps_appliance.engine.stops import StopScanner
from vps_appliance.engine.tools import template_messages
from vps_appliance.errors import BadRequest, ContextLengthExceeded
from vps_appliance.settings import Sampling

DEFAULTS = Sampling()


def parse_chat(body, defaults, cap):
    return openai.parse("chat", body, cap, "backend")


def parse_completion(body, defaults, cap):
    return openai.parse("completion", body, cap, "backend")


def params(req):
    """The generation parameters the backend runs the request with."""
    return params_of(req.sampling, req.max_tokens, req.stop, DEFAULTS)


def test_chat_request_applies_defaults_and_keeps_messages():
    req = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, DEFAULTS, 100)
    assert req.kind == "chat" and req.model == "m" and not req.stream
    assert req.turns == (Turn("user", "hi"),)
    assert params(req).max_tokens is None
    assert params(req).temperature == DEFAULTS.temperature


def test_chat_request_accepts_text_parts_and_developer_role():
    req = parse_chat({"messages": [
        {"role": "developer",
         "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": "x"}]}, DEFAULTS, 100)
    assert req.turns[0] == Turn("developer", "ab")
    assert template_messages(req.turns)[0] == {"role": "system", "content": "ab"}


def test_completion_request_accepts_single_prompt_array_and_stop_string():
    req = parse_completion({"prompt": ["def f"], "stop": "\n", "max_tokens": 7, "seed": 3,
                            "stream": True}, DEFAULTS, 100)
    assert (req.prompt, params(req).stop, params(req).max_tokens, params(req).seed,
            req.stream) == \
        ("def f", ("\n",), 7, 3, True)


@pytest.mark.parametrize("body, fragment", [
    ({"prompt": "x", "temperature": "hot"}, "'temperature' must be a number"),
    ({"prompt": "x", "temperature": True}, "'temperature' must be a number"),
    ({"prompt": "x", "top_p": 1.5}, "'top_p' must be between"),
    ({"prompt": "x", "max_tokens": 0}, "'max_tokens' must be between 1 and 100"),
    ({"prompt": "x", "max_tokens": 101}, "'max_tokens' must be between 1 and 100"),
    ({"prompt": "x", "max_tokens": 1.5}, "'max_tokens' must be an integer"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "'stop' must be"),
    ({"prompt": "x", "stop": [""]}, "'stop' must be"),
    ({"prompt": "x", "n": 0}, "'n' must be an integer between 1 and 128"),
    ({"prompt": "x", "logprobs": 6}, "'logprobs' must be an integer between 0 and 5"),
    ({"prompt": "x", "stream": "yes"}, "'stream' must be a boolean"),
    ({"prompt": 5}, "'prompt' is required"),
    ({"prompt": "x", "model": 3}, "'model' must be a non-empty string"),
    ({"prompt": "x", "suffix": 3}, "'suffix' must be a string"),
    ({"prompt": "x", "seed": "1"}, "'seed' must be an integer"),
    ({"prompt": "x", "seed": 2**64}, "'seed' must be a 64-bit integer"),
    ({"prompt": "x", "top_k": 2**31}, "'top_k' must be between 0 and 2147483647"),
    ({"prompt": "x", "stop": "s" * 257}, "at most 256 characters"),
])
def test_bad_completion_fields_name_the_field(body, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        parse_completion(body, DEFAULTS, 100)


@pytest.mark.parametrize("messages, fragment", [
    (None, "'messages' is required"),
    ([], "'messages' is required"),
    (["hi"], r"messages\[0\] must be an object"),
    ([{"role": "wizard", "content": "x"}], r"messages\[0\].role"),
    ([{"role": "user", "content": 3}], r"messages\[0\].content"),
    ([{"role": "user", "content": [{"type": "image_url"}]}], "only text parts"),
])
def test_bad_chat_messages_name_the_message(messages, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        parse_chat({"messages": messages}, DEFAULTS, 100)


def test_a_64_bit_seed_is_folded_to_llama_cpps_32_bits():
    assert params(parse_completion({"prompt": "x", "seed": 2**64 - 1}, DEFAULTS, 100)).seed == \
        2**32 - 1
    assert params(parse_completion({"prompt": "x", "seed": -1}, DEFAULTS, 100)).seed == 2**32 - 1
    assert params(parse_completion({"prompt": "x", "seed": 7}, DEFAULTS, 100)).seed == 7


def test_messages_are_capped_at_1024():
    one = {"role": "user", "content": "x"}
    assert len(parse_chat({"messages": [one] * 1024}, DEFAULTS, 100).turns) == 1024
    with pytest.raises(InvalidRequest, match="has 1025 entries; at most 1024") as caught:
        parse_chat({"messages": [one] * 1025}, DEFAULTS, 100)
    assert caught.value.param == "messages"


def test_decode_json_distinguishes_encoding_from_syntax():
    with pytest.raises(InvalidRequest, match="not valid UTF-8") as enc:
        decode_json(b"\xff\xfe{}")
    assert enc.value.code == "invalid_encoding"
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        decode_json(b"{nope")
    with pytest.raises(InvalidRequest, match="empty"):
        decode_json(b"  ")
    assert decode_json('{"a": "é"}'.encode()) == {"a": "é"}


def test_budget_refuses_overflow_and_clips_only_the_default():
    assert completion_budget(10, None, 512, 100) == 90
    assert completion_budget(10, 20, 512, 100) == 20
    with pytest.raises(ContextLengthExceeded, match="100 tokens but the model's context is 100"):
        completion_budget(100, None, 512, 100)
    with pytest.raises(ContextLengthExceeded, match="max_tokens can be at most 40"):
        completion_budget(60, 41, 512, 100)
    with pytest.raises(BadRequest, match="empty"):
        completion_budget(0, None, 512, 100)


def test_stop_scanner_holds_back_partial_matches_and_cuts_at_the_stop():
    s = StopScanner(("</end>",))
    assert s.feed("abc</e") == "abc"
    assert s.feed("x") == "</ex"
    assert s.feed("tail</en") == "tail"
    assert s.feed("d>more") == ""
    assert s.stopped and s.flush() == ""


def test_stop_scanner_flushes_a_held_prefix_at_the_end():
    s = StopScanner(("\n\n",))
    assert s.feed("line\n") == "line"
    assert s.flush() == "\n"


def test_stop_scanner_picks_the_earliest_of_several_stops():
    s = StopScanner(("bb", "a"))
    assert s.feed("xxbba") == "xx"
    assert s.word == "bb"  # the stop that was hit, as llama-server's stopping_word


def test_chat_chunks_have_openai_shape_with_request_id():
    env = Envelope.new("chat", "req-1", "m")
    first = env.chunk("he", first=True)
    assert first["id"] == "chatcmpl-req-1" and first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "he"}
    last = env.chunk(None, finish_reason="stop", usage=Usage(3, 2, 1))
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert last["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                             "prompt_tokens_details": {"cached_tokens": 1},
                             "completion_tokens_details": {"accepted_prediction_tokens": 0,
                                                           "rejected_prediction_tokens": 0}}


def test_completion_body_shape():
    body = Envelope.new("completion", "r", "m").body("text", "length", Usage(1, 1, 0))
    assert body["object"] == "text_completion" and body["id"] == "cmpl-r"
    assert body["choices"][0]["text"] == "text" and body["choices"][0]["finish_reason"] == "length"
