"""The editor configurations of docs/editors.md: the exact requests llama.vim, llama.vscode and
Continue send with them, against a real backend (Qwen2.5-Coder) behind an orchestrator with a key.

The bodies follow the plugins' sources: llama.vim `autoload/llama.vim` (`llama#fim`,
`s:ring_update`), llama.vscode `src/llama-server.ts` (`createRequestPayload`), Continue
`packages/openai-adapters/src/apis/LlamaStack.ts` (`fimStream`) with the stop list of
`core/autocomplete/templating/getStopTokens.ts` when a custom autocomplete template is set.
"""

from __future__ import annotations

import dataclasses

import pytest
from conftest import REAL_MODEL_CACHE, base_url, orchestrator_settings, spec, sse_events

from vps_appliance import models
from vps_appliance.settings import Sampling

MODEL = "qwen2.5-coder-0.5b-instruct"
KEY = "editor-test-key-0123456789abcdef"
PREFIX = "import math\n\n\ndef circle_area(radius):\n"
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
VIM_CHUNK = {"text": "def square(x):\n    return x * x\n", "time": [1733100000, 512345],
             "filename": "geometry.py"}  # s:ring_get_extra: time is Vim's reltime()
VSCODE_CHUNK = {"text": VIM_CHUNK["text"], "time": 1733100000512,  # Date.now()
                "filename": "/home/me/project/geometry.py"}
TIMINGS = ("prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
           "predicted_ms", "predicted_per_token_ms", "predicted_per_second")
# With a custom autocomplete template Continue sends only its 3 common stops.
CONTINUE_STOPS = ["/src/", "#- coding: utf-8", "```"]


def headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}", **extra}


def llama_vim_fim(model_fim: str) -> dict:
    """llama#fim's first request at a cursor (t_max_predict_ms 250 when nothing is cached)."""
    return {"id_slot": 0, "input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [VIM_CHUNK], "prompt": "    return ", "n_predict": 128, "stop": [],
            "n_indent": 4, "top_k": 40, "top_p": 0.90, "samplers": ["top_k", "top_p", "infill"],
            "stream": False, "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 250,
            "response_fields": ["content", *(f"timings/{k}" for k in TIMINGS), "truncated",
                                "tokens_cached"],
            "model": model_fim}


@pytest.fixture
async def stack(start_backend, start_orchestrator):
    """(orchestrator URL, backend URL): the backend serves Qwen2.5-Coder under its name."""
    path = models.resolve(MODEL, REAL_MODEL_CACHE)
    backend = base_url(await start_backend(spec(MODEL, path, n_ctx=2048, sampling=Sampling(
        temperature=0.0, max_tokens=16))))
    settings = orchestrator_settings(("vps", backend), model=MODEL, api_keys=(KEY,))
    settings = dataclasses.replace(settings, routes=tuple(
        dataclasses.replace(r, n_ctx=2048, tokenizer="qwen2") for r in settings.routes))
    return await start_orchestrator(settings), backend


async def test_llama_vim_with_the_documented_config(stack, http):
    url, _ = stack
    body = llama_vim_fim(model_fim="auto")
    async with http.post(url + "/infill", json=body, headers=headers()) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert set(got) <= {*body["response_fields"], "cerebrum"}
    assert isinstance(got["content"], str) and "<|" not in got["content"]
    assert got["timings/predicted_n"] >= 1 and got["truncated"] is False
    ring = {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": [VIM_CHUNK],
            "prompt": "", "n_predict": 0, "temperature": 0.0, "samplers": [], "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""], "model": "auto"}  # s:ring_update's cache warm-up
    async with http.post(url + "/infill", json=ring, headers=headers()) as resp:
        assert resp.status == 200, await resp.text()


async def test_llama_vim_without_a_key_is_refused(stack, http):
    url, _ = stack
    async with http.post(url + "/infill", json=llama_vim_fim(model_fim="auto"),
                         headers={"Authorization": "Bearer "}) as resp:
        assert resp.status == 401


async def test_llama_vim_with_its_default_model_fim(stack, http):
    # llama.vim sends model_fim, '' by default (its len() test measures the option's name):
    # both tiers take '' as "any model", as llama-server does.
    url, backend = stack
    for base in (url, backend):
        async with http.post(base + "/infill", json=llama_vim_fim(model_fim=""),
                             headers=headers()) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["content"] is not None


async def test_llama_vscode_with_the_documented_config(stack, http):
    url, _ = stack
    body = {"id_slot": 0, "input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [VSCODE_CHUNK], "prompt": "    return ", "n_predict": 128, "n_cmpl": 1,
            "top_k": 40, "top_p": 0.99, "stream": False, "samplers": ["top_k", "top_p", "infill"],
            "cache_prompt": True, "n_indent": 4, "t_max_prompt_ms": 500, "t_max_predict_ms": 500,
            "model": "auto"}
    async with http.post(url + "/infill", json=body, headers=headers()) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert got["stop"] is True and "<|" not in got["content"]
    assert set(TIMINGS) <= set(got["timings"])
    prep = {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": [VSCODE_CHUNK],
            "prompt": "", "n_predict": 0, "samplers": [], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 1}  # updateExtraContext
    async with http.post(url + "/infill", json=prep, headers=headers()) as resp:
        assert resp.status == 200, await resp.text()
    async with http.post(url + "/infill", json={**body, "n_cmpl": 3}, headers=headers()) as resp:
        assert resp.status == 400  # max_parallel_completions left at its default of 3


def continue_body(model: str) -> dict:
    """LlamastackApi.fimStream's body (undefined fields are dropped by JSON.stringify)."""
    return {"model": model, "prompt": "\n" + PREFIX + "    return ", "suffix": SUFFIX,
            "max_tokens": 64, "stop": CONTINUE_STOPS, "stream": True}


async def continue_reads(resp) -> str:
    """The text as Continue's fimStream reads it: `chunk.choices[0].text` of every chunk."""
    text = ""
    async for event in sse_events(resp):
        if event == "[DONE]":
            break
        text += event["choices"][0]["text"]  # an IndexError here is Continue's TypeError
    return text


async def test_continue_with_the_documented_config_against_the_backend(stack, http):
    _, backend = stack
    async with http.post(backend + "/v1/completions", json=continue_body(MODEL),
                         headers=headers(Accept="application/json", **{"x-api-key": KEY})) as r:
        assert r.status == 200, await r.text()
        text = await continue_reads(r)
    assert text.strip() and "<|" not in text


async def test_continue_with_the_documented_config_through_the_orchestrator(stack, http):
    # Continue's FIM reader takes choices[0] of every chunk: the orchestrator's stats ride on
    # the finishing chunk, never a `choices: []` one.
    url, _ = stack
    async with http.post(url + "/v1/completions", json=continue_body("auto"),
                         headers=headers(Accept="application/json", **{"x-api-key": KEY})) as r:
        assert r.status == 200, await r.text()
        text = await continue_reads(r)
    assert text.strip() and "<|" not in text
