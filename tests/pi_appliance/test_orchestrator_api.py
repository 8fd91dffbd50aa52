"""The orchestrator's HTTP surface: bad inputs, auth, preview, models, health, stats, metrics."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import base_url, metric, orchestrator_settings
from faulty import Faulty

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture
async def orch(aiohttp_server, start_orchestrator):
    fake = Faulty()
    upstream = base_url(await aiohttp_server(fake.app()))
    settings = orchestrator_settings(("f", upstream), max_body_bytes=256 * 1024,
                                     max_tokens_cap=300)
    return await start_orchestrator(settings)


def _chat(**extra):
    return {"messages": [{"role": "user", "content": "hi"}], **extra}


DEEP = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # 100k deep, 200 KB
_USER = {"role": "user", "content": "hi"}

BAD_INPUTS = [
    ("POST", CHAT, b"{nope", 400, "invalid_json", "not valid JSON"),
    ("POST", CHAT, b"\xff\xfe", 400, "invalid_encoding", "not valid UTF-8"),
    ("POST", CHAT, b"", 400, "invalid_json", "empty"),
    ("POST", CHAT, b'"text"', 400, "invalid_request", "must be a JSON object"),
    ("POST", CHAT, b'{"messages": [] } trailing', 400, "invalid_json", "not valid JSON"),
    ("POST", CHAT, DEEP, 400, "invalid_json", "levels deep"),
    ("POST", CHAT, b'{"messages": [{"role": "user", "content": "\\ud800"}]}', 400,
     "invalid_encoding", "surrogate"),
    ("POST", CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
     400, "invalid_json", "NaN"),
    ("POST", CHAT, {}, 400, "invalid_request", "'messages' is required"),
    ("POST", CHAT, {"messages": []}, 400, "invalid_request", "'messages' is required"),
    ("POST", CHAT, {"messages": "hi"}, 400, "invalid_request", "'messages' is required"),
    ("POST", CHAT, {"messages": [1]}, 400, "invalid_request", "must be an object"),
    ("POST", CHAT, {"messages": [_USER] * 1025}, 400, "invalid_request", "at most 1024"),
    ("POST", CHAT, {"messages": [{"role": "god", "content": "x"}]}, 400, "invalid_request",
     "role must be one of"),
    ("POST", CHAT, {"messages": [{"content": "x"}]}, 400, "invalid_request",
     "role must be one of"),
    ("POST", CHAT, {"messages": [{"role": "user", "content": {"a": 1}}]}, 400,
     "invalid_request", "content must be"),
    ("POST", CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "invalid_request", "content must be"),
    ("POST", CHAT, {"messages": [{"role": "system", "content": "x"}]}, 400, "invalid_request",
     "at least one user message"),
    ("POST", COMPLETIONS, {"prompt": ""}, 400, "invalid_request", "'prompt' is empty"),
    ("POST", COMPLETIONS, {"prompt": 12}, 400, "invalid_request", "'prompt' is required"),
    ("POST", COMPLETIONS, {"prompt": ["a", "b"]}, 400, "invalid_request",
     "'prompt' is required"),
    ("POST", CHAT, _chat(temperature="warm"), 400, "invalid_request", "'temperature'"),
    ("POST", CHAT, _chat(temperature=-1), 400, "invalid_request", "'temperature' must be"),
    ("POST", CHAT, _chat(top_p=7), 400, "invalid_request", "'top_p' must be between"),
    ("POST", CHAT, _chat(top_k="5"), 400, "invalid_request", "'top_k' must be an integer"),
    ("POST", CHAT, _chat(seed=1.5), 400, "invalid_request", "'seed' must be an integer"),
    ("POST", CHAT, _chat(max_tokens=0), 400, "invalid_request", "between 1 and 300"),
    ("POST", CHAT, _chat(max_tokens=-5), 400, "invalid_request", "between 1 and 300"),
    ("POST", CHAT, _chat(max_tokens=301), 400, "invalid_request", "between 1 and 300"),
    ("POST", CHAT, _chat(max_tokens=True), 400, "invalid_request", "must be an integer"),
    ("POST", CHAT, _chat(max_tokens=2.5), 400, "invalid_request", "must be an integer"),
    ("POST", CHAT, _chat(stop=[1]), 400, "invalid_request", "'stop'"),
    ("POST", CHAT, _chat(stop=["a", "b", "c", "d", "e"]), 400, "invalid_request",
     "up to 4"),
    ("POST", CHAT, _chat(stop=""), 400, "invalid_request", "'stop'"),
    ("POST", CHAT, _chat(stream=1), 400, "invalid_request", "'stream' must be a boolean"),
    ("POST", CHAT, _chat(temprature=1), 400, "unknown_parameter", "unknown field 'temprature'"),
    ("POST", CHAT, _chat(audio={"voice": "x"}), 400, "unsupported_parameter",
     "'audio' is not supported"),
    ("POST", CHAT, _chat(model=""), 400, "invalid_request", "'model' must be"),
    ("POST", CHAT, _chat(model=7), 400, "invalid_request", "'model' must be"),
    ("POST", CHAT, _chat(language="cobol"), 400, "invalid_request", "'language'"),
    ("POST", CHAT, _chat(cerebrum={"context": "magic"}), 400, "invalid_request", "'cerebrum'"),
    ("POST", CHAT, _chat(cerebrum="raw"), 400, "invalid_request", "'cerebrum'"),
    ("POST", CHAT, _chat(cerebrum={"prediction": "off"}), 400, "invalid_request",
     "'cerebrum.prediction' must be a boolean"),
    ("POST", CHAT, _chat(prediction="def f():"), 400, "invalid_request", "'prediction'"),
    ("POST", CHAT, _chat(prediction={"type": "content", "content": 1}), 400,
     "invalid_request", "'prediction'"),
    ("POST", CHAT, _chat(model="llama-9"), 404, "model_not_found", "not routed here"),
    ("POST", CHAT, _chat(max_tokens=300, messages=[{"role": "user", "content": "x " * 200_000}]),
     413, "payload_too_large", "over the limit of 262144 bytes"),
    ("POST", "/v1/context/preview", {"prompt": 5}, 400, "invalid_request", "'prompt'"),
    ("POST", "/v1/context/preview", {"messages": "x"}, 400, "invalid_request", "'messages'"),
    ("POST", "/v1/embeddings", {}, 404, "not_found", "no such endpoint"),
    ("DELETE", CHAT, None, 405, "method_not_allowed", "Method Not Allowed"),
    ("GET", CHAT, None, 405, "method_not_allowed", "Method Not Allowed"),
    ("POST", "/v1/models", {}, 405, "method_not_allowed", "Method Not Allowed"),
]
# Requests the HTTP layer itself must turn away, sent as raw bytes.
RAW_INPUTS = [
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
     + b"k" * 20_000 + b"\r\nContent-Length: 2\r\n\r\n{}", 431, "headers_too_large"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 100) for i in range(200))
     + b"Content-Length: 2\r\n\r\n{}", 431, "headers_too_large"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
     b"{}", 413, "payload_too_large"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n{}",
     400, "malformed_request"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n{}\r\n0\r\n\r\n", 400, "malformed_request"),
    (b"GARBAGE\x00 / HTTP/1.1\r\n\r\n", 400, "malformed_request"),
]


@pytest.mark.parametrize("method, path, body, status, code, fragment", BAD_INPUTS,
                         ids=[f"{i}-{b[3]}" for i, b in enumerate(BAD_INPUTS)])
async def test_bad_input_gets_a_clear_json_error(orch, http, method, path, body, status, code,
                                                 fragment):
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body} if body is not None \
        else {}
    async with http.request(method, orch + path, **kwargs) as resp:
        assert resp.status == status
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["X-Request-ID"]
        error = (await resp.json())["error"]
    assert_error_shape(error)
    assert (code is None or error["code"] == code) and fragment in error["message"], error
    await assert_still_serving(orch, http)


@pytest.mark.parametrize("raw, status, code", RAW_INPUTS,
                         ids=[f"raw{i}-{r[1]}" for i, r in enumerate(RAW_INPUTS)])
async def test_bad_http_gets_a_clear_json_error(orch, http, raw, status, code):
    host, port = orch.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            body = await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()
    assert lines[0].split(" ")[1] == str(status), lines[0]
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert_error_shape(error)
    assert error["code"] == code
    await assert_still_serving(orch, http)


def test_the_bad_input_table_has_at_least_40_cases():
    assert len(BAD_INPUTS) + len(RAW_INPUTS) >= 40


def assert_error_shape(error: dict) -> None:
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] in ("invalid_request_error", "server_error")
    assert isinstance(error["code"], str) and error["code"]
    assert "param" in error


async def assert_still_serving(orch: str, http) -> None:
    async with http.get(orch + "/health") as resp:
        assert resp.status == 200
    async with http.post(orch + CHAT, json=_chat(max_tokens=4)) as resp:
        assert resp.status == 200


async def test_over_budget_prompt_says_by_how_much(aiohttp_server, start_orchestrator, http):
    fake = Faulty()
    upstream = base_url(await aiohttp_server(fake.app()))
    settings = orchestrator_settings(("f", upstream))
    settings = settings.__class__(**{**settings.__dict__, "routes": tuple(
        r.__class__(**{**r.__dict__, "n_ctx": 600}) for r in settings.routes)})
    url = await start_orchestrator(settings)
    body = _chat(max_tokens=100, messages=[{"role": "user", "content": "word " * 3000}])
    async with http.post(url + CHAT, json=body) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "context_length_exceeded"
    assert "over the budget of 436" in error["message"]


async def test_preview_shows_what_would_be_sent_without_calling_a_model(aiohttp_server,
                                                                        start_orchestrator,
                                                                        http):
    fake = Faulty()
    upstream = base_url(await aiohttp_server(fake.app()))
    url = await start_orchestrator(orchestrator_settings(("f", upstream)))
    code = "\n\n".join(f"def fetch_{i}(url):\n    r = requests.get(url)\n    return r.json()"
                       for i in range(40))
    body = {"messages": [{"role": "user", "content":
                          f"Convert fetch_3 to async/await.\n```python\n{code}\n```"}]}
    async with http.post(url + "/v1/context/preview", json=body) as resp:
        preview = await resp.json()
    assert resp.status == 200 and fake.calls == 0
    stats = preview["cerebrum"]
    assert stats["language"] == "python" and stats["context"] == "pipeline"
    assert stats["reduction"] > 0.5 and "fetch_3" in preview["messages"][-1]["content"]
    assert preview["instruction"] and "async" in preview["instruction"]
    # An edit: the code it names is the prediction the backend would draft from.
    assert preview["prediction"] == {"type": "content", "content": "def fetch_3(url):\n"
                                     "    r = requests.get(url)\n    return r.json()"}
    assert stats["edit"] is True and stats["prediction_chars"] == 63


async def test_models_health_stats_and_metrics(orch, http):
    async with http.get(orch + "/v1/models") as resp:
        ids = [m["id"] for m in (await resp.json())["data"]]
    assert ids[0] == "auto" and "tiny" in ids
    async with http.post(orch + CHAT, json=_chat(max_tokens=3, stream=True)) as resp:
        await resp.read()
    async with http.get(orch + "/health") as resp:
        health = await resp.json()
    assert health["status"] == "ok" and health["backends"]["f"]["breaker"] == "closed"
    assert health["backends"]["f"]["url"].startswith("http://127.0.0.1:")
    async with http.get(orch + "/stats") as resp:
        stats = await resp.json()
    assert stats["in_flight"] == 0 and stats["breakers"] == {"f": "closed"}
    assert stats["ttft_ms"]["p50"] is not None and stats["pipeline_ms"]["p50"] is not None
    assert await metric(http, orch, "cerebrum_orchestrator_requests_total",
                        endpoint=CHAT, status="200") == 1
    assert await metric(http, orch, "cerebrum_orchestrator_time_to_first_token_seconds_count",
                        route="qwen") == 1


async def test_api_keys(aiohttp_server, start_orchestrator, http):
    fake = Faulty()
    upstream = base_url(await aiohttp_server(fake.app()))
    url = await start_orchestrator(orchestrator_settings(("f", upstream), api_keys=("sekrit",)))
    async with http.get(url + "/health") as resp:
        assert resp.status == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"x-api-key": "nope"},
                    {"x-api-key": ""}):
        async with http.post(url + CHAT, json=_chat(), headers=headers) as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
            assert (await resp.json())["error"]["code"] == "invalid_api_key"
    for headers in ({"Authorization": "Bearer sekrit"}, {"x-api-key": "sekrit"}):  # Anthropic's
        async with http.post(url + CHAT, json=_chat(max_tokens=2), headers=headers) as resp:
            assert resp.status == 200
    assert fake.calls == 2
