"""Structured output: `response_format` validated, schemas the grammar cannot enforce refused
by name, and the real Qwen2.5-Coder's answers parsing and matching their schema (plain and
speculative decoding, streamed and not)."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest
from conftest import REAL_MODEL_CACHE, spec

from vps_appliance import models
from vps_appliance.engine import Control, Done, ModelSlot, Piece, load_llama
from vps_appliance.errors import BadRequest
from vps_appliance.metrics import Metrics
from vps_appliance.protocol import GenerationParams
from vps_appliance.sampling import SamplerSpec
from vps_appliance.settings import Sampling
from vps_appliance.speculative import DraftConfig
from vps_appliance.structured import ResponseFormat, grammar, parse_response_format, unsupported

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
    assert grammar(parse_response_format({"type": "text"})) is None
    assert grammar(parse_response_format(None)) is None
    assert "root ::=" in grammar(parse_response_format({"type": "json_object"}))


@pytest.mark.parametrize("value", [
    {"type": "sound"}, "json_object", {"type": "json_schema"},
    {"type": "json_schema", "json_schema": {"schema": PERSON}},
    {"type": "json_schema", "json_schema": {"name": "has space", "schema": PERSON}},
    {"type": "json_schema", "json_schema": {"name": "p", "schema": []}},
    {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON, "strict": "yes"}},
])
def test_malformed_response_format_is_a_400_naming_it(value):
    with pytest.raises(BadRequest) as err:
        parse_response_format(value)
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
        grammar(ResponseFormat("json_schema", "s", schema))
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
    assert "root ::=" in grammar(ResponseFormat("json_schema", "owner", schema))


# --- the real model, below the HTTP layer ------------------------------------------------

@pytest.fixture(scope="module")
def qwen_path():
    return models.resolve("qwen2.5-coder-0.5b-instruct", REAL_MODEL_CACHE)


@pytest.fixture
async def qwen_slot(qwen_path):
    slot = ModelSlot(spec("qwen", qwen_path, n_ctx=1024,
                          sampling=Sampling(temperature=0.0, max_tokens=120)),
                     path_of=lambda s: s.path, loader=load_llama, max_queue=2,
                     token_buffer=64, metrics=Metrics(), clock=time.monotonic)
    yield slot
    slot.close()


def _params(**kw) -> GenerationParams:
    base = dict(max_tokens=120, temperature=0.0, top_p=1.0, top_k=40, min_p=0.05,
                repeat_penalty=1.0, stop=(), seed=None)
    return GenerationParams(**{**base, **kw})


async def _answer(slot: ModelSlot, question: str, control: Control, **params) -> tuple[str, Done]:
    model = await slot.model()
    from vps_appliance.chat import chat_tokens

    tokens, stops = chat_tokens(model.llm, model.formatter,
                                [{"role": "user", "content": question}])
    parts = []
    async for event in slot.generate(tokens, _params(**params), 120, stops, control):
        if isinstance(event, Piece):
            parts.append(event.text)
        else:
            assert isinstance(event, Done), event
            return "".join(parts), event
    raise AssertionError("no terminal event")


QUESTION = "Describe Ann, 31, who writes Python and Go, as JSON."


async def test_schema_answer_parses_and_validates(qwen_slot):
    rule = grammar(ResponseFormat("json_schema", "person", PERSON))
    text, done = await _answer(qwen_slot, QUESTION, Control(samplers=SamplerSpec(grammar=rule)))
    assert done.finish_reason == "stop"
    jsonschema.validate(json.loads(text), PERSON)


async def test_schema_answer_validates_with_drafting(qwen_slot):
    """Drafts are verified through the grammar too: every accepted token passed it. (The text
    may differ from plain decoding's where batched logits do: see the README.)"""
    rule = grammar(ResponseFormat("json_schema", "person", PERSON))
    plain, _ = await _answer(qwen_slot, QUESTION, Control(samplers=SamplerSpec(grammar=rule)))
    drafting = Control(samplers=SamplerSpec(grammar=rule),
                       drafting=DraftConfig(enabled=True, draft_min=1, draft_max=8),
                       prediction=tuple((await qwen_slot.model()).llm.tokenize(
                           plain.encode(), add_bos=False, special=False)))
    drafted, done = await _answer(qwen_slot, QUESTION, drafting)
    assert done.usage.accepted_prediction_tokens > 0
    jsonschema.validate(json.loads(drafted), PERSON)
