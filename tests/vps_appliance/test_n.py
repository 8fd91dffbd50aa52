"""`n` choices on the real SmolLM2: indexed choices, streamed chunks carrying their index,
usage summing every choice, the prompt evaluated once, choice i seeded with seed + i, and the
max_n cap."""

from __future__ import annotations

import pytest
from conftest import base_url, metric, spec, sse_events

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
async def smol(start_backend, smollm2):
    return base_url(await start_backend(spec("smol", smollm2, n_ctx=512), max_n=3))


async def _post(http, url: str, path: str, body: dict) -> dict:
    async with http.post(url + path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_n_choices_share_the_prompt_and_sum_the_usage(smol, http):
    body = {"messages": MESSAGES, "max_tokens": 8, "temperature": 1.0, "seed": 7, "n": 3}
    data = await _post(http, smol, CHAT, body)
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    usage = data["usage"]
    evaluated = await metric(http, smol, "cerebrum_backend_prompt_tokens_evaluated_total",
                             model="smol")
    assert evaluated < usage["prompt_tokens"] + 3 * 3  # the prompt once, not n times
    singles = [await _post(http, smol, CHAT, {**body, "n": 1, "seed": 7 + i})
               for i in range(3)]
    assert usage["completion_tokens"] == sum(s["usage"]["completion_tokens"] for s in singles)


async def test_choice_i_is_the_single_answer_seeded_seed_plus_i(smol, http):
    body = {"messages": MESSAGES, "max_tokens": 10, "temperature": 1.0, "seed": 41, "n": 3,
            "speculative": False}
    # From the same cache state: llama.cpp's logits after a prompt evaluated in one batch and
    # after its last token evaluated alone differ slightly (docs/backend-api.md), so the
    # prompt is cached first and every answer below evaluates its last token alone.
    await _post(http, smol, CHAT, {**body, "n": 1, "max_tokens": 1})
    together = [c["message"]["content"] for c in (await _post(http, smol, CHAT, body))["choices"]]
    alone = [(await _post(http, smol, CHAT, {**body, "n": 1, "seed": 41 + i}))["choices"][0][
        "message"]["content"] for i in range(3)]
    assert together == alone
    assert len(set(together)) > 1  # three draws, not one answer three times


async def test_streamed_chunks_carry_their_choice_index(smol, http):
    body = {"prompt": "The sky is", "max_tokens": 6, "temperature": 1.0, "seed": 3, "n": 2,
            "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(smol + COMPLETIONS, json=body) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    *chunks, final = events[:-1]
    texts = {0: "", 1: ""}
    finished = []
    for c in chunks:
        (choice,) = c["choices"]
        texts[choice["index"]] += choice["text"]
        if choice["finish_reason"]:
            finished.append(choice["index"])
    assert finished == [0, 1] and final["choices"] == []
    whole = await _post(http, smol, COMPLETIONS, {**body, "stream": False, "stream_options": None})
    assert [c["text"] for c in whole["choices"]] == [texts[0], texts[1]]
    assert final["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]


async def test_n_over_the_cap_is_a_400(smol, http):
    body = {"messages": MESSAGES, "n": 4}
    async with http.post(smol + CHAT, json=body) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == "n" and "at most 3" in error["message"]
