"""The orchestrator in front of two real upstreams on one route — our backend and llama.cpp's
llama-server, both serving SmolLM2 — spreads the load over both, keeps answering when one is
SIGKILLed (its circuit opens), and sends it load again once it is back."""

from __future__ import annotations

import asyncio
import time

from conftest import SteeredClock, base_url, metric, orchestrator_settings, spec
from llama_servers import LlamaServer

from pi_appliance.settings import BreakerPolicy

CHAT = "/v1/chat/completions"
COOLDOWN = 30.0


def chat(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"Count to {i}."}], "max_tokens": 4,
            "temperature": 0}


async def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll an async `predicate` until true; fail after `timeout` (a hang, not a race)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def served_by(answer: dict) -> str:
    """Which upstream produced an answer, by the upstream's own `model` field: ours names the
    model as in its manifest, llama-server by its file."""
    model = answer["model"]
    assert model == "smollm2" or model.endswith(".gguf"), model
    return "ours" if model == "smollm2" else "llama"


async def test_two_real_upstreams_share_a_route_and_one_can_die_and_come_back(
        smollm2, start_backend, start_orchestrator, http):
    # One sequence, as llama-server's one slot: the two weigh the same (the orchestrator
    # weighs a backend by the sequences it reports; test_capacity.py).
    ours = base_url(await start_backend(spec("smollm2", smollm2, parallel=1)))
    llama = LlamaServer(smollm2, "--metrics")
    try:
        await llama.start(http)
        clock = SteeredClock()
        url = await start_orchestrator(orchestrator_settings(
            ("ours", ours), ("llama", llama.url), model="smollm2", max_concurrent=16,
            breaker=BreakerPolicy(failures=2, cooldown=COOLDOWN)), clock=clock)

        async def ask(i: int) -> dict:
            async with http.post(url + CHAT, json=chat(i)) as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.json()
            assert answer["choices"][0]["message"]["content"] is not None
            assert answer["cerebrum"]["backend"] == served_by(answer)
            return answer

        async def ours_answered(n: int) -> bool:
            return await metric(http, ours, "cerebrum_backend_requests_total",
                                endpoint=CHAT, status="200") == n

        async def llama_metric(name: str) -> float:
            return await metric(http, llama.url, name)

        # 1. Concurrent requests are spread over both, by each upstream's own account.
        answers = await asyncio.gather(*(ask(i) for i in range(6)))
        by = [served_by(a) for a in answers]
        assert by.count("ours") >= 1 and by.count("llama") >= 1, by
        await wait_for(lambda: ours_answered(by.count("ours")), "our backend's request count")
        assert await llama_metric("llamacpp:tokens_predicted_total") >= by.count("llama")
        for name in ("ours", "llama"):
            assert await metric(http, url, "cerebrum_orchestrator_backend_chosen_total",
                                backend=name) == by.count(name)

        # 2. llama-server dies: every request still succeeds, on ours; its circuit opens.
        llama.kill()
        for i in range(6):
            assert served_by(await ask(i)) == "ours"
        await wait_for(lambda: ours_answered(by.count("ours") + 6), "our backend's count")
        assert await metric(http, url, "cerebrum_orchestrator_breaker_state",
                            backend="llama") == 2
        failures = await metric(http, url, "cerebrum_orchestrator_backend_chosen_total",
                                backend="llama") - by.count("llama")
        assert failures == 2  # BreakerPolicy.failures, then it is not tried again
        for name in ("ours", "llama"):
            assert await metric(http, url, "cerebrum_orchestrator_backend_outstanding_requests",
                                backend=name) == 0

        # 3. It comes back: after the cooldown the half-open probe reaches it, the circuit
        # closes, and it takes its share again.
        await llama.start(http)
        clock.advance(COOLDOWN)
        back = False
        for i in range(10):
            back = served_by(await ask(i)) == "llama"
            if back:
                break
        assert back, "llama-server took no request after it came back"
        assert await metric(http, url, "cerebrum_orchestrator_breaker_state",
                            backend="llama") == 0
        again = [served_by(a) for a in await asyncio.gather(*(ask(i) for i in range(4)))]
        assert again.count("ours") >= 1 and again.count("llama") >= 1, again
        assert await llama_metric("llamacpp:tokens_predicted_total") >= again.count("llama") + 1
    finally:
        llama.stop()
