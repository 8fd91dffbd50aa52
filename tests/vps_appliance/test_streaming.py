"""Real SmolLM2 behind a real server: live streaming, disconnect-cancel, shedding, KV reuse."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from conftest import base_url, metric, spec, sse_events

from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MODEL = "smollm2"
LONG = 1500  # far more tokens than any test waits for (~15 s of decoding here)


def long_chat(**extra):
    return {"model": MODEL, "stream": True, "max_tokens": LONG, "temperature": 0.0,
            "messages": [{"role": "user", "content": "Write a very long story about a robot."}],
            **extra}


async def wait_for(predicate, what: str, timeout: float = 60.0):
    """Poll an async predicate until true; a generous deadline only catches hangs."""
    async with asyncio.timeout(timeout):
        while not (result := await predicate()):
            await asyncio.sleep(0.02)
    assert result, what
    return result


@pytest.fixture
async def smol(start_backend, smollm2):
    server = await start_backend(spec(MODEL, smollm2, n_ctx=2048, parallel=2,
                                      sampling=Sampling(temperature=0.0, max_tokens=64)),
                                 max_queue=2)
    return base_url(server)


async def completion_tokens(http, url) -> float:
    return await metric(http, url, "cerebrum_backend_completion_tokens_total", model=MODEL)


async def test_tokens_stream_while_generation_is_still_running(smol, http):
    body = long_chat(max_tokens=200, stream_options={"include_usage": True})
    async with http.post(smol + CHAT, json=body) as resp:
        events = sse_events(resp)
        first = await anext(events)
        assert first["choices"][0]["delta"]["role"] == "assistant"
        generated_at_first_chunk = await completion_tokens(http, smol)
        rest = [e async for e in events]
    assert rest[-1] == "[DONE]"
    total = rest[-2]["usage"]["completion_tokens"]
    # The client held a token while most of the answer did not exist yet.
    assert generated_at_first_chunk < total / 2, (generated_at_first_chunk, total)
    # Roughly one event per token (partial UTF-8 may merge a few).
    content_chunks = [e for e in [first, *rest[:-3]] if e["choices"][0]["delta"].get("content")]
    assert len(content_chunks) >= total * 0.8
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in [first, *rest[:-2]])
    assert len(text.split()) > 10  # a real model writes words


async def test_non_streaming_real_model(smol, http):
    body = {"model": MODEL, "max_tokens": 16, "temperature": 0.0,
            "messages": [{"role": "user", "content": "Say hello."}]}
    async with http.post(smol + CHAT, json=body) as resp:
        data = await resp.json()
    assert resp.status == 200 and data["choices"][0]["message"]["content"].strip()
    assert data["usage"]["completion_tokens"] <= 16


async def test_stop_sequences_cut_the_text(smol, http):
    body = {"model": MODEL, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 40, "temperature": 0.0,
            "stop": [" 8"]}
    async with http.post(smol + COMPLETIONS, json=body) as resp:
        data = await resp.json()
    assert data["choices"][0]["finish_reason"] == "stop"
    assert " 8" not in data["choices"][0]["text"] and "7" in data["choices"][0]["text"]


async def test_disconnect_cancels_generation_within_a_token(smol, http):
    async with aiohttp.ClientSession() as client:
        resp = await client.post(smol + CHAT, json=long_chat())
        events = sse_events(resp)
        for _ in range(3):
            await anext(events)
        resp.close()  # the client goes away mid-stream
    await wait_for(lambda: metric(http, smol, "cerebrum_backend_generations_cancelled_total",
                                  model=MODEL), "generation was cancelled")
    stopped_at = await completion_tokens(http, smol)
    assert stopped_at < LONG / 3
    await wait_for(lambda: _eq(lambda: metric(http, smol, "cerebrum_backend_requests_total",
                                              endpoint=CHAT, status="499"), 1),
                   "the request is logged as closed by the client")
    # The model is free at once: the next request runs and only its own tokens are added.
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 4, "temperature": 0.0}
    async with http.post(smol + COMPLETIONS, json=body) as resp:
        usage = (await resp.json())["usage"]
    assert await completion_tokens(http, smol) == stopped_at + usage["completion_tokens"]
    assert await metric(http, smol, "cerebrum_backend_in_flight") == 1  # this /metrics call


async def test_full_queue_sheds_at_once_with_retry_after(smol, http):
    """Two sequences (the fixture's `parallel`) generate, two requests wait, the next is shed."""
    async with aiohttp.ClientSession() as client:
        running = [await client.post(smol + CHAT, json=long_chat()) for _ in range(2)]
        for resp in running:
            await anext(sse_events(resp))  # both sequences hold a generation now

        async def health_waiting():
            async with http.get(smol + "/health") as r:
                return (await r.json())["models"][0]["waiting"]

        queued = [asyncio.create_task(client.post(smol + CHAT, json=long_chat())) for _ in range(2)]
        await wait_for(lambda: _eq(health_waiting, 2), "two requests queued")
        async with http.post(smol + CHAT, json=long_chat()) as shed:
            assert shed.status == 503
            assert int(shed.headers["Retry-After"]) >= 1
            error = (await shed.json())["error"]
        assert error["code"] == "queue_full" and "retry in" in error["message"]
        for resp in running:
            resp.close()
        # Each queued request gets a sequence: close each as its answer starts, so each one
        # is cancelled while it holds it.
        for started in asyncio.as_completed(queued):
            resp = await started
            assert resp.status == 200
            resp.close()
    cancelled = "cerebrum_backend_generations_cancelled_total"
    await wait_for(lambda: _eq(lambda: metric(http, smol, cancelled, model=MODEL), 4),
                   "all four generations cancelled")
    assert await metric(http, smol, "cerebrum_backend_requests_total",
                        endpoint=CHAT, status="503") == 1


async def _eq(fn, value) -> bool:
    return await fn() == value


def prompt_of(topic: str) -> str:
    return f"Here is a long description of {topic}. " + f"The {topic} is in detail. " * 40


async def evaluated(http, url) -> float:
    return await metric(http, url, "cerebrum_backend_prompt_tokens_evaluated_total", model=MODEL)


async def complete(http, url, prompt: str) -> dict:
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 2, "temperature": 0.0}
    async with http.post(url + COMPLETIONS, json=body) as resp:
        assert resp.status == 200
        return (await resp.json())["usage"]


@pytest.mark.parametrize("cache_bytes", [64 << 20, 0], ids=["ram-cache", "no-ram-cache"])
async def test_prompt_prefix_is_not_evaluated_again(start_backend, smollm2, http, cache_bytes):
    """One sequence (`parallel` 1): the live context and the RAM cache, as before batching."""
    server = await start_backend(spec(MODEL, smollm2, prompt_cache_bytes=cache_bytes,
                                      parallel=1))
    url = base_url(server)
    a, b = prompt_of("castle"), prompt_of("submarine")

    first = await complete(http, url, a)
    n = first["prompt_tokens"]
    assert n > 200 and first["prompt_tokens_details"]["cached_tokens"] == 0
    assert await evaluated(http, url) == n

    # The same prompt again: only its last token is evaluated (for fresh logits).
    again = await complete(http, url, a)
    assert again["prompt_tokens_details"]["cached_tokens"] == n - 1
    assert await evaluated(http, url) == n + 1

    # Alternate: B replaces the live context, then A comes back.
    other = await complete(http, url, b)
    before = await evaluated(http, url)
    back = await complete(http, url, a)
    spent = await evaluated(http, url) - before
    assert spent == n - back["prompt_tokens_details"]["cached_tokens"]
    shared = other["prompt_tokens_details"]["cached_tokens"]  # A and B share a few words
    if cache_bytes:
        assert spent == 1  # restored from the RAM cache
    else:
        assert spent > n - shared - 5  # only the live context's short shared prefix helped
