"""The orchestrator in front of real and faulty upstreams: relaying, stats, failover,
circuit breakers, shedding, timeouts and disconnect cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import aiohttp
import pytest
from conftest import (
    SteeredClock,
    base_url,
    metric,
    orchestrator_settings,
    spec,
    sse_events,
)
from faulty import Faulty

from pi_appliance.settings import BreakerPolicy, Timeouts

CHAT = "/v1/chat/completions"


def chat(text: str = "Explain this:\n```python\ndef f():\n    return 1\n```", **extra):
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 8, **extra}


@pytest.fixture
async def faulty(aiohttp_server):
    fake = Faulty()
    server = await aiohttp_server(fake.app())
    fake.url = base_url(server)
    return fake


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens


async def test_streams_from_the_real_backend_with_stats_last(start_backend, tiny_model,
                                                             start_orchestrator, http):
    backend = await start_backend(spec("tiny", tiny_model, n_ctx=1024))
    url = await start_orchestrator(orchestrator_settings(("vps", base_url(backend))))
    async with http.post(url + CHAT, json=chat(stream=True),
                         headers={"X-Request-ID": "req-42"}) as resp:
        assert resp.status == 200 and resp.headers["X-Request-ID"] == "req-42"
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    stats = events[-2]
    assert stats["choices"] == [] and stats["cerebrum"]["model"] == "tiny"
    cerebrum = stats["cerebrum"]
    assert cerebrum["route"] == "qwen" and cerebrum["language"] == "python"
    assert cerebrum["backend"] == "vps" and cerebrum["ttft_ms"] > 0
    for key in ("original_chars", "sent_chars", "reduction", "pipeline_ms", "chunks_kept"):
        assert key in cerebrum
    chunks = events[:-2]
    assert chunks[0]["id"] == "chatcmpl-req-42"  # the request id reached the backend
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


async def test_non_streaming_through_the_real_backend(start_backend, tiny_model,
                                                      start_orchestrator, http):
    backend = await start_backend(spec("tiny", tiny_model, n_ctx=1024))
    url = await start_orchestrator(orchestrator_settings(("vps", base_url(backend))))
    async with http.post(url + "/v1/completions",
                         json={"prompt": "fn main() {}", "max_tokens": 4}) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["object"] == "text_completion"
    assert body["usage"]["completion_tokens"] <= 4
    assert body["cerebrum"]["route"] == "codellama" and body["cerebrum"]["language"] == "rust"


async def test_client_disconnect_stops_the_backend(start_backend, smollm2, start_orchestrator,
                                                   http):
    backend = base_url(await start_backend(spec("smol", smollm2)))
    url = await start_orchestrator(orchestrator_settings(("vps", backend), model="smol"))
    body = chat("Write a very long story about a robot.", max_tokens=1500, stream=True)
    async with aiohttp.ClientSession() as client:
        resp = await client.post(url + CHAT, json=body)
        events = sse_events(resp)
        for _ in range(3):
            await anext(events)
        resp.close()
    async with asyncio.timeout(60):
        while not await metric(http, backend, "cerebrum_backend_generations_cancelled_total",
                               model="smol"):
            await asyncio.sleep(0.02)
    generated = await metric(http, backend, "cerebrum_backend_completion_tokens_total",
                             model="smol")
    assert generated < 500


async def test_failover_to_the_next_backend_when_one_refuses(start_backend, tiny_model,
                                                             start_orchestrator, http):
    backend = await start_backend(spec("tiny", tiny_model, n_ctx=1024))
    url = await start_orchestrator(orchestrator_settings(("dead", refused_url()),
                                                         ("vps", base_url(backend))))
    async with http.post(url + CHAT, json=chat()) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["cerebrum"]["backend"] == "vps"
    assert await metric(http, url, "cerebrum_orchestrator_upstream_failures_total",
                        backend="dead", code="upstream_unreachable") == 1


@pytest.mark.parametrize("mode, code", [("die_midstream", "upstream_disconnected"),
                                        ("garbage", "upstream_bad_stream")])
async def test_a_broken_stream_ends_with_an_error_event(faulty, start_orchestrator, http,
                                                        mode, code):
    faulty.mode = mode
    url = await start_orchestrator(orchestrator_settings(("f", faulty.url)))
    async with http.post(url + CHAT, json=chat(stream=True)) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == code
    assert [e["choices"][0]["delta"]["content"] for e in events[:-2]] == ["tok0 ", "tok1 "]


async def test_slow_first_token_times_out_instead_of_hanging(faulty, start_orchestrator, http):
    faulty.mode = "slow_first"
    settings = orchestrator_settings(("f", faulty.url),
                                     timeouts=Timeouts(first_token=0.3))
    url = await start_orchestrator(settings)
    async with asyncio.timeout(20):
        async with http.post(url + CHAT, json=chat(stream=True)) as resp:
            error = (await resp.json())["error"]
    assert resp.status == 502 and error["code"] == "upstream_timeout"


async def test_a_stall_mid_stream_times_out_into_an_error_event(faulty, start_orchestrator,
                                                               http):
    faulty.mode = "stall_midstream"
    url = await start_orchestrator(orchestrator_settings(
        ("f", faulty.url), timeouts=Timeouts(between_tokens=0.3)))
    async with asyncio.timeout(20), http.post(url + CHAT, json=chat(stream=True)) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == "upstream_timeout"
    assert len(events) == 4  # two tokens, the error, [DONE]


async def test_upstream_400_passes_through_and_is_not_a_failure(faulty, start_orchestrator,
                                                                 http):
    faulty.mode = "reject400"
    url = await start_orchestrator(orchestrator_settings(("f", faulty.url)))
    async with http.post(url + CHAT, json=chat()) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "context_length_exceeded"
    async with http.get(url + "/health") as resp:
        assert (await resp.json())["backends"]["f"]["breaker"] == "closed"


async def test_breaker_opens_sheds_then_probes_and_closes(faulty, start_orchestrator, http):
    clock = SteeredClock()
    faulty.mode = "error500"
    settings = orchestrator_settings(("f", faulty.url),
                                     breaker=BreakerPolicy(failures=2, cooldown=10))
    url = await start_orchestrator(settings, clock=clock)

    async def call():
        async with http.post(url + CHAT, json=chat()) as resp:
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    assert (await call())[0] == 502
    assert (await call())[0] == 502
    status, retry_after, body = await call()  # open: refused at once, upstream not called
    assert status == 503 and body["error"]["code"] == "breaker_open" and retry_after == "10"
    assert faulty.calls == 2
    async with http.get(url + "/health") as resp:
        assert (await resp.json())["backends"]["f"]["breaker"] == "open"
    assert await metric(http, url, "cerebrum_orchestrator_breaker_state", backend="f") == 2
    clock.advance(10)
    faulty.mode = "ok"
    status, _, body = await call()  # the half-open probe succeeds …
    assert status == 200 and faulty.calls == 3
    async with http.get(url + "/health") as resp:  # … and closes the circuit
        assert (await resp.json())["backends"]["f"]["breaker"] == "closed"


async def test_busy_backends_give_503_with_their_retry_after(faulty, start_orchestrator,
                                                             http):
    faulty.mode = "busy503"  # answers Retry-After: 3
    url = await start_orchestrator(orchestrator_settings(("f", faulty.url)))
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "3"
        assert (await resp.json())["error"]["code"] == "upstream_busy"


async def test_shedding_refuses_the_extra_request_at_once(faulty, start_orchestrator, http):
    faulty.mode = "hold"
    url = await start_orchestrator(orchestrator_settings(("f", faulty.url), max_concurrent=2))
    running = [asyncio.create_task(http.post(url + CHAT, json=chat(stream=True)))
               for _ in range(2)]
    async with asyncio.timeout(30):
        while faulty.calls < 2:  # both are in flight upstream
            await asyncio.sleep(0.01)
    async with http.post(url + CHAT, json=chat(stream=True)) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "overloaded"
    assert faulty.calls == 2  # no pipeline or upstream work for the shed request
    faulty.release.set()
    for task in running:
        resp = await task
        assert resp.status == 200
        assert [e async for e in sse_events(resp)][-1] == "[DONE]"
        resp.close()
    assert await metric(http, url, "cerebrum_orchestrator_shed_total") == 1


async def test_half_open_probe_uses_its_own_timeout(faulty, start_orchestrator, http):
    clock = SteeredClock()
    faulty.mode = "error500"
    settings = orchestrator_settings(
        ("f", faulty.url), breaker=BreakerPolicy(failures=1, cooldown=5, probe_timeout=0.3),
        timeouts=dataclasses.replace(Timeouts(), first_token=60))
    url = await start_orchestrator(settings, clock=clock)
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 502
    clock.advance(5)
    faulty.mode = "slow_first"
    async with asyncio.timeout(20), http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 502 and (await resp.json())["error"]["code"] == "upstream_timeout"
    async with http.get(url + "/health") as resp:
        assert (await resp.json())["backends"]["f"]["breaker"] == "open"
