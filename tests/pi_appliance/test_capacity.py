"""The orchestrator admits and spreads load by the sequences its backends report with every
answer (`X-Cerebrum-Sequences`): several clients reach a real backend's sequences instead of
being shed at the Pi."""

from __future__ import annotations

import asyncio

from conftest import base_url, metric, orchestrator_settings, spec, sse_events

from cerebrum.capacity import SEQUENCES_HEADER, sequences
from pi_appliance.upstream.balance import Balancer
from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"


def test_the_reported_sequences_are_read_and_checked():
    assert sequences({SEQUENCES_HEADER: "4"}) == 4
    for bad in ("", "0", "-1", "four", "99999"):
        assert sequences({SEQUENCES_HEADER: bad}) is None
    assert sequences({}) is None  # llama-server says nothing


def test_a_backend_with_more_sequences_takes_more_of_the_load():
    balancer = Balancer({"big": 1, "small": 1})
    assert balancer.capacity() == 2  # one each until they say
    balancer.learn("big", 4)
    assert balancer.capacity() == 5
    leases = [balancer.take("r", ["big", "small"], balancer.order("r", ["big", "small"])[0])
              for _ in range(5)]
    assert sorted(lease.name for lease in leases) == ["big"] * 4 + ["small"]


async def test_clients_reach_the_backends_sequences_instead_of_being_shed(
        start_backend, start_orchestrator, smollm2, http):
    body = {"messages": [{"role": "user", "content": "Tell a long story."}], "stream": True,
            "max_tokens": 200}

    async def stack(parallel: int) -> tuple[str, str]:
        backend = base_url(await start_backend(spec("smollm2", smollm2, parallel=parallel,
                                                    sampling=Sampling(temperature=0.0))))
        return backend, await start_orchestrator(orchestrator_settings(
            ("vps", backend), model="smollm2", max_concurrent=1))

    # A backend of one sequence: the orchestrator's own limit (one) holds.
    _, url = await stack(1)
    async with http.post(url + CHAT, json=body) as held:
        assert held.status == 200
        await anext(sse_events(held))
        async with http.post(url + CHAT, json=body) as shed:
            assert shed.status == 503
        await held.read()
    # A backend of three: once it has answered (and said so), three clients at once are
    # served, batched in its decode steps.
    backend, url = await stack(3)
    async with http.post(backend + CHAT, json={**body, "max_tokens": 2}) as resp:
        assert resp.status == 200 and resp.headers[SEQUENCES_HEADER] == "3"
        await resp.read()
    async with http.post(url + CHAT, json={**body, "max_tokens": 2}) as resp:
        assert resp.status == 200
        await resp.read()

    async def stream() -> int:
        async with http.post(url + CHAT, json=body) as resp:
            await resp.read()
            return resp.status

    assert await asyncio.gather(stream(), stream(), stream()) == [200, 200, 200]
    name = "cerebrum_backend_batch_sequences_bucket"
    three = (await metric(http, backend, name, model="smollm2", le="3.0")
             - await metric(http, backend, name, model="smollm2", le="2.0"))
    assert three > 0
