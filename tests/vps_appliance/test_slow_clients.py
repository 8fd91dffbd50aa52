"""A client that stops reading is dropped after write_timeout, and the model serves the next."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import gguf
import pytest
from conftest import base_url, metric, spec
from tiny_gguf import write_tiny_llama

from vps_appliance.engine.decoding.job import Handoff, Piece
from vps_appliance.settings import Sampling

COMPLETIONS = "/v1/completions"
STALLED = "cerebrum_backend_stalled_clients_total"
CANCELLED = "cerebrum_backend_generations_cancelled_total"


@pytest.fixture(scope="module")
def endless_model(tmp_path_factory):
    """The tiny random llama with its end-of-generation rows zeroed: it writes until max_tokens."""
    path = write_tiny_llama(tmp_path_factory.mktemp("endless") / "endless.gguf")
    reader = gguf.GGUFReader(path, "r+")
    output = next(t for t in reader.tensors if t.name == "output.weight")
    output.data[[2, 4]] = 0  # </s> and <|im_end|>: a logit of 0 never wins a greedy pick
    reader.data.flush()
    return path


async def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll an async predicate until true; the deadline only catches hangs."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


def endless_spec(path):
    """One thread: two llama.cpp threads spin at every barrier, and on a machine running other
    work that can slow generation a hundredfold — too slow to fill the buffers in time."""
    return dataclasses.replace(spec("tiny", path, n_ctx=4096,
                                    sampling=Sampling(temperature=0.0)), n_threads=1)


def streaming_request(port: int) -> bytes:
    # A long request id rides in every chunk's "id": more bytes per token fill buffers sooner.
    body = json.dumps({"model": "tiny", "prompt": "def f", "stream": True, "max_tokens": 4000,
                       "temperature": 0.0}).encode()
    head = (f"POST {COMPLETIONS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {'r' * 128}\r\n\r\n")
    return head.encode() + body


async def stalled_client(port: int) -> socket.socket:
    """A connection that sends a streaming request and never reads: with a small receive
    window, the server's writes back up."""
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stalled, ("127.0.0.1", port))
    await loop.sock_sendall(stalled, streaming_request(port))
    return stalled


async def test_a_client_that_stops_reading_is_dropped_and_the_model_freed(
        start_backend, endless_model, http):
    server = await start_backend(
        endless_spec(endless_model),
        write_timeout=1.0, token_buffer=4)
    url = base_url(server)
    with await stalled_client(server.port):

        async def counted() -> bool:
            return await metric(http, url, STALLED, model="tiny") == 1

        await wait_for(counted, "the stalled client is counted")
        # The generation was cancelled, not run to its end, and the model is free again.
        await wait_for(lambda: _equals(metric(http, url, CANCELLED, model="tiny"), 1),
                       "the stalled client's generation is cancelled")
        async with http.get(url + "/health") as resp:
            assert (await resp.json())["models"][0]["busy"] is False
        async with http.post(url + COMPLETIONS, json={"prompt": "x", "max_tokens": 2}) as resp:
            assert resp.status == 200
            assert (await resp.json())["usage"]["completion_tokens"] >= 1
        assert await metric(http, url, "cerebrum_backend_requests_total",
                            endpoint=COMPLETIONS, status="499") == 1


async def _equals(value, expected) -> bool:
    return await value == expected


async def test_a_slow_reader_that_keeps_reading_gets_the_whole_stream(
        start_backend, endless_model, http):
    server = await start_backend(spec("tiny", endless_model, n_ctx=4096,
                                      sampling=Sampling(temperature=0.0)),
                                 write_timeout=1.0, token_buffer=4)
    url = base_url(server)
    body = {"model": "tiny", "prompt": "def f", "stream": True, "max_tokens": 400}
    received = b""
    started = asyncio.get_running_loop().time()
    async with http.post(url + COMPLETIONS, json=body) as resp:
        async for chunk in resp.content.iter_chunked(1024):
            received += chunk
            await asyncio.sleep(0.02)  # slower than the model, never 1 s without reading
    # The timeout bounds each write, not the stream: this one outlasted it and completed.
    assert asyncio.get_running_loop().time() - started > 1.0
    assert received.endswith(b"data: [DONE]\n\n")
    assert await metric(http, url, STALLED, model="tiny") == 0


async def test_a_full_handoff_holds_back_its_sequence_without_blocking_the_loop():
    woken = []
    handoff = Handoff(asyncio.get_running_loop(), 1, wake=lambda: woken.append(True))
    assert handoff.put(Piece("a")) and not handoff.ready()  # full: sit out the next steps
    assert handoff.put(Piece("b"))  # a step's last events still queue, never block
    assert await handoff.get() == Piece("a") and not handoff.ready() and not woken
    assert await handoff.get() == Piece("b") and handoff.ready() and woken == [True]
    handoff.cancel()  # what closing the consumer's generator does
    assert woken == [True, True] and handoff.put(Piece("c")) is False


async def test_a_stalled_client_holds_up_no_other_stream(start_backend, endless_model, http):
    """Two sequences: while one client reads nothing, the other's answer streams to its end
    (the stalled one is dropped only later, at its write timeout)."""
    server = await start_backend(dataclasses.replace(endless_spec(endless_model), parallel=2),
                                 write_timeout=30.0, token_buffer=4)
    url = base_url(server)
    with await stalled_client(server.port):

        async def streaming() -> bool:
            async with http.get(url + "/health") as resp:
                return (await resp.json())["models"][0]["in_use"] == 1

        await wait_for(streaming, "the stalled client's generation runs")
        body = {"model": "tiny", "prompt": "x", "stream": True, "max_tokens": 300}
        async with http.post(url + COMPLETIONS, json=body) as resp:
            assert resp.status == 200
            received = await resp.read()
        assert received.endswith(b"data: [DONE]\n\n")
        assert await metric(http, url, STALLED, model="tiny") == 0  # still stalled, not dropped


async def test_a_client_leaving_while_queued_leaves_the_queue_at_once(start_backend,
                                                                      endless_model, http):
    # The stalled client is dropped 30 s after its writes stop (long after the test's end).
    server = await start_backend(dataclasses.replace(endless_spec(endless_model), parallel=1),
                                 write_timeout=30.0)
    url = base_url(server)

    async def health() -> dict:
        async with http.get(url + "/health") as resp:
            return (await resp.json())["models"][0]

    body = {"model": "tiny", "prompt": "def f", "stream": True, "max_tokens": 4000}
    with await stalled_client(server.port):  # holds the only sequence (and never reads)
        await wait_for(lambda: _equals(_field(health, "in_use"), 1), "the sequence is taken")
        queued = asyncio.create_task(http.post(url + COMPLETIONS, json=body))
        await wait_for(lambda: _equals(_field(health, "waiting"), 1), "one request queued")
        queued.cancel()  # its client leaves before its turn (no answer has begun: it waits)
        with pytest.raises(asyncio.CancelledError):
            await queued
        await wait_for(lambda: _equals(_field(health, "waiting"), 0), "the queue is empty")
        assert (await health())["in_use"] == 1  # while the stalled one still holds it


async def _field(read, key: str):
    return (await read())[key]
