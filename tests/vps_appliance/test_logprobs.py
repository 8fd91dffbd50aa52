"""logprobs on real models: chat's `logprobs.content` and the completions' legacy shape,
streamed and not, from the raw logits (the greedy token is the most likely one), and the
same for tokens accepted from speculative drafts."""

from __future__ import annotations

import math

import pytest
from conftest import base_url, spec, sse_events

from vps_appliance.settings import Sampling

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
QUESTION = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


@pytest.fixture
async def smol(start_backend, smollm2):
    return base_url(await start_backend(spec("smol", smollm2, n_ctx=512)))


@pytest.fixture
async def qwen(start_backend, qwen_path):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=1024,
                                      sampling=Sampling(temperature=0.0, max_tokens=60)))
    return base_url(server)


async def _post(http, url: str, path: str, body: dict) -> dict:
    async with http.post(url + path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def _check_greedy(entries: list[dict], top_n: int) -> None:
    for e in entries:
        assert e["logprob"] <= 0 and bytes(e["bytes"]).decode("utf-8", "replace") == e["token"]
        tops = e["top_logprobs"]
        assert len(tops) == top_n
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops),
                                                      reverse=True)
        assert sum(math.exp(t["logprob"]) for t in tops) <= 1 + 1e-6
        # Greedy: the sampled token is the most likely one, with the same logprob.
        assert tops[0]["token"] == e["token"]
        assert tops[0]["logprob"] == pytest.approx(e["logprob"])


async def test_chat_logprobs_cover_every_token(smol, http):
    body = {"messages": QUESTION, "max_tokens": 12, "temperature": 0, "logprobs": True,
            "top_logprobs": 3, "speculative": False}
    choice = (await _post(http, smol, CHAT, body))["choices"][0]
    entries = choice["logprobs"]["content"]
    assert len(entries) == 12 and choice["finish_reason"] == "length"
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    _check_greedy(entries, 3)


async def test_no_logprobs_unless_asked(smol, http):
    body = {"messages": QUESTION, "max_tokens": 3, "logprobs": False}
    choice = (await _post(http, smol, CHAT, body))["choices"][0]
    assert "logprobs" not in choice or choice["logprobs"] is None


async def test_streamed_logprobs_match_the_whole_answer(smol, http):
    body = {"messages": QUESTION, "max_tokens": 12, "temperature": 0, "logprobs": True,
            "top_logprobs": 2, "speculative": False}
    whole = (await _post(http, smol, CHAT, body))["choices"][0]["logprobs"]["content"]
    async with http.post(smol + CHAT, json={**body, "stream": True}) as resp:
        events = [e async for e in sse_events(resp)]
    streamed = [entry for e in events[:-1] for c in e["choices"] if c.get("logprobs")
                for entry in c["logprobs"]["content"]]
    assert [e["token"] for e in streamed] == [e["token"] for e in whole]
    assert [e["logprob"] for e in streamed] == pytest.approx([e["logprob"] for e in whole],
                                                             abs=1e-3)


async def test_completion_logprobs_have_the_legacy_shape(smol, http):
    prompt = "def add(a, b):"
    body = {"prompt": prompt, "max_tokens": 8, "temperature": 0, "logprobs": 2,
            "speculative": False}
    choice = (await _post(http, smol, COMPLETIONS, body))["choices"][0]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 8
    assert "".join(lp["tokens"]) == choice["text"]
    offsets = [len(prompt) + len("".join(lp["tokens"][:i])) for i in range(8)]
    assert lp["text_offset"] == offsets
    for token, logprob, tops in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"],
                                    strict=True):
        assert len(tops) <= 2 and max(tops.values()) == pytest.approx(logprob)
        assert tops[token] == pytest.approx(logprob)
    async with http.post(smol + COMPLETIONS, json={**body, "stream": True}) as resp:
        events = [e async for e in sse_events(resp)]
    streamed = [c["logprobs"] for e in events[:-1] for c in e["choices"] if c["logprobs"]]
    assert [t for s in streamed for t in s["tokens"]] == lp["tokens"]
    assert [o for s in streamed for o in s["text_offset"]] == lp["text_offset"]


async def test_drafted_tokens_have_their_logprobs(qwen, http):
    body = {"messages": QUESTION, "max_tokens": 40, "logprobs": True, "top_logprobs": 1}
    plain = await _post(http, qwen, CHAT, {**body, "speculative": False})
    text = plain["choices"][0]["message"]["content"]
    drafted = await _post(http, qwen, CHAT, {**body, "prediction": {"type": "content",
                                                                    "content": text}})
    assert drafted["usage"]["completion_tokens_details"]["accepted_prediction_tokens"] > 0
    entries = drafted["choices"][0]["logprobs"]["content"]
    assert len(entries) == drafted["usage"]["completion_tokens"]
    _check_greedy(entries, 1)
    if drafted["choices"][0]["message"]["content"] == text:  # same tokens: the same numbers,
        # but for a verify batch's rounding (up to ~0.8 in a logit; docs/backend-api.md): a
        # logprob read at the wrong batch position would be off by whole units
        want = [e["logprob"] for e in plain["choices"][0]["logprobs"]["content"]]
        assert [e["logprob"] for e in entries] == pytest.approx(want, abs=0.25)
