"""The prefix cache on disk: a stable prefix (system prompt) evaluated once is stored, found
again after a restart and loaded instead of evaluated; bad files are ignored and removed; the
size bound evicts the least recently used."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog
from conftest import base_url, metric, spec
from test_batching import same_or_near_tie

from vps_appliance.engine.disk_cache import MAGIC, DiskCache, encode_header, file_name

CHAT = "/v1/chat/completions"
STORES = "cerebrum_backend_prefix_cache_stores_total"
HITS = "cerebrum_backend_prefix_cache_hits_total"
MISSES = "cerebrum_backend_prefix_cache_misses_total"
REJECTED = "cerebrum_backend_prefix_cache_rejected_total"
EVALUATED = "cerebrum_backend_prompt_tokens_evaluated_total"
# ~400 tokens: a stand-in for an agent's instructions and tool schemas.
SYSTEM = ("You are a careful coding assistant working in a Python repository. "
          + " ".join(f"Rule {i}: keep functions short, name things plainly, test behaviour."
                     for i in range(30)))
LOGPROBS = {"logprobs": True, "top_logprobs": 2}
QUESTIONS = ("Write a Python function that adds two numbers.",
             "Write a Python function that reverses a string.")


def model_spec(path: Path, **kw):
    return spec("smol", path, n_ctx=2048, prefix_cache_min_tokens=64, **kw)


def body(question: str, **extra) -> dict:
    return {"model": "smol", "max_tokens": 24, "temperature": 0.0,
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": question}], **extra}


async def ask(http, url: str, question: str, **extra) -> dict:
    async with http.post(url + CHAT, json=body(question, **extra)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def answer(reply: dict) -> str:
    return reply["choices"][0]["message"]["content"]


def cached(reply: dict) -> int:
    return reply["usage"]["prompt_tokens_details"]["cached_tokens"]


async def until(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll until true (the writer thread works on its own); the deadline catches hangs."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def stored_once(start_backend, http, smollm2: Path, state: Path, **kw) -> None:
    """A backend evaluates SYSTEM cold and stores it; then it stops (the restart)."""
    server = await start_backend(model_spec(smollm2, **kw), state_dir=state)
    url = base_url(server)
    await ask(http, url, QUESTIONS[0])

    async def written() -> bool:
        return await metric(http, url, STORES, model="smol") == 1

    await until(written, "the prefix is on disk")
    await server.close()


def files(state: Path) -> list[Path]:
    return sorted((state / "prefixes" / "smol").glob("*.kv"))


async def test_a_stored_prefix_survives_a_restart_and_is_loaded_not_evaluated(
        start_backend, http, smollm2, tmp_path):
    state = tmp_path / "state"
    await stored_once(start_backend, http, smollm2, state)
    assert len(files(state)) == 1

    cold = await start_backend(model_spec(smollm2), state_dir=tmp_path / "empty")
    expected = await ask(http, base_url(cold), QUESTIONS[1])
    assert cached(expected) == 0

    warm = await start_backend(model_spec(smollm2), state_dir=state)
    url = base_url(warm)
    reply = await ask(http, url, QUESTIONS[1])
    assert answer(reply) == answer(expected)  # temperature 0: the same as evaluated cold
    prompt = reply["usage"]["prompt_tokens"]
    assert 300 < cached(reply) < prompt  # the system prompt came from disk, the rest did not
    assert await metric(http, url, EVALUATED, model="smol") == prompt - cached(reply)
    assert await metric(http, url, HITS, model="smol") == 1
    assert await metric(http, url, MISSES, model="smol") == 0
    assert await metric(http, url, STORES, model="smol") == 0  # already there: not again


async def test_two_sequences_loading_the_same_prefix_at_once_both_get_it_right(
        start_backend, http, smollm2, tmp_path):
    state = tmp_path / "state"
    await stored_once(start_backend, http, smollm2, state)
    cold = await start_backend(model_spec(smollm2), state_dir=tmp_path / "empty")
    expected = [await ask(http, base_url(cold), q, **LOGPROBS) for q in QUESTIONS]

    warm = await start_backend(model_spec(smollm2, parallel=2), state_dir=state)
    url = base_url(warm)
    replies = await asyncio.gather(*(ask(http, url, q, **LOGPROBS) for q in QUESTIONS))
    for alone, batched in zip(expected, replies, strict=True):
        same_or_near_tie(alone, batched)  # batched with each other: the batching rule
    assert all(cached(r) > 300 for r in replies)
    assert await metric(http, url, HITS, model="smol") == 2


def _flip_a_kv_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _another_models(path: Path) -> None:
    data = path.read_bytes()
    start = len(MAGIC) + 4
    header = data[start:data.index(b"}", start) + 1]
    path.write_bytes(data.replace(header, header.replace(b'"model": "', b'"model": "X'), 1))


@pytest.mark.parametrize("damage", [_flip_a_kv_byte, _truncate, _another_models])
async def test_a_damaged_or_foreign_file_is_ignored_removed_and_the_request_served_cold(
        start_backend, http, smollm2, tmp_path, damage):
    state = tmp_path / "state"
    await stored_once(start_backend, http, smollm2, state)
    (stored,) = files(state)
    original = stored.read_bytes()
    damage(stored)
    cold = await start_backend(model_spec(smollm2), state_dir=tmp_path / "empty")
    expected = await ask(http, base_url(cold), QUESTIONS[1])

    with structlog.testing.capture_logs() as logged:
        server = await start_backend(model_spec(smollm2), state_dir=state)
        url = base_url(server)
        reply = await ask(http, url, QUESTIONS[1])
    assert answer(reply) == answer(expected)
    assert cached(reply) == 0
    assert await metric(http, url, REJECTED, model="smol") == 1
    assert await metric(http, url, HITS, model="smol") == 0
    ignored = [e for e in logged if e["event"] == "prefix_cache_file_ignored"]
    assert [e["file"] for e in ignored] == [stored.name], logged
    assert SYSTEM[:40] not in json.dumps(logged, default=str)  # never the prompt

    async def stored_anew() -> bool:
        return await metric(http, url, STORES, model="smol") == 1

    await until(stored_anew, "the prefix is evaluated and stored again")
    assert [p.read_bytes() for p in files(state)] == [original]  # as the first run wrote it


async def test_an_unusable_state_directory_means_no_disk_cache_not_a_failure(
        start_backend, http, smollm2, tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    server = await start_backend(model_spec(smollm2), state_dir=blocker)
    reply = await ask(http, base_url(server), QUESTIONS[0])
    assert answer(reply)


# The cache's own bookkeeping, on real files (no model: the KV is opaque bytes to it).

def _cache(directory: Path, capacity: int) -> DiskCache:
    cache = DiskCache(directory, "model-a", capacity, min_tokens=16)
    cache.open()
    return cache


def _write(cache: DiskCache, tokens: list[int], kv: bytes) -> None:
    assert cache.store(tokens, kv)
    cache.close()  # the writer finishes what it was given
    cache.open()


def _used_at(directory: Path, tokens: list[int], when: float) -> None:
    os.utime(directory / file_name("model-a", tokens), (when, when))


def test_the_size_bound_evicts_the_least_recently_used(tmp_path):
    kv = bytes(range(256)) * 40  # 10 KiB each
    prefixes = [[i] * 20 for i in (1, 2, 3)]
    size = len(encode_header("model-a", prefixes[0], kv)) + len(kv)
    cache = _cache(tmp_path, capacity=2 * size + size // 2)
    _write(cache, prefixes[0], kv)
    _write(cache, prefixes[1], kv)
    cache.close()
    _used_at(tmp_path, prefixes[0], 1000)  # the first written first, the second later
    _used_at(tmp_path, prefixes[1], 2000)
    cache.open()
    entry, shared = cache.best(prefixes[0] + [9, 9])
    assert shared == 20 and cache.load(entry).kv == kv  # the first used now: the second is LRU
    _write(cache, prefixes[2], kv)
    assert sorted(p.name for p in tmp_path.glob("*.kv")) == sorted(
        file_name("model-a", p) for p in (prefixes[0], prefixes[2]))
    assert cache.best(prefixes[1]) == (None, 0)
    cache.close()
    _used_at(tmp_path, prefixes[0], 3000)
    _used_at(tmp_path, prefixes[2], 4000)
    reopened = _cache(tmp_path, capacity=size)  # a smaller bound at start: the LRU goes
    assert reopened.best(prefixes[2])[0].tokens == tuple(prefixes[2])
    assert reopened.best(prefixes[0]) == (None, 0)
    assert [p.name for p in tmp_path.glob("*.kv")] == [file_name("model-a", prefixes[2])]
    reopened.close()


def test_a_write_a_crash_cut_short_is_cleaned_up_at_start(tmp_path):
    (tmp_path / ("0" * 40 + ".kv.tmp")).write_bytes(b"half")
    cache = _cache(tmp_path, capacity=1 << 20)
    assert list(tmp_path.iterdir()) == []
    assert len(cache) == 0
    cache.close()


def test_prefixes_shorter_than_the_minimum_are_not_stored(tmp_path):
    cache = _cache(tmp_path, capacity=1 << 20)
    assert not cache.store([1] * 15, b"kv")
    assert cache.store([1] * 16, b"kv")
    assert not cache.store([1] * 16, b"kv")  # being written, or there: once
    cache.close()
    assert len(list(tmp_path.glob("*.kv"))) == 1


def _socket_activated(port: int, config: Path, state: Path) -> subprocess.Popen:
    activate = shutil.which("systemd-socket-activate")
    assert activate, "needs systemd-socket-activate: apt-get install systemd"
    return subprocess.Popen(
        [activate, "-l", f"127.0.0.1:{port}", "-E", "PYTHONPATH", "-E", "STATE_DIRECTORY",
         sys.executable, "-m", "vps_appliance", "--config", str(config), "--idle-exit", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"PYTHONPATH": str(Path(__file__).parents[2]), "STATE_DIRECTORY": str(state)})


async def test_the_first_request_after_an_idle_exit_and_socket_activation_starts_warm(
        http, smollm2, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "backend.toml"
    config.write_text(f'[[models]]\nname = "smol"\npath = "{smollm2}"\nn_ctx = 2048\n'
                      "n_threads = 2\nprefix_cache_min_tokens = 64\n")
    state = tmp_path / "state"  # what systemd's StateDirectory= hands the service
    url = f"http://127.0.0.1:{port}"
    replies = []
    for question in QUESTIONS:
        proc = _socket_activated(port, config, state)
        try:
            await until(lambda: _up(http, url), "the socket is listening")
            replies.append(await ask(http, url, question))

            async def settled() -> bool:
                return await metric(http, url, STORES, model="smol") == (len(replies) == 1)

            await until(settled, "the writer is done")
            assert await asyncio.to_thread(proc.wait, 60) == 0  # its idle exit
        finally:
            proc.kill()
            proc.wait()
    assert cached(replies[0]) == 0
    assert cached(replies[1]) > 300  # the stored prefix, found after the restart
    assert len(files(state)) == 1


async def _up(http, url: str) -> bool:
    try:
        async with http.get(url + "/health") as resp:
            return resp.status == 200
    except OSError:
        return False
