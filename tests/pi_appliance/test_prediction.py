"""Predicted outputs: an edit task's kept code goes upstream as `prediction` (the client's own
as sent, none when turned off), and the `cerebrum` stats report what the upstream drafted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import base_url, orchestrator_settings, spec, sse_events
from faulty import Faulty

from cerebrum.openai import InvalidRequest
from pi_appliance.pipeline import PipelineConfig, prepare
from pi_appliance.planning.plan import Plan, payload_of
from pi_appliance.stats import drafting
from pi_appliance.wire import protocol

CORPUS = Path(__file__).parents[1] / "data" / "corpus"
SEED = (CORPUS / "seed_async_refactor.md").read_text()  # "Refactor this module to async/await"
RENAME = (CORPUS / "py_multi_block.md").read_text()  # "rename get_conn to acquire_connection"
EXPLAIN = (CORPUS / "py_explain_class.md").read_text()
CHAT = "/v1/chat/completions"
OURS = prepare(SEED, PipelineConfig()).prediction
CLIENTS = {"type": "content", "content": [{"type": "text", "text": "def fetch_user("}]}


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 8, **extra}


def sent_prediction(kind: protocol.Kind, body: dict[str, Any]) -> Any:
    creq = protocol.parse(kind, body, 300)
    prepared = prepare(creq.content, PipelineConfig(), mode=creq.context)
    return payload_of(creq, prepared, 8).get("prediction")


@pytest.mark.parametrize("kind, body, expected", [
    ("chat", chat(SEED), {"type": "content", "content": OURS}),
    ("completion", {"prompt": SEED}, {"type": "content", "content": OURS}),
    ("chat", chat(SEED, prediction=CLIENTS), CLIENTS),  # the client's own, as sent
    ("chat", chat(SEED, prediction=CLIENTS, cerebrum={"prediction": False}), CLIENTS),
    ("chat", chat(SEED, cerebrum={"prediction": False}), None),
    ("chat", chat(SEED, cerebrum={"context": "raw"}), None),  # the pipeline is skipped
    ("chat", chat(EXPLAIN), None),  # not an edit: the answer does not repeat the code
])
def test_the_prediction_sent_upstream(kind, body, expected):
    assert OURS and "def fetch_user(" in OURS
    assert sent_prediction(kind, body) == expected


@pytest.mark.parametrize("body, param", [
    (chat("x", cerebrum={"prediction": "no"}), "cerebrum.prediction"),
    (chat("x", cerebrum={"prediction": 0}), "cerebrum.prediction"),
    (chat("x", prediction="def f():"), "prediction"),
    (chat("x", prediction={"type": "text", "content": "x"}), "prediction"),
    (chat("x", prediction={"type": "content", "content": 5}), "prediction"),
    (chat("x", prediction={"type": "content", "content": [{"text": "x"}]}), "prediction"),
    (chat("x", prediction={"type": "content", "content": "x", "extra": 1}), "prediction"),
])
def test_bad_prediction_fields_are_named(body, param):
    with pytest.raises(InvalidRequest, match=f"'{param}'") as info:
        protocol.parse("chat", body, 300)
    assert info.value.param == param


@pytest.mark.parametrize("usage, expected", [
    ({"completion_tokens": 9, "completion_tokens_details": {
        "accepted_prediction_tokens": 5, "rejected_prediction_tokens": 3}}, (8, 5)),
    ({"completion_tokens_details": {"accepted_prediction_tokens": 0,
                                    "rejected_prediction_tokens": 0}}, (0, 0)),
    # Unreported (llama-server; a backend without speculative decoding): unknown, not 0.
    (None, (None, None)),
    ({"completion_tokens": 9}, (None, None)),
    ({"completion_tokens_details": {"reasoning_tokens": 2}}, (None, None)),
    ({"completion_tokens_details": {"accepted_prediction_tokens": 5}}, (None, None)),
    ({"completion_tokens_details": {"accepted_prediction_tokens": True,
                                    "rejected_prediction_tokens": 1}}, (None, None)),
    ({"completion_tokens_details": {"accepted_prediction_tokens": -1,
                                    "rejected_prediction_tokens": 1}}, (None, None)),
    ({"completion_tokens_details": "5"}, (None, None)),
])
def test_drafted_and_accepted_come_from_the_usage_details(usage, expected):
    out = drafting(usage)
    assert (out["drafted_tokens"], out["accepted_tokens"]) == expected


def test_plan_counts_the_prediction_it_sends():
    creq = protocol.parse("chat", chat(SEED, prediction=CLIENTS), 300)
    plan = Plan(creq, None, prepare(SEED, PipelineConfig()),  # type: ignore[arg-type]
                payload_of(creq, prepare(SEED, PipelineConfig()), 8))
    assert plan.prediction_chars == len("def fetch_user(")
    assert Plan(creq, None, plan.prepared, {}).prediction_chars == 0  # type: ignore[arg-type]


@pytest.fixture
async def faulty(aiohttp_server):
    fake = Faulty()
    fake.url = base_url(await aiohttp_server(fake.app()))
    return fake


async def test_an_edit_task_from_the_corpus_reaches_the_upstream_with_its_prediction(
        faulty, start_orchestrator, http):
    url = await start_orchestrator(orchestrator_settings(("fake", faulty.url)))
    async with http.post(url + CHAT, json=chat(SEED, stream=True)) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    prediction = faulty.bodies[-1]["prediction"]
    assert prediction["type"] == "content" and "def fetch_user(" in prediction["content"]
    assert all(line in SEED for line in prediction["content"].split("\n"))  # as given
    assert "omitted" not in prediction["content"]
    stats = events[-2]["cerebrum"]
    assert stats["edit"] is True and stats["prediction_chars"] == len(prediction["content"])
    # The fake reports no completion_tokens_details: unknown, so null rather than 0.
    assert stats["drafted_tokens"] is None and stats["accepted_tokens"] is None


async def test_no_prediction_for_other_tasks_or_when_turned_off(faulty, start_orchestrator,
                                                                http):
    url = await start_orchestrator(orchestrator_settings(("fake", faulty.url)))
    for body in (chat(EXPLAIN), chat(SEED, cerebrum={"prediction": False})):
        async with http.post(url + CHAT, json=body) as resp:
            assert resp.status == 200
            stats = (await resp.json())["cerebrum"]
        assert "prediction" not in faulty.bodies[-1] and stats["prediction_chars"] == 0
    async with http.post(url + CHAT, json=chat(SEED, prediction=CLIENTS)) as resp:
        assert resp.status == 200
    assert faulty.bodies[-1]["prediction"] == CLIENTS


async def test_the_upstream_usage_details_become_drafted_and_accepted(faulty,
                                                                      start_orchestrator, http):
    faulty.completion_details = {"accepted_prediction_tokens": 4,
                                 "rejected_prediction_tokens": 2}
    url = await start_orchestrator(orchestrator_settings(("fake", faulty.url)))
    async with http.post(url + CHAT, json=chat(SEED, stream=True)) as resp:
        streamed = [e async for e in sse_events(resp)][-2]["cerebrum"]
    async with http.post(url + CHAT, json=chat(SEED)) as resp:
        body = await resp.json()
    for stats in (streamed, body["cerebrum"]):
        assert (stats["drafted_tokens"], stats["accepted_tokens"]) == (6, 4)
    assert body["usage"]["completion_tokens_details"] == faulty.completion_details


async def test_the_real_backend_drafts_from_the_prediction(start_backend, smollm2,
                                                           start_orchestrator, http):
    backend = await start_backend(spec("smol", smollm2))
    url = await start_orchestrator(orchestrator_settings(("vps", base_url(backend)),
                                                         model="smol"))
    body = chat(RENAME, max_tokens=64, temperature=0)
    async with http.post(url + CHAT, json=body) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    stats, details = answer["cerebrum"], answer["usage"]["completion_tokens_details"]
    assert stats["edit"] is True and stats["prediction_chars"] > 0
    assert stats["drafted_tokens"] == (details["accepted_prediction_tokens"]
                                       + details["rejected_prediction_tokens"])
    assert stats["accepted_tokens"] == details["accepted_prediction_tokens"]
    assert stats["drafted_tokens"] > 0 and 0 <= stats["accepted_tokens"] <= stats[
        "drafted_tokens"]
