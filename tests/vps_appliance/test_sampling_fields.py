"""OpenAI's sampling fields on the real SmolLM2: logit_bias changes the greedy choice,
presence/frequency penalties change a repetitive answer, and bad values are 400s naming them."""

from __future__ import annotations

import llama_cpp
import pytest
from conftest import base_url, spec

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
REPETITIVE = "1 1 1 1 1 1 1 1"


@pytest.fixture
async def smol(start_backend, smollm2):
    return base_url(await start_backend(spec("smol", smollm2, n_ctx=512)))


@pytest.fixture(scope="module")
def vocab(smollm2):
    llm = llama_cpp.Llama(str(smollm2), vocab_only=True, verbose=False)
    yield llm
    llm.close()


async def _text(http, url: str, **body) -> str:
    async with http.post(url + COMPLETIONS, json={"temperature": 0.0, **body}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["choices"][0]["text"]


async def test_logit_bias_bans_the_greedy_first_token(smol, http, vocab):
    first = await _text(http, smol, prompt="The capital of France is", max_tokens=1)
    (token,) = vocab.tokenize(first.encode(), add_bos=False, special=False)
    banned = await _text(http, smol, prompt="The capital of France is", max_tokens=1,
                         logit_bias={str(token): -100})
    assert banned != first
    boosted = await _text(http, smol, prompt="The capital of France is", max_tokens=1,
                          logit_bias={str(token): -100, "28": 100})
    assert boosted == vocab.detokenize([28]).decode()


@pytest.mark.parametrize("field", ["presence_penalty", "frequency_penalty"])
async def test_penalties_change_a_repetitive_answer(smol, http, field):
    plain = await _text(http, smol, prompt=REPETITIVE, max_tokens=16)
    penalised = await _text(http, smol, prompt=REPETITIVE, max_tokens=16, **{field: 2.0})
    assert plain.count("1") > penalised.count("1")


@pytest.mark.parametrize(("body", "param"), [
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -3}, "frequency_penalty"),
    ({"frequency_penalty": "1"}, "frequency_penalty"),
    ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 101}}, "logit_bias"),
    ({"logit_bias": {"5": True}}, "logit_bias"),
    ({"logit_bias": [5]}, "logit_bias"),
    ({"logit_bias": {"99999999": -100}}, "logit_bias"),  # past the vocabulary
])
async def test_bad_sampling_fields_are_400s_naming_them(smol, http, body, param):
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **body}
    async with http.post(smol + CHAT, json=request) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == param
