"""llama.vscode's /infill and Continue's llama.cpp provider (`/completion`) against both
tiers, each held to what the client does with the reply (llama_vscode.py,
continue_llamacpp.py), with llama.cpp's own llama-server as the reference."""

from __future__ import annotations

import pytest
from continue_llamacpp import HEADERS, autocomplete_request, reads
from llama_vscode import completions, fim_request, prime_request, status_bar

PREFIX = "import math\n\n\ndef circle_area(radius):\n"
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
CHUNK = {"text": "def square(x):\n    return x * x\n", "time": 1733100000512,  # Date.now()
         "filename": "/home/me/project/geometry.py"}
TIERS = ["backend", "orchestrator"]


async def vscode_round(http, base: str) -> tuple[list[str], dict]:
    async with http.post(base + "/infill", json=fim_request(
            PREFIX, SUFFIX, "    return ", [CHUNK], model="", n_indent=4)) as resp:
        raw = await resp.read()
        got = completions(resp.status, raw)
    assert got and got[0].strip(), raw[:200]
    bar = status_bar(raw)  # raises where llama.vscode's status bar would throw
    async with http.post(base + "/infill", json=prime_request([CHUNK])) as resp:
        assert resp.status == 200, await resp.text()
    return got, bar


@pytest.mark.parametrize("tier", TIERS)
async def test_llama_vscode_gets_a_suggestion_and_its_status_bar(qwen_tiers, http, tier):
    got, bar = await vscode_round(http, qwen_tiers[tier])
    assert "<|" not in got[0]
    assert bar["n_ctx"] == 2048 and isinstance(bar["tokens_cached"], int)
    assert all(isinstance(bar[k], int | float) for k in bar if k != "tokens_cached")


async def test_llama_vscode_reads_llama_server_the_same_way(qwen_llama_server, http):
    _, bar = await vscode_round(http, qwen_llama_server)
    assert all(isinstance(bar[k], int | float) for k in bar if k != "tokens_cached")


async def continue_round(http, base: str, model: str) -> str:
    body = autocomplete_request(PREFIX + "    return ", SUFFIX, model=model)
    async with http.post(base + "/completion", json=body, headers=HEADERS) as resp:
        raw = await resp.read()
        assert resp.status == 200, raw[:300]
        assert resp.headers["Content-Type"].startswith("text/event-stream")
    return reads(raw)  # raises where Continue's stream reader would throw


@pytest.mark.parametrize("tier", TIERS)
async def test_continue_llamacpp_autocompletes(qwen_tiers, http, tier):
    text = await continue_round(http, qwen_tiers[tier], "qwen2.5-coder-0.5b-instruct"
                                if tier == "backend" else "auto")
    assert text.strip() and "<|" not in text


async def test_continue_llamacpp_reads_llama_server_the_same_way(qwen_llama_server, http):
    text = await continue_round(http, qwen_llama_server, "qwen2.5-coder-0.5b-instruct")
    assert text.strip()


@pytest.mark.parametrize("tier", TIERS)
async def test_completion_refuses_what_it_cannot_honour(qwen_tiers, http, tier):
    base = qwen_tiers[tier]
    for body, param in (({"prompt": "x", "mirostat": 2}, "mirostat"),
                        ({"prompt": [1, 2, 3]}, "prompt"),
                        ({"prompt": "x", "frobnicate": 1}, "frobnicate")):
        async with http.post(base + "/completion", json=body) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["error"]["param"] == param


@pytest.mark.parametrize("tier", TIERS)
async def test_completion_without_streaming_honours_response_fields(qwen_tiers, http, tier):
    body = {"prompt": "def add(a, b):\n    return", "n_predict": 8, "temperature": 0,
            "response_fields": ["content", "timings/predicted_n", "stop"]}
    async with http.post(qwen_tiers[tier] + "/completion", json=body) as resp:
        assert resp.status == 200
        got = await resp.json()
    assert set(got) - {"cerebrum"} == {"content", "timings/predicted_n", "stop"}
    assert 1 <= got["timings/predicted_n"] <= 8 and got["stop"] is True
