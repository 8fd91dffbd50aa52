"""Structured output: `response_format` validated, schemas the grammar cannot enforce refused
by name, and the real Qwen2.5-Coder's answers parsing and matching their schema (plain and
speculative decoding, streamed and not)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import base_url, spec, sse_events

from cerebrum.generation.request import Output
from cerebrum.openai import InvalidRequest
from cerebrum.openai.options import output, response_format
from vps_appliance.engine.structured import grammar, unsupported
from vps_appliance.errors import BadRequest
from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer"},
        "languages": {"type": "array", "items": {"type": "string", "enum": ["python", "c",
                                                                             "rust", "go"]},
                      "minItems": 1, "maxItems": 3},
        "email": {"type": ["string", "null"]},
    },
    "required": ["name", "age", "languages", "email"],
    "additionalProperties": False,
}


def test_text_is_no_grammar_and_json_object_is_any_object():
    assert grammar(output(response_format({"type": "text"}))) is None
    assert grammar(output(response_format(None))) is None
    assert "root ::=" in grammar(output(response_format({"type": "json_object"})))


@pytest.mark.parametrize("value", [
    {"type": "sound"}, "json_object", {"type": "json_schema"},
    {"type": "json_schema", "json_schema": {"schema": PERSON}},
    {"type": "json_schema", "json_schema": {"name": "has space", "schema": PERSON}},
    {"type": "json_schema", "json_schema": {"name": "p", "schema": []}},
    {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON, "strict": "yes"}},
])
def test_malformed_response_format_is_a_400_naming_it(value):
    with pytest.raises(InvalidRequest) as err:
        response_format(value)
    assert err.value.param == "response_format"


@pytest.mark.parametrize(("schema", "named"), [
    ({"type": "object", "patternProperties": {"^x": {"type": "string"}}},
     "#: 'patternProperties'"),
    ({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}},
     "#/properties/n: 'minimum'"),
    ({"$ref": "https://example.com/person.json"}, "'$ref' \"https://example.com/person.json\""),
    ({"type": "string", "format": "email"}, "'format' \"email\""),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
     "'required' names \"b\""),
    ({"type": "object", "properties": {"a": {}}, "anyOf": [{"required": ["a"]}]},
     "'properties' alongside 'anyOf'"),
    ({"type": "string", "pattern": "[a-z]+"}, "'pattern' must be anchored"),
])
def test_what_the_grammar_cannot_enforce_is_named(schema, named):
    assert any(named in problem for problem in unsupported(schema))
    with pytest.raises(BadRequest) as err:
        grammar(Output("json_schema", "s", schema))
    assert err.value.param == "response_format" and named in str(err.value)


def test_pydantic_style_schemas_are_accepted():
    schema = {"$defs": {"Pet": {"properties": {"kind": {"enum": ["cat", "dog"], "title": "Kind",
                                                        "type": "string"}},
                                "required": ["kind"], "title": "Pet", "type": "object"}},
              "properties": {"owner": {"title": "Owner", "type": "string"},
                             "pet": {"$ref": "#/$defs/Pet"},
                             "nick": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                      "default": None, "title": "Nick"},
                             "born": {"format": "date", "type": "string"}},
              "required": ["owner", "pet", "nick", "born"], "title": "Owner",
              "type": "object", "additionalProperties": False}
    assert list(unsupported(schema)) == []
    assert "root ::=" in grammar(Output("json_schema", "owner", schema))


# --- the real model over HTTP -------------------------------------------------------------

@pytest.fixture
async def qwen(start_backend, qwen_path):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=1024,
                                      sampling=Sampling(temperature=0.0, max_tokens=120)))
    return base_url(server)


QUESTION = "Describe Ann, 31, who writes Python and Go, as JSON."


def _chat(fmt: dict, **extra) -> dict:
    return {"messages": [{"role": "user", "content": QUESTION}], "response_format": fmt,
            **extra}


def _schema(schema: dict, **extra) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema,
                                                   "strict": True, **extra}}


async def test_schema_answer_parses_and_validates(qwen, http):
    async with http.post(qwen + CHAT, json=_chat(_schema(PERSON))) as resp:
        assert resp.status == 200, await resp.text()
        choice = (await resp.json())["choices"][0]
    assert choice["finish_reason"] == "stop"
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


async def test_streamed_schema_answer_parses_and_validates(qwen, http):
    async with http.post(qwen + CHAT, json=_chat(_schema(PERSON), stream=True)) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    chunks = [e for e in events if isinstance(e, dict)]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    jsonschema.validate(json.loads(text), PERSON)


async def test_json_object_answer_is_an_object(qwen, http):
    body = _chat({"type": "json_object"}, temperature=0.8, seed=3)
    async with http.post(qwen + CHAT, json=body) as resp:
        assert resp.status == 200
        content = (await resp.json())["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content), dict)


async def test_schema_answer_validates_with_drafting(qwen, http):
    """Drafts are verified through the grammar too: every accepted token passed it."""
    async with http.post(qwen + CHAT, json=_chat(_schema(PERSON))) as resp:
        plain = (await resp.json())["choices"][0]["message"]["content"]
    body = _chat(_schema(PERSON), prediction={"type": "content", "content": plain})
    async with http.post(qwen + CHAT, json=body) as resp:
        data = await resp.json()
    assert data["usage"]["completion_tokens_details"]["accepted_prediction_tokens"] > 0
    jsonschema.validate(json.loads(data["choices"][0]["message"]["content"]), PERSON)


@pytest.mark.parametrize(("fmt", "named"), [
    ({"type": "sound"}, "'response_format' must be"),
    (_schema({"type": "object", "patternProperties": {"^x": {"type": "string"}}}),
     "'patternProperties'"),
])
async def test_bad_response_format_is_a_400_naming_it(qwen, http, fmt, named):
    async with http.post(qwen + CHAT, json=_chat(fmt)) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == "response_format" and named in error["message"]
