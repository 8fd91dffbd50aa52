"""The orchestrator under hostile traffic: bursts, huge prompts, stalled clients, half-open
probes, busy and open backends, and token counts that need no round trip."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time

import pytest
from conftest import SteeredClock, base_url, metric, orchestrator_settings, spec, sse_events
from faulty import Faulty
from relay import relay

from cerebrum.config import ConfigError
from pi_appliance.settings import BreakerPolicy, PipelineSettings, load_settings

CHAT = "/v1/chat/completions"
PREVIEW = "/v1/context/preview"


def chat(text: str = "Explain this:\n```python\ndef f():\n    return 1\n```", **extra):
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 8, **extra}


async def fake(aiohttp_server) -> Faulty:
    upstream = Faulty()
    upstream.url = base_url(await aiohttp_server(upstream.app()))
    return upstream


async def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` until true; fail after `timeout` (a hang, not a race)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_metric(http, url: str, name: str, value: float, timeout: float = 30.0,
                      **labels: str) -> None:
    """Poll a metric of a running service until it reads `value`."""
    deadline = time.monotonic() + timeout
    while (got := await metric(http, url, name, **labels)) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {got}, not {value}, after {timeout} s")
        await asyncio.sleep(0.02)


async def test_a_burst_admits_exactly_max_concurrent_and_sheds_the_rest_at_once(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "hold"  # admitted streams stay in flight until released
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url), max_concurrent=2))
    n = 7  # >= 3 x max_concurrent, sent at the same moment
    tasks = [asyncio.create_task(http.post(url + CHAT, json=chat(stream=True)))
             for _ in range(n)]
    # The shed ones are answered at once, while the admitted ones wait on the upstream.
    await wait_until(lambda: sum(t.done() for t in tasks) == n - 2 and upstream.calls == 2,
                     what="the burst to be shed")
    shed = [t.result() for t in tasks if t.done()]
    for resp in shed:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "overloaded"
    assert await metric(http, url, "cerebrum_orchestrator_in_flight") == 2
    upstream.release.set()
    responses = [await t for t in tasks]
    admitted = [r for r in responses if r.status == 200]
    assert len(admitted) == 2 and len(responses) == n and upstream.calls == 2
    for resp in admitted:
        assert [e async for e in sse_events(resp)][-1] == "[DONE]"
        resp.close()
    assert await metric(http, url, "cerebrum_orchestrator_shed_total") == n - 2
    await wait_metric(http, url, "cerebrum_orchestrator_in_flight", 0)
    async with http.post(url + CHAT, json=chat()) as resp:  # refusals never counted
        assert resp.status == 200


async def test_preview_is_admitted_like_completions(aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "hold"
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url), max_concurrent=1))
    held = asyncio.create_task(http.post(url + CHAT, json=chat(stream=True)))
    await wait_until(lambda: upstream.calls == 1, what="the held stream upstream")
    async with http.post(url + PREVIEW, json=chat()) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    upstream.release.set()
    (await held).close()


MIB = 1 << 20
HOSTILE = {
    "minified line": "Refactor this.\n```js\nA" + "b" * MIB + "\n```",
    "fence flood": "Fix it\n" + "```\n" * (MIB // 4),
    "backtick flood": "Explain " + "`" * MIB,
    "deep brackets": "Fix this:\n```c\nint f() {" + "(" * (MIB // 2) + "{" * (MIB // 2),
    "unterminated string": "Rewrite:\n```python\nx = \"" + "a" * MIB,
}


@pytest.mark.parametrize("shape", HOSTILE)
async def test_health_answers_within_100ms_while_a_1mib_hostile_prompt_is_processed(
        aiohttp_server, start_orchestrator, http, shape):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url),
                                                         max_body_bytes=2 * 1024 * 1024))
    body = json.dumps(chat(HOSTILE[shape])).encode()
    assert len(body) >= 1024 * 1024
    latencies: list[float] = []
    hostile_done = asyncio.Event()

    async def hammer() -> None:
        while not hostile_done.is_set():
            started = time.perf_counter()
            async with http.get(url + "/health") as resp:
                assert resp.status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    hammering = asyncio.create_task(hammer())
    try:
        await wait_until(lambda: latencies, what="a first /health answer")
        async with asyncio.timeout(60):  # it answers: never a hang
            for path in (PREVIEW, CHAT):
                async with http.post(url + path, data=io.BytesIO(body),
                                     headers={"Content-Type": "application/json"}) as resp:
                    assert resp.status in (200, 400), await resp.text()
                    answer = await resp.json()
                    if resp.status == 400:  # sent raw, over the context budget: said so
                        assert answer["error"]["code"] == "context_length_exceeded"
        hostile_done.set()
        await hammering
    finally:
        hammering.cancel()
    during = sorted(latencies[1:])
    assert during, "no /health probe ran while the hostile prompt was processed"
    assert during[-1] < 0.1, f"/health took up to {during[-1] * 1000:.0f} ms"


async def test_a_pipeline_past_its_deadline_sends_the_raw_prompt_and_says_why(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    settings = orchestrator_settings(("f", upstream.url),
                                     pipeline=PipelineSettings(timeout_ms=1))
    url = await start_orchestrator(settings)
    code = "\n\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(150))
    async with http.post(url + PREVIEW, json=chat(f"Fix f7.\n```python\n{code}\n```")) as resp:
        assert resp.status == 200
        stats = (await resp.json())["cerebrum"]
    assert stats["context"] == "raw" and "pipeline.timeout_ms" in stats["context_reason"]
    assert await metric(http, url, "cerebrum_orchestrator_pipeline_timeouts_total") == 1
    async with http.post(url + CHAT, json=chat(f"Fix f7.\n```python\n{code}\n```",
                                               stream=True)) as resp:
        assert resp.status == 200  # and the answer still comes
        assert [e async for e in sse_events(resp)][-1] == "[DONE]"


async def test_a_client_that_stops_reading_is_dropped_and_frees_its_place(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "flood"
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url), max_concurrent=1,
                                                         write_timeout=0.5))
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps(chat(stream=True, max_tokens=4000)).encode()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window …
    stalled.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(stalled, ("127.0.0.1", port))
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        # … and it is never read from.
        await wait_metric(http, url, "cerebrum_orchestrator_stalled_clients_total", 1)
        async with asyncio.timeout(30):
            await upstream.flooded.wait()  # the upstream stream was closed: the model stops
        await wait_metric(http, url, "cerebrum_orchestrator_in_flight", 0)
    finally:
        stalled.close()
    upstream.mode = "ok"
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 200


async def test_the_half_open_probe_closes_the_breaker_at_its_first_token(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    clock = SteeredClock()
    upstream.mode = "error500"
    url = await start_orchestrator(orchestrator_settings(
        ("f", upstream.url), breaker=BreakerPolicy(failures=1, cooldown=5)), clock=clock)
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 502
    clock.advance(5)
    upstream.mode = "hold_after_first"
    async with http.post(url + CHAT, json=chat(stream=True)) as probe:
        assert probe.status == 200
        events = sse_events(probe)
        first = await anext(events)
        assert first["choices"][0]["delta"]["content"] == "tok0 "
        async with http.get(url + "/health") as resp:  # the probe is still generating
            assert (await resp.json())["backends"]["f"]["breaker"] == "closed"
        upstream.mode = "ok"
        async with http.post(url + CHAT, json=chat()) as resp:  # traffic flows again
            assert resp.status == 200
        upstream.release.set()
        assert [e async for e in events][-1] == "[DONE]"


async def test_busy_and_open_backends_give_503_with_the_soonest_retry_after(
        aiohttp_server, start_orchestrator, http):
    failing, busy = await fake(aiohttp_server), await fake(aiohttp_server)
    failing.mode, busy.mode = "error500", "busy503"  # busy answers Retry-After: 3
    settings = orchestrator_settings(("a", failing.url), ("b", busy.url),
                                     breaker=BreakerPolicy(failures=1, cooldown=30))
    url = await start_orchestrator(settings)
    async with http.post(url + CHAT, json=chat()) as resp:  # a fails (opens), b is busy
        assert resp.status == 502
    async with http.post(url + CHAT, json=chat()) as resp:  # a open, b busy
        assert resp.status == 503 and resp.headers["Retry-After"] == "3"
        assert (await resp.json())["error"]["code"] == "upstream_busy"
    busy.mode = "error500"
    async with http.post(url + CHAT, json=chat()) as resp:  # b opens too
        assert resp.status == 502
    async with http.post(url + CHAT, json=chat()) as resp:  # both open: the breakers say
        assert resp.status == 503 and resp.headers["Retry-After"] == "30"
        assert (await resp.json())["error"]["code"] == "breaker_open"


def near_budget_prompt(words: int = 3300) -> str:
    """A prompt whose estimate is within 10 % of the budget (n_ctx 4096 - 8 - 64 = 4024),
    which the fake's count (a token per word) puts under it."""
    return "Explain: " + "word " * words


async def test_a_prompt_well_within_budget_needs_no_token_count(aiohttp_server,
                                                               start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    async with http.post(url + CHAT, json=chat("Explain: " + "word " * 400)) as resp:
        assert resp.status == 200
    assert upstream.tokenize_calls == 0 and upstream.calls == 1


async def test_a_prompt_near_the_budget_is_counted_exactly_once(aiohttp_server,
                                                                start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    for _ in range(2):
        async with http.post(url + CHAT, json=chat(near_budget_prompt())) as resp:
            assert resp.status == 200, await resp.text()
    assert upstream.tokenize_calls == 1  # the second came from the cache


async def test_an_upstream_without_tokenize_works_with_the_default_config(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.has_tokenize = False
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    for n in (3300, 3301):  # two prompts near the budget
        async with http.post(url + CHAT, json=chat(near_budget_prompt(n))) as resp:
            assert resp.status == 200, await resp.text()
    assert upstream.tokenize_calls == 1  # its 404 was remembered
    assert await metric(http, url, "cerebrum_orchestrator_tokenize_calls_total", backend="f",
                        outcome="unsupported") == 1


async def test_a_backend_whose_breaker_is_open_is_not_asked_to_count(
        aiohttp_server, start_orchestrator, http):
    failing, healthy = await fake(aiohttp_server), await fake(aiohttp_server)
    failing.mode = "error500"
    settings = orchestrator_settings(("a", failing.url), ("b", healthy.url),
                                     breaker=BreakerPolicy(failures=1, cooldown=60))
    url = await start_orchestrator(settings)
    async with http.post(url + CHAT, json=chat()) as resp:  # a opens; b answers
        assert resp.status == 200
    async with http.post(url + CHAT, json=chat(near_budget_prompt())) as resp:
        assert resp.status == 200
    assert failing.tokenize_calls == 0 and healthy.tokenize_calls == 1


@pytest.mark.parametrize(("text", "key"), [
    ("write_timeout = 0", "write_timeout"),
    ("write_timeout = nan", "write_timeout"),
    ("max_header_bytes = 10", "max_header_bytes"),
    ("[pipeline]\ntimeout_ms = 0", "pipeline.timeout_ms"),
])
def test_settings_reject_bad_resilience_values(tmp_path, text, key):
    path = tmp_path / "orchestrator.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_settings(path, environ={})


def test_the_pipeline_deadline_defaults_to_250_ms():
    assert load_settings(environ={}).pipeline.timeout_ms == 250


async def test_over_a_slow_link_requests_share_one_connection_and_skip_tokenize(
        start_backend, tiny_model, start_orchestrator, http):
    backend = await start_backend(spec("tiny", tiny_model, n_ctx=1024))
    async with relay(base_url(backend), rtt=0.04) as link:
        url = await start_orchestrator(orchestrator_settings(("vps", link.url)))
        for i in range(3):  # fresh prompts, one after the other
            async with http.post(url + CHAT, json=chat(f"Explain step {i}:\n```python\n"
                                                       f"x = {i}\n```", stream=True)) as resp:
                assert resp.status == 200
                assert [e async for e in sse_events(resp)][-1] == "[DONE]"
        assert link.connections == 1  # the pooled connection was reused: no new handshakes
    backend_url = base_url(backend)
    assert await metric(http, backend_url, "cerebrum_backend_requests_total",
                        endpoint="/v1/chat/completions", status="200") == 3
    assert await metric(http, backend_url, "cerebrum_backend_requests_total",
                        endpoint="/v1/tokenize", status="200") == 0


async def test_a_pooled_connection_the_upstream_closed_is_retried_on_a_fresh_one(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "drop_reused"  # as llama-server: it closes its end after each answer
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    for _ in range(3):
        async with http.post(url + CHAT, json=chat(stream=True)) as resp:
            assert resp.status == 200
            assert [e async for e in sse_events(resp)][-1] == "[DONE]"
    assert upstream.calls == 3
    async with http.get(url + "/health") as resp:
        assert (await resp.json())["backends"]["f"]["breaker"] == "closed"
