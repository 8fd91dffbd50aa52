"""Fill-in-the-middle on a real backend with Qwen2.5-Coder: /infill as llama.vim and llama.vscode
send it, /v1/completions with suffix as Continue does, budgets, errors, KV reuse, cancellation."""

from __future__ import annotations

import asyncio

import llama_cpp
import pytest
from conftest import base_url, metric, spec, sse_events

from vps_appliance.engine import fim_service
from vps_appliance.engine.params import GenerationParams
from vps_appliance.engine.sampling import SamplerSpec
from vps_appliance.engine.slots import LoadedModel, load_llama
from vps_appliance.settings import Sampling

SPECIAL = ("<|fim", "<|file_sep|>", "<|repo_name|>", "<|endoftext|>", "<|im_")
PREFIX = "import math\n\n\ndef circle_area(radius):\n    "
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
TIMINGS = ("prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
           "predicted_ms", "predicted_per_token_ms", "predicted_per_second")


@pytest.fixture
async def qwen(start_backend, qwen_path):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=1024,
                                      sampling=Sampling(temperature=0.0, max_tokens=16)))
    return base_url(server)


def clean(text: str) -> bool:
    return not any(s in text for s in SPECIAL)


async def test_llama_vim_request_gets_its_response_fields(qwen, http):
    body = {"id_slot": 0, "input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": "PI = 3.14159\n", "time": 1700000000.0,
                             "filename": "consts.py"}],
            "prompt": "return", "n_predict": 16, "stop": [], "n_indent": 4, "top_k": 40,
            "top_p": 0.90, "samplers": ["top_k", "top_p", "infill"], "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 1000,
            "response_fields": ["content", *(f"timings/{k}" for k in TIMINGS), "truncated",
                                "tokens_cached"]}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert set(data) == {"content", *(f"timings/{k}" for k in TIMINGS), "truncated",
                         "tokens_cached"}
    assert isinstance(data["content"], str) and clean(data["content"])
    assert data["truncated"] is False and data["tokens_cached"] > data["timings/prompt_n"] > 0
    assert 0 < data["timings/predicted_n"] <= 16


async def test_llama_vim_warm_up_request_predicts_nothing(qwen, http):
    body = {"id_slot": 0, "input_prefix": "", "input_suffix": "",
            "input_extra": [{"text": "def f():\n    pass\n", "time": 1.0, "filename": "a.py"}],
            "prompt": "", "n_predict": 0, "temperature": 0.0, "samplers": [], "stream": False,
            "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""]}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 200
        assert await resp.json() == {}


async def test_llama_vscode_request_gets_a_llama_server_response(qwen, http):
    body = {"id_slot": 0, "input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": "PI = 3.14159\n", "time": 1, "filename": "/w/consts.py"}],
            "prompt": "", "n_predict": 16, "n_cmpl": 1, "top_k": 40, "top_p": 0.99,
            "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "n_indent": 4, "t_max_prompt_ms": 500, "t_max_predict_ms": 2500}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["stop"] is True and data["stop_type"] in ("eos", "limit", "word", "none")
    assert isinstance(data["content"], str) and clean(data["content"])
    assert set(TIMINGS) <= set(data["timings"]) and data["truncated"] is False
    assert data["tokens_cached"] >= data["tokens_evaluated"]


async def test_n_cmpl_over_one_is_refused_naming_it(qwen, http):
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 4, "n_cmpl": 3}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "n_cmpl"


async def test_greedy_infill_text_arrives_without_special_tokens(qwen, http):
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 16, "temperature": 0}
    async with http.post(qwen + "/infill", json=body) as resp:
        data = await resp.json()
    assert data["content"].strip() and clean(data["content"])


async def test_streamed_infill_ends_with_stop_and_timings(qwen, http):
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 8, "temperature": 0,
            "stream": True}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = [e async for e in sse_events(resp)]
    *chunks, last = events
    assert chunks and all(c["stop"] is False for c in chunks)
    text = "".join(c["content"] for c in chunks)
    assert text.strip() and clean(text)
    assert last["stop"] is True and last["content"] == ""
    assert last["timings"]["predicted_n"] <= 8 and set(TIMINGS) <= set(last["timings"])


async def test_stops_at_n_predict_and_at_a_stop_string(qwen, http):
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 3, "temperature": 0}
    async with http.post(qwen + "/infill", json=body) as resp:
        data = await resp.json()
    assert data["stop_type"] == "limit" and data["timings"]["predicted_n"] == 3
    body = {"input_prefix": "def add(a, b):\n    return a", "input_suffix": "\n", "stop": ["b"],
            "n_predict": 16, "temperature": 0}
    async with http.post(qwen + "/infill", json=body) as resp:
        data = await resp.json()
    assert data["stop_type"] == "word" and "b" not in data["content"]
    assert data["stopping_word"] == "b"  # as llama-server names it


async def test_prefix_over_budget_is_cut_and_reported(start_backend, qwen_path, http):
    server = await start_backend(spec("qwen", qwen_path, n_ctx=256))
    prefix = "".join(f"value_{i} = {i}\n" for i in range(200))
    body = {"input_prefix": prefix, "input_suffix": "\n", "n_predict": 4, "temperature": 0}
    async with http.post(base_url(server) + "/infill", json=body) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["truncated"] is True and data["truncation"]["prefix_lines"] > 100
    assert data["tokens_evaluated"] <= 256 - 4


async def test_model_without_fim_tokens_is_501(start_backend, smollm2, http):
    server = await start_backend(spec("smol", smollm2))
    body = {"input_prefix": "x = ", "input_suffix": "\n", "n_predict": 4}
    async with http.post(base_url(server) + "/infill", json=body) as resp:
        assert resp.status == 501
        error = (await resp.json())["error"]
    assert "fill in the middle" in error["message"] and error["type"] == "not_supported_error"
    body = {"model": "smol", "prompt": "x = ", "suffix": "\n", "max_tokens": 4}
    async with http.post(base_url(server) + "/v1/completions", json=body) as resp:
        assert resp.status == 501


@pytest.mark.parametrize(("body", "param"), [
    ({"input_prefix": "a", "input_suffix": "b", "n_probs": 3}, "n_probs"),
    ({"input_suffix": "b"}, "input_prefix"),
    ({"input_prefix": 1, "input_suffix": "b"}, "input_prefix"),
    ({"input_prefix": "a", "input_suffix": "b", "input_extra": [{"txt": "x"}]}, "input_extra"),
    ({"input_prefix": "a", "input_suffix": "b", "samplers": ["mirostat"]}, "samplers"),
    ({"input_prefix": "a", "input_suffix": "b", "n_predict": "8"}, "n_predict"),
    ({"input_prefix": "a", "input_suffix": "b", "id_slot": 3}, "id_slot"),
    ({"input_prefix": "a", "input_suffix": "b", "response_fields": "content"},
     "response_fields"),
    ({"input_prefix": "a", "input_suffix": "b", "repeat_penalty": 0}, "repeat_penalty"),
    ({"input_prefix": "a", "input_suffix": "b", "stop": ["#"] * 17}, "stop"),
    ({"input_prefix": "a", "input_suffix": "b", "stop": ["#" * 257]}, "stop"),
    ({"input_prefix": "a", "input_suffix": "b", "repeat_last_n": -2}, "repeat_last_n"),
])
async def test_bad_fields_are_a_400_naming_them(qwen, http, body, param):
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == param


async def test_what_the_orchestrator_passes_on_is_accepted(qwen, http):
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 2, "temperature": 0,
            "stop": [f"#{i}" for i in range(16)], "repeat_last_n": -1, "repeat_penalty": 1.1,
            "input_extra": [{"text": "PI = 3.14159\n", "time": [1764640000, 1]}]}
    async with http.post(qwen + "/infill", json=body) as resp:
        assert resp.status == 200, await resp.text()
        assert clean((await resp.json())["content"])
    # Continue's autocomplete sends its FIM template's stops: 12 for Qwen2.5-Coder.
    body = {"model": "qwen", "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 2,
            "temperature": 0, "stop": [f"#{i}" for i in range(16)]}
    async with http.post(qwen + "/v1/completions", json=body) as resp:
        assert resp.status == 200, await resp.text()
    body.pop("suffix")  # a plain completion keeps OpenAI's 4
    async with http.post(qwen + "/v1/completions", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "stop"


async def test_repeat_last_n_minus_one_penalises_the_prompt_too(qwen, http):
    # As in llama-server: -1 is the whole context and the prompt counts (it is replayed into
    # the sampler). Unresolved, -1 would reach llama.cpp's penalties sampler as 0: off.
    body = {"input_prefix": "x = 1\ny = 1\nz = ", "input_suffix": "\n", "n_predict": 2,
            "temperature": 0, "repeat_penalty": 10.0,
            "samplers": ["penalties", "top_k", "temperature"]}  # greedy
    got = {}
    for window in (0, -1):
        async with http.post(qwen + "/infill", json={**body, "repeat_last_n": window}) as resp:
            assert resp.status == 200
            got[window] = (await resp.json())["content"]
    assert got[0].startswith("1") and not got[-1].startswith("1")


def test_repeat_last_n_minus_one_penalises_the_whole_context(qwen_path):
    s = spec("qwen", qwen_path, n_ctx=512)
    llm = load_llama(s, qwen_path)
    try:
        model = LoadedModel(llm=llm, formatter=None, vocab=llama_cpp.llama_model_get_vocab(
            llm.model), n_ctx=llm.n_ctx(), cache=None)  # type: ignore[arg-type]
        params = GenerationParams(max_tokens=4, temperature=0.0, top_p=1.0, top_k=40,
                                  min_p=0.0, repeat_penalty=1.1, stop=(), seed=None)
        for asked, used in ((-1, 512), (0, 0), (64, 64)):
            prepared = fim_service.prepare(model, s, params, prefix="x = ", suffix="\n",
                                           samplers=SamplerSpec(repeat_last_n=asked))
            assert prepared.control.samplers.repeat_last_n == used
    finally:
        llm.close()


async def test_one_line_typed_at_the_cursor_reevaluates_only_the_tail(qwen, http):
    lines = [f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(12)]
    after = "".join(f"def later_{i}(y):\n    return y + {i}\n\n" for i in range(20))
    first = {"input_prefix": "".join(lines), "input_suffix": after, "n_predict": 2,
             "temperature": 0}
    typed = {**first, "input_prefix": first["input_prefix"] + "result = helper_3(7)\n"}
    base = await metric(http, qwen, "cerebrum_backend_prompt_tokens_evaluated_total",
                        model="qwen")
    async with http.post(qwen + "/infill", json=first) as resp:
        cold = (await resp.json())["timings"]["prompt_n"]
    async with http.post(qwen + "/infill", json=typed) as resp:
        warm = (await resp.json())["timings"]["prompt_n"]
    evaluated = await metric(http, qwen, "cerebrum_backend_prompt_tokens_evaluated_total",
                             model="qwen")
    assert cold > 150 and warm <= 64 + 16 and evaluated - base == cold + warm


async def test_openai_completion_with_suffix_fills_the_middle(qwen, http):
    body = {"model": "qwen", "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 12,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(qwen + "/v1/completions", json=body) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["text"] for e in events[:-2])
    assert text.strip() and clean(text)
    assert events[-2]["usage"]["completion_tokens"] <= 12
    del body["stream_options"]
    body["stream"] = False
    async with http.post(qwen + "/v1/completions", json=body) as resp:
        data = await resp.json()
    # Not compared with the streamed text: the second request reuses the first one's KV,
    # and a batched prompt evaluation can round differently from a token-by-token one.
    assert data["object"] == "text_completion" and clean(data["choices"][0]["text"])


async def test_client_hanging_up_cancels_the_infill(qwen, http):
    prefix = "numbers = [\n" + "".join(f"    {i},\n" for i in range(1, 6))
    body = {"input_prefix": prefix, "input_suffix": "", "n_predict": 400, "temperature": 0,
            "stream": True}
    for _ in range(2):  # llama-server-style clients hang up to start the next request
        async with http.post(qwen + "/infill", json=body) as resp:
            await resp.content.readline()
    async with asyncio.timeout(60):
        while await metric(http, qwen, "cerebrum_backend_generations_cancelled_total",
                           model="qwen") < 2:
            await asyncio.sleep(0.05)
