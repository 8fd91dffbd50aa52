"""Fault injection: llama.cpp failing mid-generation (a real model whose decode starts failing)."""

from __future__ import annotations

from pathlib import Path

from conftest import base_url, spec, sse_events

from vps_appliance.engine import decode
from vps_appliance.engine.slots import MeteredLlama
from vps_appliance.settings import ModelSpec


class DyingLlama(MeteredLlama):
    """The real tiny model, except that decoding fails once `fail_after` evals have run."""

    fail_after = 5
    armed = True

    def eval(self, tokens):
        if self.armed and self.fail_after <= 0:
            self.armed = False
            raise RuntimeError("llama_decode returned -1")
        self.fail_after -= 1
        super().eval(tokens)


def dying_loader(spec_: ModelSpec, path: Path) -> DyingLlama:
    return DyingLlama(model_path=str(path), n_ctx=spec_.n_ctx, n_threads=2, verbose=False)


async def test_mid_stream_failure_is_an_error_event_then_done_and_the_model_recovers(
        start_backend, tiny_model, http):
    server = await start_backend(spec("tiny", tiny_model, n_ctx=256), loader=dying_loader)
    url = base_url(server)
    body = {"prompt": "def f", "max_tokens": 50, "stream": True, "speculative": False}
    async with http.post(url + "/v1/completions", json=body) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "generation_failed"
    assert 1 <= len(events) - 2 <= 5  # the tokens before the failure were streamed
    # The same model serves the next request, from a clean context.
    async with http.post(url + "/v1/completions", json={"prompt": "def f", "max_tokens": 3}) as r:
        assert r.status == 200
        assert (await r.json())["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


async def test_failure_before_any_token_is_a_500_json(start_backend, tiny_model, http):
    def loader(spec_: ModelSpec, path: Path) -> DyingLlama:
        llm = dying_loader(spec_, path)
        llm.fail_after = 0
        return llm

    server = await start_backend(spec("tiny", tiny_model, n_ctx=256), loader=loader)
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
    calls = {"n": 0}
    real = decode.llama_cpp.llama_decode

    def failing(ctx, batch):
        calls["n"] += 1
        return -1 if calls["n"] == 2 else real(ctx, batch)

    monkeypatch.setattr(decode.llama_cpp, "llama_decode", failing)
    async with http.post(url + "/v1/completions", json={**repeat, "stream": True,
                                                        "temperature": 0.0}) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert calls["n"] >= 2, "no draft was verified: the test proves nothing"
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "generation_failed"
    monkeypatch.setattr(decode.llama_cpp, "llama_decode", real)
    async with http.post(url + "/v1/completions", json={"prompt": "def f", "max_tokens": 3}) as r:
        assert r.status == 200
