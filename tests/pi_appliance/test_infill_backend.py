"""Fill in the middle end to end: the real orchestrator before the real backend (Qwen2.5-Coder)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import base_url, metric, orchestrator_settings, spec, sse_events

from vps_appliance.settings import Sampling

MODEL = "qwen2.5-coder"
SPECIAL = ("<|fim", "<|file_sep|>", "<|repo_name|>", "<|endoftext|>", "<|im_")
PREFIX = "import math\n\n\ndef circle_area(radius):\n"
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
RESPONSE_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms",
                   "timings/prompt_per_token_ms", "timings/prompt_per_second",
                   "timings/predicted_n", "timings/predicted_ms",
                   "timings/predicted_per_token_ms", "timings/predicted_per_second",
                   "truncated", "tokens_cached"]
# Continue's autocomplete stops for Qwen2.5-Coder: its FIM template's, then its common ones.
CONTINUE_STOPS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                  "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>",
                  "/src/", "#- coding: utf-8", "```"]
STATS = ("route", "language", "backend", "chunks_offered", "chunks_kept", "prompt_tokens",
         "tokens_cached", "ttft_ms")


def ring_chunk(filename: str, text: str) -> dict:
    """One chunk of llama.vim's ring: `time` is Vim's reltime(), [seconds, microseconds]."""
    return {"text": text, "time": [1764640000, 250000], "filename": filename}


EXTRA = [ring_chunk("geometry.py", "def square(x):\n    return x * x\n")]


def llama_vim_fim(**over) -> dict:
    """llama#fim's request (ggml-org/llama.vim autoload/llama.vim), n_predict set to 16."""
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "input_extra": EXTRA,
            "prompt": "    return ", "n_predict": 16, "n_indent": 4, "top_k": 40, "top_p": 0.99,
            "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 1500,
            "response_fields": RESPONSE_FIELDS}
    return {**body, **over}


def llama_vim_ring_update(extra: list[dict]) -> dict:
    """s:ring_update's warm-up request: the ring's chunks, nothing to predict."""
    return {"input_prefix": "", "input_suffix": "", "input_extra": extra, "prompt": "",
            "n_predict": 0, "temperature": 0.0, "stream": False, "samplers": [],
            "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""]}


def clean(text: str) -> bool:
    return not any(s in text for s in SPECIAL)


def settings_for(url: str, model: str):
    settings = orchestrator_settings(("vps", url), model=model)
    return dataclasses.replace(settings, routes=tuple(
        dataclasses.replace(r, n_ctx=2048, tokenizer="qwen2") for r in settings.routes))


@pytest.fixture
async def stack(start_backend, start_orchestrator, qwen_path) -> tuple[str, str]:
    """(orchestrator URL, backend URL): Qwen2.5-Coder, n_ctx 2048, 2 threads, greedy."""
    server = await start_backend(spec(MODEL, qwen_path, n_ctx=2048,
                                      sampling=Sampling(temperature=0.0, max_tokens=16)))
    backend = base_url(server)
    return await start_orchestrator(settings_for(backend, MODEL)), backend


async def breaker(http, url: str) -> str:
    async with http.get(url + "/health") as resp:
        return (await resp.json())["backends"]["vps"]["breaker"]


async def test_llama_vim_fim_gets_a_middle_and_stats(stack, http):
    url, _ = stack
    async with http.post(url + "/infill", json=llama_vim_fim()) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert set(got) == {*RESPONSE_FIELDS, "cerebrum"}
    assert got["content"] and clean(got["content"])
    assert got["truncated"] is False and 0 < got["timings/predicted_n"] <= 16
    stats = got["cerebrum"]
    assert all(key in stats for key in STATS)
    assert stats["language"] == "python" and stats["chunks_kept"] == 1
    assert stats["tokens_cached"] == got["tokens_cached"] >= stats["prompt_tokens"] > 0

    async with http.post(url + "/infill", json=llama_vim_fim(stream=True)) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    *chunks, last = events
    assert chunks and all(e["stop"] is False and "cerebrum" not in e for e in chunks)
    text = "".join(e["content"] for e in chunks)
    assert text and clean(text)
    assert last["stop"] is True and 0 < last["timings"]["predicted_n"] <= 16
    assert last["cerebrum"]["tokens_cached"] >= last["cerebrum"]["prompt_tokens"] > 0


async def test_openai_completion_with_suffix(stack, http):
    url, _ = stack
    body = {"model": "auto", "prompt": PREFIX + "    return ", "suffix": SUFFIX,
            "max_tokens": 12, "temperature": 0, "stop": CONTINUE_STOPS}
    async with http.post(url + "/v1/completions", json=body) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert got["object"] == "text_completion" and got["model"] == MODEL
    choice = got["choices"][0]
    assert choice["text"] and clean(choice["text"])
    assert choice["finish_reason"] in ("stop", "length")
    assert 0 < got["usage"]["completion_tokens"] <= 12
    assert got["cerebrum"]["tokens_cached"] > 0

    async with http.post(url + "/v1/completions", json={**body, "stream": True}) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]" and events[-2]["cerebrum"]["tokens_cached"] > 0
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    assert text and clean(text)
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def source(name: str, lines: int) -> str:
    return "".join(f"def {name}_{i}(value):\n    return value * {i} + {len(name)}\n\n"
                   for i in range(lines))


async def test_the_backend_cache_is_reused_across_keystrokes(stack, http):
    url, _ = stack
    ring = [ring_chunk(f"{n}.py", source(n, 6)) for n in ("alpha", "beta", "gamma")]
    prefix = "import math\n\n\n" + source("local", 5) + "def total(values):\n"
    suffix = "\n" + source("after", 8)
    async with http.post(url + "/infill", json=llama_vim_ring_update(ring)) as resp:
        assert resp.status == 200
        assert set(await resp.json()) == {"cerebrum"}  # response_fields [""]: nothing else

    typing = llama_vim_fim(input_extra=ring, input_prefix=prefix, prompt="    result = ",
                           input_suffix=suffix, n_predict=4)
    async with http.post(url + "/infill", json=typing) as resp:
        first = await resp.json()
    context = first["cerebrum"]["prompt_tokens"] - first["timings/prompt_n"]
    assert context > 250  # the ring's chunks came from the warm-up's cache

    # The line is finished and Enter pressed; llama.vim's ring has moved alpha to its end
    # (picked again), so the chunks arrive in another order.
    typed = llama_vim_fim(input_extra=[*ring[1:], ring[0]],
                          input_prefix=prefix + "    result = sum(values)\n", prompt="",
                          input_suffix=suffix, n_predict=4)
    async with http.post(url + "/infill", json=typed) as resp:
        second = await resp.json()
    evaluated = second["timings/prompt_n"]
    # The typed line, the bounded suffix window (64 tokens) and the FIM markers only.
    assert 0 < evaluated <= 64 + 32
    assert second["cerebrum"]["prompt_tokens"] - evaluated > 4 * evaluated
    assert second["cerebrum"]["chunks_kept"] == 3


async def test_orchestrator_options_are_accepted_by_the_backend(stack, http):
    url, _ = stack
    cases = [
        {"stop": [f"#{i}" for i in range(16)]},
        {"repeat_last_n": -1, "repeat_penalty": 1.1},
        {"seed": 2**32 - 1, "temperature": 2.0, "top_k": 1000},
        {"t_max_predict_ms": -1, "t_max_prompt_ms": -1, "n_indent": 1024},
        {"samplers": ["penalties", "dry", "top_k", "typ_p", "typical_p", "top_p", "min_p",
                      "xtc", "top_n_sigma", "adaptive_p", "temperature", "infill"]},
        {"input_extra": [{"text": "PI = 3.14159\n", "time": [1764640000, 1]}]},  # no filename
        {"id_slot": -1, "n_cmpl": 1, "typical_p": 0.5, "min_p": 1.0,
         "presence_penalty": -2.0, "frequency_penalty": 2.0, "cache_prompt": False},
        {"cerebrum": {"filename": "geometry.py", "language": "python",
                      "files": [{"filename": "consts.py", "text": "PI = 3.14159\n"}]}},
    ]
    for case in cases:
        async with http.post(url + "/infill", json=llama_vim_fim(n_predict=1, **case)) as resp:
            assert resp.status == 200, (case, await resp.text())
    # What only llama-server takes is the backend's 400, passed on as it came.
    for _ in range(4):  # more than breaker.failures: a refusal is no failure
        async with http.post(url + "/infill", json=llama_vim_fim(id_slot=1)) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
        assert "id_slot" in error["message"] and error["type"] == "invalid_request_error"
    assert await breaker(http, url) == "closed"


async def test_model_without_fim_tokens_is_501_and_no_failure(start_backend,
                                                              start_orchestrator, smollm2,
                                                              http):
    backend = base_url(await start_backend(spec("smollm2", smollm2)))
    url = await start_orchestrator(settings_for(backend, "smollm2"))
    for _ in range(4):  # more than breaker.failures
        async with http.post(url + "/infill", json=llama_vim_fim()) as resp:
            assert resp.status == 501
            error = (await resp.json())["error"]
        assert "fill in the middle" in error["message"]
    body = {"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 4}
    async with http.post(url + "/v1/completions", json=body) as resp:
        assert resp.status == 501
    assert await breaker(http, url) == "closed"


async def test_client_hanging_up_cancels_the_backend(stack, http):
    url, backend = stack
    # A long list the model keeps extending: the generation is still running when the
    # client leaves (the only request here allowed more than 16 tokens).
    body = llama_vim_fim(input_prefix="numbers = [\n" + "".join(f"    {i},\n" for i in range(1, 6)),
                         prompt="", input_suffix="", input_extra=[], n_predict=400,
                         t_max_predict_ms=0, stream=True, response_fields=None)
    body = {k: v for k, v in body.items() if v is not None}
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 200
        async for event in sse_events(resp):
            assert event["stop"] is False
            break  # the editor typed on: it hangs up ...
        resp.close()
    async with http.post(url + "/infill", json=llama_vim_fim(n_predict=4)) as resp:
        assert resp.status == 200  # ... and asks again at once: answered, not shed
    async with asyncio.timeout(60):  # only catches a hang
        while await metric(http, backend, "cerebrum_backend_generations_cancelled_total",
                           model=MODEL) < 1:
            await asyncio.sleep(0.05)
    assert await breaker(http, url) == "closed"
