"""Fault injection: llama.cpp failing mid-generation (a real model whose decode starts failing)."""

from __future__ import annotations

from conftest import base_url, spec, sse_events

from vps_appliance.engine.decoding import scheduler


class FailingDecode:
    """The real llama_decode, except that call number `fail_at` (1-based) returns -1."""

    def __init__(self, fail_at: int):
        self.fail_at = fail_at
        self.calls = 0
        self.real = scheduler.llama_cpp.llama_decode

    def __call__(self, ctx, batch):
        self.calls += 1
        return -1 if self.calls == self.fail_at else self.real(ctx, batch)


async def test_mid_stream_failure_is_an_error_event_then_done_and_the_model_recovers(
        start_backend, tiny_model, http, monkeypatch):
    server = await start_backend(spec("tiny", tiny_model, n_ctx=256))
    url = base_url(server)
    failing = FailingDecode(fail_at=6)  # the prompt, then five tokens' steps
    monkeypatch.setattr(scheduler.llama_cpp, "llama_decode", failing)
    body = {"prompt": "def f", "max_tokens": 50, "stream": True, "speculative": False}
    async with http.post(url + "/v1/completions", json=body) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert failing.calls == 6
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "generation_failed"
    assert 1 <= len(events) - 2 <= 5  # the tokens before the failure were streamed
    # The same model serves the next request, from a clean sequence.
    async with http.post(url + "/v1/completions", json={"prompt": "def f", "max_tokens": 3}) as r:
        assert r.status == 200
        assert (await r.json())["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


async def test_failure_before_any_token_is_a_500_json(start_backend, tiny_model, http,
                                                       monkeypatch):
    server = await start_backend(spec("tiny", tiny_model, n_ctx=256))
    monkeypatch.setattr(scheduler.llama_cpp, "llama_decode", FailingDecode(fail_at=1))
    async with http.post(base_url(server) + "/v1/completions",
                         json={"prompt": "x", "max_tokens": 3}) as resp:
        assert resp.status == 500
        assert (await resp.json())["error"]["message"] == "generation failed: RuntimeError"


async def test_a_failing_draft_verification_is_an_error_event_and_the_model_recovers(
        start_backend, smollm2, http, monkeypatch):
    """The speculative path decodes its batches itself: fail the second of them."""
    server = await start_backend(spec("smol", smollm2, n_ctx=512))
    url = base_url(server)
    count = ", ".join(str(i) for i in range(1, 21))
    repeat = {"prompt": f"{count}\n{count}\n{count}\n1, 2,", "max_tokens": 40,
              "speculative": True}
    async with http.post(url + "/v1/completions", json=repeat) as resp:  # measures the batch
        assert resp.status == 200
    failing = FailingDecode(fail_at=2)  # after the prompt's step, the first verification
    monkeypatch.setattr(scheduler.llama_cpp, "llama_decode", failing)
    async with http.post(url + "/v1/completions", json={**repeat, "stream": True,
                                                        "temperature": 0.0}) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert failing.calls >= 2, "no draft was verified: the test proves nothing"
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "generation_failed"
    monkeypatch.setattr(scheduler.llama_cpp, "llama_decode", failing.real)
    async with http.post(url + "/v1/completions", json={"prompt": "def f", "max_tokens": 3}) as r:
        assert r.status == 200
