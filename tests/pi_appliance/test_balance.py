"""Spreading a route's load over its backends: the pure order, the counts, weights in the
settings, and outstanding requests released however a request ends (fault-injection fakes)."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest
from conftest import base_url, metric, orchestrator_settings, sse_events
from faulty import Faulty
from hypothesis import given
from hypothesis import strategies as st

from cerebrum.config import ConfigError
from pi_appliance.settings import Backend, load_settings
from pi_appliance.upstream.balance import Balancer, Candidate, order

CHAT = "/v1/chat/completions"
OUTSTANDING = "cerebrum_orchestrator_backend_outstanding_requests"
CHOSEN = "cerebrum_orchestrator_backend_chosen_total"


def chat(**extra):
    return {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8, **extra}


def test_the_least_loaded_backend_comes_first():
    assert order([Candidate("a", 2), Candidate("b", 0), Candidate("c", 1)]) == ["b", "c", "a"]


def test_ties_go_in_settings_order_from_the_start_index():
    idle = [Candidate("a", 0), Candidate("b", 0), Candidate("c", 0)]
    assert order(idle, 0) == ["a", "b", "c"]
    assert order(idle, 1) == ["b", "c", "a"]
    assert order(idle, 2) == ["c", "a", "b"]


def test_weight_divides_the_load_counting_the_request_being_placed():
    # (outstanding + 1) / weight: 3/3 = 1 ties with 1/1, so the start index decides.
    assert order([Candidate("big", 2, weight=3), Candidate("small", 0)], 1) == ["small", "big"]
    assert order([Candidate("big", 2, weight=3), Candidate("small", 0)], 0) == ["big", "small"]
    # Idle, the heavier one goes first whatever the rotation.
    assert order([Candidate("small", 0), Candidate("big", 0, weight=2)], 0) == ["big", "small"]


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 10)), min_size=1, max_size=8),
       st.integers(0, 20))
def test_the_order_is_a_permutation_sorted_by_load_per_weight(loads, start):
    candidates = [Candidate(f"b{i}", o, w) for i, (o, w) in enumerate(loads)]
    names = order(candidates, start % len(candidates))
    assert sorted(names) == sorted(c.name for c in candidates)
    by_name = {c.name: c for c in candidates}
    ratios = [(by_name[n].outstanding + 1) / by_name[n].weight for n in names]
    assert ratios == sorted(ratios)


def test_requests_in_flight_alternate_and_a_weight_takes_its_share():
    seen: list[tuple[str, int]] = []
    balancer = Balancer({"a": 1, "b": 1}, lambda name, n: seen.append((name, n)))
    leases = []
    for _ in range(4):
        first = balancer.order("r", ("a", "b"))[0]
        leases.append(balancer.take("r", ("a", "b"), first))
    assert [lease.name for lease in leases] == ["a", "b", "a", "b"]
    assert balancer.outstanding("a") == balancer.outstanding("b") == 2
    for lease in leases:
        lease.release()
        lease.release()  # idempotent
    assert balancer.outstanding("a") == balancer.outstanding("b") == 0
    assert seen[-1] == ("b", 0)

    weighted = Balancer({"big": 3, "small": 1})
    names = []
    for _ in range(8):
        first = weighted.order("r", ("big", "small"))[0]
        names.append(weighted.take("r", ("big", "small"), first).name)
    assert names.count("big") == 6 and names.count("small") == 2


def test_one_request_at_a_time_takes_the_backends_in_turn():
    balancer = Balancer({"a": 1, "b": 1, "c": 1})
    names = []
    for _ in range(6):
        first = balancer.order("r", ("a", "b", "c"))[0]
        lease = balancer.take("r", ("a", "b", "c"), first)
        names.append(lease.name)
        lease.release()
    assert names == ["a", "b", "c", "a", "b", "c"]


def test_weight_is_read_and_checked(tmp_path):
    path = tmp_path / "o.toml"
    path.write_text('[[backends]]\nname = "a"\nurl = "http://x"\nweight = 3\n'
                    '[[backends]]\nname = "b"\nurl = "http://y"\n'
                    '[[routes]]\nname = "r"\nmodel = "m"\nbackends = ["a", "b"]\n')
    settings = load_settings(path)
    assert settings.backends == (Backend("a", "http://x", weight=3), Backend("b", "http://y"))
    for bad in ("0", "1001", '"2"'):
        path.write_text(f'[[backends]]\nname = "a"\nurl = "http://x"\nweight = {bad}\n')
        with pytest.raises(ConfigError, match=r"backends\[0\]\.weight"):
            load_settings(path)


async def fakes(aiohttp_server, n: int) -> list[Faulty]:
    out = []
    for _ in range(n):
        upstream = Faulty()
        upstream.url = base_url(await aiohttp_server(upstream.app()))
        out.append(upstream)
    return out


async def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    """Poll an async `predicate` until true; fail after `timeout` (a hang, not a race)."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)
    assert await predicate(), what


async def test_concurrent_requests_are_spread_by_outstanding_requests_and_weight(
        aiohttp_server, start_orchestrator, http):
    a, b = await fakes(aiohttp_server, 2)
    a.mode = b.mode = "hold"  # every stream stays in flight until released
    settings = orchestrator_settings(("a", a.url), ("b", b.url), max_concurrent=16)
    settings = dataclasses.replace(settings, backends=(Backend("a", a.url, weight=2),
                                                       Backend("b", b.url)))
    url = await start_orchestrator(settings)
    tasks = []
    for i in range(6):  # one at a time, so each is placed knowing the others' load
        tasks.append(asyncio.create_task(http.post(url + CHAT, json=chat(stream=True))))

        async def placed(n=i + 1):
            return a.calls + b.calls == n
        await wait_for(placed, f"request {i + 1} to reach an upstream")
    assert (a.calls, b.calls) == (4, 2)  # weight 2: twice b's share
    assert await metric(http, url, OUTSTANDING, backend="a") == 4
    assert await metric(http, url, OUTSTANDING, backend="b") == 2
    a.release.set()
    b.release.set()
    for task in tasks:
        resp = await task
        assert [e async for e in sse_events(resp)][-1] == "[DONE]"
        resp.close()
    for name in ("a", "b"):
        async def idle(name=name):
            return await metric(http, url, OUTSTANDING, backend=name) == 0
        await wait_for(idle, f"{name} to have nothing outstanding")
    assert await metric(http, url, CHOSEN, backend="a") == 4
    assert await metric(http, url, CHOSEN, backend="b") == 2


async def test_a_failing_backend_fails_over_and_is_skipped_once_its_circuit_opens(
        aiohttp_server, start_orchestrator, http):
    from pi_appliance.settings import BreakerPolicy

    bad, good = await fakes(aiohttp_server, 2)
    bad.mode = "error500"
    url = await start_orchestrator(orchestrator_settings(
        ("bad", bad.url), ("good", good.url), breaker=BreakerPolicy(failures=2, cooldown=60)))
    backends = []
    for _ in range(6):
        async with http.post(url + CHAT, json=chat()) as resp:
            assert resp.status == 200
            backends.append((await resp.json())["cerebrum"]["backend"])
    assert backends == ["good"] * 6
    assert bad.calls == 2  # then its circuit is open: not tried again
    assert await metric(http, url, "cerebrum_orchestrator_breaker_state", backend="bad") == 2
    assert await metric(http, url, OUTSTANDING, backend="bad") == 0
    assert await metric(http, url, OUTSTANDING, backend="good") == 0
    assert await metric(http, url, CHOSEN, backend="bad") == 2
    assert await metric(http, url, CHOSEN, backend="good") == 6


@pytest.mark.parametrize("mode", ["hold", "hold_after_first"])
@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_disconnects_releases_its_outstanding_request(
        aiohttp_server, start_orchestrator, http, mode, stream):
    (upstream,) = await fakes(aiohttp_server, 1)
    upstream.mode = mode  # held before its first byte, or after its first chunk
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    async with aiohttp.ClientSession() as client:
        task = asyncio.create_task(client.post(url + CHAT, json=chat(stream=stream)))

        async def held():
            return await metric(http, url, OUTSTANDING, backend="f") == 1
        await wait_for(held, "the request to be outstanding")
        if task.done():  # the stream's headers came: the client closes it
            task.result().close()
        else:  # still waiting for them: the client gives up
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    async def released():
        return await metric(http, url, OUTSTANDING, backend="f") == 0
    await wait_for(released, "the outstanding request to be released")
    upstream.mode = "ok"
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 200
    assert await metric(http, url, OUTSTANDING, backend="f") == 0


async def test_a_rejected_request_releases_its_outstanding_request(aiohttp_server,
                                                                   start_orchestrator, http):
    (upstream,) = await fakes(aiohttp_server, 1)
    upstream.mode = "reject400"
    url = await start_orchestrator(orchestrator_settings(("f", upstream.url)))
    async with http.post(url + CHAT, json=chat()) as resp:
        assert resp.status == 400
    assert await metric(http, url, OUTSTANDING, backend="f") == 0
    assert await metric(http, url, CHOSEN, backend="f") == 1


async def test_a_stream_that_broke_after_its_first_chunk_is_not_retried_elsewhere(
        aiohttp_server, start_orchestrator, http):
    first, second = await fakes(aiohttp_server, 2)
    first.mode = "die_midstream"  # two chunks, then the connection drops
    url = await start_orchestrator(orchestrator_settings(("a", first.url), ("b", second.url)))
    async with http.post(url + CHAT, json=chat(stream=True)) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[-2]["error"]["code"] == "upstream_disconnected" and events[-1] == "[DONE]"
    assert (first.calls, second.calls) == (1, 0)
    assert await metric(http, url, OUTSTANDING, backend="a") == 0
