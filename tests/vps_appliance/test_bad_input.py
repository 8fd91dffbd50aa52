"""Every bad input to the served backend is a 4xx JSON error and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import pytest
import structlog
from conftest import spec

from vps_appliance.http.app import make_app
from vps_appliance.http.server import start
from vps_appliance.settings import Settings

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
TOKENIZE = "/v1/tokenize"
KEY = "test-key-1"
BODY_LIMIT = 256 * 1024


@pytest.fixture
async def served(tiny_model):
    """The tiny model behind the real runner `serve()` uses, on 127.0.0.1:<ephemeral>."""
    settings = Settings(models=(spec("tiny", tiny_model, n_ctx=256),), max_tokens_cap=200,
                        max_body_bytes=BODY_LIMIT, api_keys=(KEY,))
    runner = await start(make_app(settings), host="127.0.0.1", port=0)
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Reply:
    """A parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes


async def exchange(port: int, request: bytes) -> Reply:
    """Send raw bytes, read one response (headers, then Content-Length bytes of body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            headers = {k.lower(): v for k, v in headers.items()}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Reply(int(lines[0].split()[1]), headers, body)
    finally:
        writer.close()
        await writer.wait_closed()


def build(method: str, path: str, body: bytes | dict | list | None = None, *,
         headers: dict[str, str] | None = None, auth: bool = True) -> bytes:
    """A well-formed HTTP/1.1 request; dict/list bodies are JSON."""
    raw = (json.dumps(body).encode() if isinstance(body, dict | list)
           else body if body is not None else b"")
    all_headers = {"Host": "127.0.0.1", "Connection": "close",
                   "Content-Length": str(len(raw))}
    if auth:
        all_headers["Authorization"] = f"Bearer {KEY}"
    all_headers.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in all_headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + raw


def raw_head(*lines: str, body: bytes = b"") -> bytes:
    """A request written line by line, for what no client library would send."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chat(**extra):
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **extra}


def prompt(**extra):
    return {"model": "tiny", "prompt": "def f", **extra}


def nested(depth: int) -> bytes:
    return b'{"model": "tiny", "messages": ' + b"[" * depth + b"]" * depth + b"}"


POST_AUTH = f"Authorization: Bearer {KEY}"


@dataclass(frozen=True)
class Case:
    """One bad input and the error it must get."""

    id: str
    request: bytes
    status: int
    code: str
    fragment: str
    param: str | None = None


CASES = [
    # Speculative decoding's fields (OpenAI's Predicted Outputs and our switch).
    Case("prediction-not-object", build("POST", CHAT, chat(prediction="code")), 400,
         "invalid_request", "'prediction' must be", "prediction"),
    Case("prediction-wrong-type", build("POST", CHAT, chat(prediction={"type": "text",
                                                                      "content": "x"})),
         400, "invalid_request", "'prediction' must be", "prediction"),
    Case("prediction-extra-key", build("POST", COMPLETIONS, prompt(prediction={
        "type": "content", "content": "x", "extra": 1})), 400, "invalid_request",
         "'prediction' must be", "prediction"),
    Case("prediction-content-number", build("POST", CHAT, chat(prediction={
        "type": "content", "content": 5})), 400, "invalid_request",
         "'prediction' must be", "prediction"),
    Case("prediction-image-part", build("POST", CHAT, chat(prediction={
        "type": "content", "content": [{"type": "image_url", "image_url": "x"}]})), 400,
         "invalid_request", "'prediction' must be", "prediction"),
    Case("speculative-string", build("POST", CHAT, chat(speculative="yes")), 400,
         "invalid_request", "'speculative' must be a boolean", "speculative"),
    Case("prediction-but-speculative-off", build("POST", CHAT, chat(
        speculative=False, prediction={"type": "content", "content": "x"})), 400,
         "invalid_request", "'prediction' needs speculative decoding", "prediction"),
    # The body is not JSON, or not acceptable JSON (cerebrum.openai.decode_json).
    Case("not-json", build("POST", CHAT, b"{not json"), 400, "invalid_json", "not valid JSON"),
    Case("invalid-utf8", build("POST", CHAT, b'{"a": "\xff\xfe"}'), 400, "invalid_encoding",
         "not valid UTF-8"),
    Case("empty-body", build("POST", CHAT, b""), 400, "invalid_json", "empty"),
    Case("blank-body", build("POST", CHAT, b" \r\n\t "), 400, "invalid_json", "empty"),
    Case("array-body", build("POST", CHAT, [1, 2]), 400, "invalid_request",
         "must be a JSON object, got array"),
    Case("string-body", build("POST", COMPLETIONS, b'"hi"'), 400, "invalid_request",
         "must be a JSON object, got string"),
    Case("null-body", build("POST", TOKENIZE, b"null"), 400, "invalid_request",
         "must be a JSON object, got null"),
    Case("nested-100k", build("POST", CHAT, b"[" * 100_000 + b"]" * 100_000), 400,
         "invalid_json", "more than 64 levels deep"),
    Case("nested-65-in-field", build("POST", CHAT, nested(65)), 400, "invalid_json",
         "more than 64 levels deep"),
    Case("nested-unbalanced", build("POST", COMPLETIONS, b'{"prompt": ' + b"{" * 50_000), 400,
         "invalid_json", "more than 64 levels deep"),
    Case("lone-high-surrogate", build("POST", CHAT, b'{"messages": [{"role": "user", '
                                                   b'"content": "a\\ud800b"}]}'),
         400, "invalid_encoding", "lone UTF-16 surrogate escape (\\ud800)"),
    Case("lone-low-surrogate-in-model", build("POST", COMPLETIONS,
                                             b'{"model": "\\udfff", "prompt": "x"}'),
         400, "invalid_encoding", "surrogate"),
    Case("surrogate-in-key", build("POST", TOKENIZE, b'{"\\ud83d": 1, "text": "x"}'), 400,
         "invalid_encoding", "surrogate"),
    Case("nan-temperature", build("POST", CHAT, b'{"messages": [], "temperature": NaN}'), 400,
         "invalid_json", "NaN"),
    Case("infinity-top-p", build("POST", COMPLETIONS, b'{"prompt": "x", "top_p": Infinity}'),
         400, "invalid_json", "Infinity"),
    Case("minus-infinity", build("POST", COMPLETIONS, b'{"prompt": "x", "min_p": -Infinity}'),
         400, "invalid_json", "-Infinity"),
    Case("float-overflow", build("POST", COMPLETIONS, b'{"prompt": "x", "temperature": 1e999}'),
         400, "invalid_json", "out of range"),
    Case("integer-5000-digits", build("POST", COMPLETIONS,
                                     b'{"prompt": "x", "max_tokens": ' + b"9" * 5000 + b"}"),
         400, "invalid_json", "integer too long"),
    # Fields of the wrong type or out of range (cerebrum.openai, cerebrum.generation.checks).
    Case("messages-missing", build("POST", CHAT, {"model": "tiny"}), 400, "invalid_request",
         "'messages' is required", "messages"),
    Case("messages-string", build("POST", CHAT, {"messages": "hi"}), 400, "invalid_request",
         "'messages' is required", "messages"),
    Case("messages-empty", build("POST", CHAT, {"messages": []}), 400, "invalid_request",
         "'messages' is required", "messages"),
    Case("messages-too-many", build("POST", CHAT, {"messages": [{"role": "user", "content": ""}]
                                                  * 1025}),
         400, "invalid_request", "has 1025 entries; at most 1024", "messages"),
    Case("message-not-object", build("POST", CHAT, {"messages": ["hi"]}), 400,
         "invalid_request", "messages[0] must be an object", "messages"),
    Case("role-unknown", build("POST", CHAT, {"messages": [{"role": "x", "content": "a"}]}),
         400, "invalid_request", "role must be one of", "messages"),
    Case("role-missing", build("POST", CHAT, {"messages": [{"content": "a"}]}), 400,
         "invalid_request", "role must be one of", "messages"),
    Case("content-number", build("POST", CHAT, {"messages": [{"role": "user", "content": 1}]}),
         400, "invalid_request", "content must be", "messages"),
    Case("content-image", build("POST", CHAT, {"messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
         400, "invalid_request", "only text parts", "messages"),
    Case("prompt-missing", build("POST", COMPLETIONS, {"model": "tiny"}), 400,
         "invalid_request", "'prompt' is required", "prompt"),
    Case("prompt-two", build("POST", COMPLETIONS, prompt(prompt=["a", "b"])), 400,
         "invalid_request", "'prompt' is required", "prompt"),
    Case("prompt-empty", build("POST", COMPLETIONS, prompt(prompt="")), 400, "invalid_request",
         "'prompt' is empty", "prompt"),
    Case("prompt-number", build("POST", COMPLETIONS, prompt(prompt=7)), 400, "invalid_request",
         "'prompt' is required", "prompt"),
    Case("temperature-string", build("POST", CHAT, chat(temperature="hot")), 400,
         "invalid_request", "'temperature' must be a number", "temperature"),
    Case("temperature-bool", build("POST", CHAT, chat(temperature=True)), 400,
         "invalid_request", "'temperature' must be a number", "temperature"),
    Case("temperature-high", build("POST", CHAT, chat(temperature=5)), 400, "invalid_request",
         "'temperature' must be between", "temperature"),
    Case("top-p-negative", build("POST", COMPLETIONS, prompt(top_p=-0.1)), 400,
         "invalid_request", "'top_p' must be between", "top_p"),
    Case("top-k-float", build("POST", COMPLETIONS, prompt(top_k=1.5)), 400, "invalid_request",
         "'top_k' must be an integer", "top_k"),
    Case("top-k-negative", build("POST", COMPLETIONS, prompt(top_k=-1)), 400,
         "invalid_request", "'top_k' must be between", "top_k"),
    Case("top-k-huge", build("POST", COMPLETIONS, prompt(top_k=2**40)), 400, "invalid_request",
         "'top_k' must be between", "top_k"),
    Case("max-tokens-zero", build("POST", CHAT, chat(max_tokens=0)), 400, "invalid_request",
         "'max_tokens' must be between 1 and 200", "max_tokens"),
    Case("max-tokens-negative", build("POST", CHAT, chat(max_tokens=-5)), 400,
         "invalid_request", "'max_tokens' must be between", "max_tokens"),
    Case("max-tokens-over-cap", build("POST", CHAT, chat(max_tokens=201)), 400,
         "invalid_request", "between 1 and 200, got 201", "max_tokens"),
    Case("max-tokens-huge", build("POST", CHAT, chat(max_tokens=10**30)), 400,
         "invalid_request", "'max_tokens' must be between", "max_tokens"),
    Case("max-tokens-float", build("POST", CHAT, chat(max_tokens=1.5)), 400, "invalid_request",
         "'max_tokens' must be an integer", "max_tokens"),
    Case("max-tokens-bool", build("POST", CHAT, chat(max_tokens=True)), 400, "invalid_request",
         "'max_tokens' must be an integer, got boolean", "max_tokens"),
    Case("max-tokens-string", build("POST", CHAT, chat(max_tokens="10")), 400,
         "invalid_request", "'max_tokens' must be an integer", "max_tokens"),
    Case("max-completion-tokens-float", build("POST", CHAT, chat(max_completion_tokens=2.5)),
         400, "invalid_request", "'max_completion_tokens' must be an integer",
         "max_completion_tokens"),
    Case("stop-too-many", build("POST", CHAT, chat(stop=["a"] * 5)), 400, "invalid_request",
         "array of up to 4", "stop"),
    Case("stop-empty-string", build("POST", CHAT, chat(stop=[""])), 400, "invalid_request",
         "'stop' must be", "stop"),
    Case("stop-too-long", build("POST", COMPLETIONS, prompt(stop="x" * 257)), 400,
         "invalid_request", "at most 256 characters", "stop"),
    Case("stop-number", build("POST", COMPLETIONS, prompt(stop=3)), 400, "invalid_request",
         "'stop' must be", "stop"),
    Case("stream-string", build("POST", CHAT, chat(stream="true")), 400, "invalid_request",
         "'stream' must be a boolean", "stream"),
    Case("n-zero", build("POST", CHAT, chat(n=0)), 400, "invalid_request",
         "'n' must be an integer between 1", "n"),
    Case("seed-string", build("POST", COMPLETIONS, prompt(seed="1")), 400, "invalid_request",
         "'seed' must be an integer", "seed"),
    Case("seed-huge", build("POST", COMPLETIONS, prompt(seed=2**70)), 400, "invalid_request",
         "'seed' must be a 64-bit integer", "seed"),
    Case("model-number", build("POST", CHAT, chat(model=3)), 400, "invalid_request",
         "'model' must be a non-empty string", "model"),
    Case("model-empty", build("POST", CHAT, chat(model="")), 400, "invalid_request",
         "'model' must be a non-empty string", "model"),
    Case("model-unknown", build("POST", CHAT, chat(model="llama-9")), 404, "model_not_found",
         "'llama-9' does not exist"),
    Case("model-path", build("POST", CHAT, chat(model="../../etc/passwd")), 404,
         "model_not_found", "does not exist"),
    Case("logprobs-string", build("POST", CHAT, chat(logprobs="yes")), 400, "invalid_request",
         "'logprobs' must be a boolean", "logprobs"),
    Case("top-logprobs-over", build("POST", CHAT, chat(logprobs=True, top_logprobs=21)), 400,
         "invalid_request", "'top_logprobs' must be an integer between 0 and 20",
         "top_logprobs"),
    Case("tools", build("POST", CHAT, chat(tools=[{"type": "function"}])), 400,
         "invalid_request", "tools[0] must be", "tools"),
    Case("unknown-field", build("POST", CHAT, chat(temprature=0.5)), 400, "unknown_parameter",
         "unknown field 'temprature'", "temprature"),
    Case("suffix-not-string", build("POST", COMPLETIONS, prompt(suffix=3)), 400,
         "invalid_request", "'suffix' must be a string", "suffix"),
    Case("prompt-over-context", build("POST", COMPLETIONS, prompt(prompt="def f " * 400)), 400,
         "context_length_exceeded", "context is 256 tokens"),
    Case("max-tokens-over-context", build("POST", COMPLETIONS,
                                         prompt(prompt="def f " * 30, max_tokens=200)),
         400, "context_length_exceeded", "max_tokens can be at most", "max_tokens"),
    Case("tokenize-no-text", build("POST", TOKENIZE, {"model": "tiny"}), 400,
         "invalid_request", "'text' is required", "text"),
    Case("tokenize-text-number", build("POST", TOKENIZE, {"text": 5}), 400, "invalid_request",
         "'text' is required", "text"),
    Case("tokenize-add-special-string", build("POST", TOKENIZE, {"text": "x",
                                                                "add_special": "yes"}),
         400, "invalid_request", "'add_special' must be a boolean", "add_special"),
    # Size, routing and auth.
    Case("body-over-limit", build("POST", COMPLETIONS, b'{"prompt": "' + b"x" * BODY_LIMIT
                                 + b'"}'),
         413, "payload_too_large", f"over the limit of {BODY_LIMIT} bytes"),
    Case("content-length-announces-10gb", raw_head(
        f"POST {COMPLETIONS} HTTP/1.1", "Host: x", POST_AUTH, "Content-Length: 10000000000"),
         413, "payload_too_large", "over the limit"),
    Case("unknown-endpoint", build("POST", "/v1/embeddings", {}), 404, "not_found",
         "no such endpoint"),
    Case("wrong-method", build("GET", CHAT), 405, "method_not_allowed", "Method Not Allowed"),
    Case("delete-health", build("DELETE", "/health"), 405, "method_not_allowed",
         "Method Not Allowed"),
    Case("no-key", build("POST", COMPLETIONS, prompt(), auth=False), 401, "invalid_api_key",
         "missing or invalid API key"),
    Case("wrong-key", build("POST", COMPLETIONS, prompt(), auth=False,
                           headers={"Authorization": "Bearer nope"}),
         401, "invalid_api_key", "missing or invalid API key"),
    # What aiohttp's HTTP parser rejects before any handler runs (server.py).
    Case("authorization-10kb", build("POST", COMPLETIONS, prompt(), auth=False,
                                    headers={"Authorization": "Bearer sk-" + "a" * 10_000}),
         431, "header_too_large", "over the limit of 8190 bytes"),
    Case("header-64kb", build("GET", "/v1/models", headers={"X-Junk": "j" * 65_536}), 431,
         "header_too_large", "over the limit of 8190 bytes"),
    Case("url-10kb", build("GET", "/v1/models?" + "q" * 10_000), 431, "header_too_large",
         "request line or a header"),
    Case("headers-40k", raw_head("GET /v1/models HTTP/1.1", "Host: x",
                                 *(f"X-{i}: v" for i in range(40_000))),
         400, "malformed_request", "malformed HTTP request"),
    Case("content-length-letters", raw_head(
        f"POST {COMPLETIONS} HTTP/1.1", "Host: x", POST_AUTH, "Content-Length: abc"),
         400, "malformed_request", "malformed HTTP request"),
    Case("content-length-negative", raw_head(
        f"POST {COMPLETIONS} HTTP/1.1", "Host: x", POST_AUTH, "Content-Length: -1"),
         400, "malformed_request", "malformed HTTP request"),
    Case("content-length-and-chunked", raw_head(
        f"POST {COMPLETIONS} HTTP/1.1", "Host: x", POST_AUTH, "Content-Length: 5",
        "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
         400, "malformed_request", "malformed HTTP request"),
    Case("chunked-broken", raw_head(
        f"POST {COMPLETIONS} HTTP/1.1", "Host: x", POST_AUTH, "Transfer-Encoding: chunked",
        body=b"zz\r\n{}\r\n0\r\n\r\n"),
         400, "malformed_request", "malformed HTTP request"),
    Case("header-nul", raw_head(
        "GET /v1/models HTTP/1.1", "Host: x", "X-Evil: a\x00b"),
         400, "malformed_request", "malformed HTTP request"),
    Case("header-no-colon", raw_head("GET /v1/models HTTP/1.1", "Host: x", "NoColonHere"),
         400, "malformed_request", "malformed HTTP request"),
    Case("not-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400,
         "malformed_request", "malformed HTTP request"),
    Case("gzip-not-gzip", build("POST", COMPLETIONS, b"this is not gzip",
                               headers={"Content-Encoding": "gzip"}),
         400, "malformed_request", "does not match its Content-Encoding"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_a_json_error_and_the_server_keeps_serving(served, case):
    reply = await exchange(served, case.request)
    assert reply.status == case.status, reply.body[:300]
    assert reply.headers["content-type"].startswith("application/json")
    assert len(reply.headers["x-request-id"]) >= 1
    error = json.loads(reply.body)["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert isinstance(error["message"], str) and case.fragment in error["message"]
    assert error["type"] == "invalid_request_error" and error["code"] == case.code
    assert error["param"] == case.param
    health = await exchange(served, build("GET", "/health", auth=False))
    assert health.status == 200 and json.loads(health.body)["status"] == "ok"


def test_the_table_covers_at_least_forty_distinct_inputs():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert len({c.request for c in CASES}) == len(CASES)


async def test_nul_bytes_in_text_are_served_like_any_other_character(served):
    body = {"model": "tiny", "prompt": "a\u0000b", "max_tokens": 2}
    reply = await exchange(served, build("POST", COMPLETIONS, body))
    assert reply.status == 200, reply.body[:300]
    assert json.loads(reply.body)["usage"]["prompt_tokens"] > 1
    chat_body = chat(max_tokens=2, messages=[{"role": "user", "content": "\u0000" * 8}])
    assert (await exchange(served, build("POST", CHAT, chat_body))).status == 200
    tokenized = await exchange(served, build("POST", TOKENIZE, {"text": "\u0000"}))
    assert tokenized.status == 200


async def test_a_surrogate_pair_escape_is_one_character_not_an_error(served):
    body = b'{"model": "tiny", "text": "\\ud83d\\ude00"}'
    reply = await exchange(served, build("POST", TOKENIZE, body))
    assert reply.status == 200, reply.body[:300]


async def test_no_log_line_quotes_a_key_or_the_prompt(served, caplog):
    secret = "sk-live-PLANTED-7f3a"
    requests = [
        build("POST", COMPLETIONS, prompt(), auth=False,
              headers={"Authorization": f"Bearer {secret}" + "a" * 10_000}),
        raw_head("GET /v1/models HTTP/1.1", "Host: x", f"Authorization: Bearer {secret}\x00"),
        build("POST", COMPLETIONS, prompt(), auth=False,
              headers={"Authorization": f"Bearer {secret}"}),
        build("POST", COMPLETIONS, prompt(prompt=f"{secret} " * 200)),
        build("POST", CHAT, chat(messages=[{"role": "user", "content": secret}], max_tokens=2)),
        build("POST", CHAT, chat(messages=[{"role": secret, "content": "x"}])),
        build("POST", CHAT, f'{{"messages": "{secret}\\ud800"}}'.encode()),
    ]
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        for request in requests:
            assert (await exchange(served, request)).status < 500
    assert len(events) >= len(requests)  # every request was logged, and none quotes it
    logged = json.dumps(events, default=str) + caplog.text
    assert secret not in logged and "PLANTED" not in logged
