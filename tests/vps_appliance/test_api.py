"""The HTTP API on a real server with the tiny random llama: shapes, auth, metrics."""

from __future__ import annotations

import pytest
from conftest import base_url, metric, spec, sse_events

from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture
async def tiny(start_backend, tiny_model):
    server = await start_backend(spec("tiny", tiny_model, n_ctx=256), max_tokens_cap=200,
                                 max_body_bytes=4096)
    return base_url(server)


async def test_non_streaming_chat_has_openai_shape(tiny, http):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    async with http.post(tiny + CHAT, json=body, headers={"X-Request-ID": "abc-123"}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Request-ID"] == "abc-123"
        data = await resp.json()
    assert data["id"] == "chatcmpl-abc-123" and data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_streaming_chat_chunks_then_done(tiny, http):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12,
            "stream": True}
    async with http.post(tiny + CHAT, json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        rid = resp.headers["X-Request-ID"]
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == f"chatcmpl-{rid}"
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert all("usage" not in c for c in chunks)  # not asked for: stream_options


async def test_include_usage_adds_openais_usage_chunk(tiny, http):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12,
            "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(tiny + CHAT, json=body) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    *chunks, final = events[:-1]
    assert final["choices"] == [] and final["object"] == "chat.completion.chunk"
    assert 0 < final["usage"]["completion_tokens"] <= 12
    assert final["usage"]["prompt_tokens"] > 0
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


async def test_stream_options_without_stream_is_a_400(tiny, http):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
            "stream_options": {"include_usage": True}}
    async with http.post(tiny + CHAT, json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "stream_options"


async def test_streaming_completion_uses_text_completion_chunks(tiny, http):
    body = {"model": "tiny", "prompt": "def f", "max_tokens": 6, "stream": True,
            "stream_options": {"include_usage": True}}
    async with http.post(tiny + COMPLETIONS, json=body) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    assert all(c["object"] == "text_completion" and "text" in c["choices"][0]
               for c in events[:-2])
    assert events[-3]["choices"][0]["finish_reason"] in ("stop", "length")
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] <= 6


async def test_model_defaults_to_the_first_in_the_manifest(tiny, http):
    async with http.post(tiny + COMPLETIONS, json={"prompt": "x", "max_tokens": 2}) as resp:
        assert resp.status == 200
        assert (await resp.json())["model"] == "tiny"


async def test_tokenize_counts_like_the_prompt(tiny, http):
    async with http.post(tiny + "/v1/tokenize", json={"model": "tiny", "text": "def f"}) as resp:
        counted = (await resp.json())["tokens"]
    async with http.post(tiny + COMPLETIONS, json={"prompt": "def f", "max_tokens": 1}) as resp:
        assert (await resp.json())["usage"]["prompt_tokens"] == counted


async def test_models_health_and_metrics(tiny, http):
    async with http.get(tiny + "/health") as resp:
        health = await resp.json()
    assert resp.status == 200 and health["models"] == [
        {"name": "tiny", "loaded": False, "busy": False, "waiting": 0, "sequences": 4,
         "in_use": 0, "prompt_tokens_pending": 0, "kv_cells": 256, "kv_cells_used": 0,
         "batch_tokens": 0}]
    async with http.post(tiny + COMPLETIONS, json={"prompt": "x", "max_tokens": 3}) as resp:
        usage = (await resp.json())["usage"]
    async with http.get(tiny + "/v1/models") as resp:
        listed = await resp.json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == "tiny"
    assert listed["data"][0]["loaded"] is True
    assert await metric(http, tiny, "cerebrum_backend_model_loaded", model="tiny") == 1
    assert await metric(http, tiny, "cerebrum_backend_completion_tokens_total",
                        model="tiny") == usage["completion_tokens"]
    assert await metric(http, tiny, "cerebrum_backend_requests_total",
                        endpoint="/v1/completions", status="200") == 1
    assert await metric(http, tiny, "cerebrum_backend_time_to_first_token_seconds_count",
                        model="tiny") == 1


async def test_invalid_request_id_is_replaced(tiny, http):
    async with http.get(tiny + "/health", headers={"X-Request-ID": "bad id\twith junk"}) as resp:
        assert resp.headers["X-Request-ID"] != "bad id\twith junk"
        assert len(resp.headers["X-Request-ID"]) == 32


def _prompt(**extra):
    return {"model": "tiny", "prompt": "def f", **extra}


async def test_api_keys_guard_everything_but_health(start_backend, tiny_model, http):
    server = await start_backend(spec("tiny", tiny_model), api_keys=("s3cret", "other"))
    url = base_url(server)
    async with http.get(url + "/health") as resp:
        assert resp.status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                    {"Authorization": "Basic s3cret"}):
        for path in ("/v1/models", "/metrics"):
            async with http.get(url + path, headers=headers) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"] == "Bearer"
                assert (await resp.json())["error"]["code"] == "invalid_api_key"
    async with http.post(url + COMPLETIONS, json=_prompt(max_tokens=1)) as resp:
        assert resp.status == 401
    for key in ("s3cret", "other"):
        async with http.get(url + "/v1/models", headers={"Authorization": f"bearer {key}"}) as r:
            assert r.status == 200


async def test_sampling_defaults_come_from_the_manifest(start_backend, tiny_model, http):
    server = await start_backend(spec("tiny", tiny_model,
                                      sampling=Sampling(temperature=0.0, max_tokens=5)))
    async with http.post(base_url(server) + COMPLETIONS, json={"prompt": "abc"}) as resp:
        data = await resp.json()
    assert data["usage"]["completion_tokens"] <= 5
    assert data["choices"][0]["finish_reason"] in ("length", "stop")


async def test_a_missing_model_file_is_a_clear_500_and_others_keep_serving(
        start_backend, tiny_model, tmp_path, http):
    server = await start_backend(spec("tiny", tiny_model),
                                 spec("gone", tmp_path / "missing.gguf"))
    url = base_url(server)
    async with http.post(url + COMPLETIONS, json={"model": "gone", "prompt": "x"}) as resp:
        assert resp.status == 500
        error = (await resp.json())["error"]
    assert error["code"] == "model_unavailable" and "'gone' failed to load" in error["message"]
    async with http.post(url + COMPLETIONS, json=_prompt(max_tokens=1)) as resp:
        assert resp.status == 200
