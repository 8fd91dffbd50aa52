"""Bad input to the agents' endpoints, on both tiers: `/v1/responses`,
`/v1/responses/input_tokens` (OpenAI's Responses API) and `/v1/messages`,
`/v1/messages/count_tokens` (Anthropic's Messages API), served by the backend (the tiny model,
an API key) and by the orchestrator in front of it (a key too).

Every case is answered at once (a few seconds at most: a hang fails) with a 4xx in the API's
own error shape: `{"error": {message, type, param, code}}` for the Responses API,
`{"type": "error", "error": {type, message}}` for Anthropic's. The cases: the wire packages'
tables of bad bodies (tests/agent_cases.py; the package's 400 reaches the client, naming the
param), bodies that are not acceptable JSON, sizes, keys, Anthropic's headers
(`anthropic-version`, `anthropic-beta`, `x-api-key`: malformed, oversized, not UTF-8), unknown
models and wrong methods. After each case, and after all of them, both tiers still serve.

Requests are written as raw bytes (a header value that is not UTF-8, a Content-Length that
lies), one connection each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from agent_cases import BASE, CAP, GOOD, MESSAGES_BAD, MODEL, RESPONSES_BAD
from conftest import orchestrator_settings, spec

from cerebrum import anthropic, responses
from cerebrum.generation import checks
from cerebrum.generation.errors import InvalidRequest
from vps_appliance.http.app import make_app
from vps_appliance.http.server import start
from vps_appliance.settings import Settings

# One backend and one orchestrator serve every case of this module (and still serve after).
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

KEY = "k-bad-input"
LIMIT = 256 * 1024  # max_body_bytes on both tiers: the tables' largest body is ~150 KB
SECONDS = 5.0  # each answer, whole: a hang fails the case
TIERS = ("backend", "orchestrator")
RESPONSES = "/v1/responses"
INPUT_TOKENS = "/v1/responses/input_tokens"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
ENDPOINTS = (RESPONSES, INPUT_TOKENS, MESSAGES, COUNT_TOKENS)
ANTHROPIC = (MESSAGES, COUNT_TOKENS)
HUGE_HEADER = 20_000  # over the backend's 8,190-byte header line and the orchestrator's 16 KiB


# -- the two tiers ----------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ports(tiny_model) -> AsyncIterator[dict[str, int]]:
    """{"backend": port, "orchestrator": port}: the tiny model behind the runner `serve()`
    uses, and a real orchestrator (uvicorn, as served) in front of it, both with a key."""
    import uvicorn

    from pi_appliance.http.app import create_app
    from pi_appliance.http.server import uvicorn_config
    from pi_appliance.settings import Backend

    runner = await start(make_app(Settings(
        models=(spec("tiny", tiny_model, n_ctx=256),), max_body_bytes=LIMIT, api_keys=(KEY,),
        max_tokens_cap=CAP)), host="127.0.0.1", port=0)
    backend = runner.addresses[0][1]
    settings = orchestrator_settings(("vps", f"http://127.0.0.1:{backend}"), model="tiny",
                                     api_keys=(KEY,), max_body_bytes=LIMIT, max_tokens_cap=CAP)
    settings = dataclasses.replace(settings, backends=(
        Backend("vps", f"http://127.0.0.1:{backend}", api_key=KEY),))
    server = uvicorn.Server(uvicorn_config(create_app(settings), timeout_graceful_shutdown=2))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                assert not task.done(), "uvicorn exited during start-up"
                await asyncio.sleep(0.01)
        yield {"backend": backend, "orchestrator": sock.getsockname()[1]}
    finally:
        server.should_exit = True
        await task
        await runner.cleanup()


@dataclass(frozen=True)
class Reply:
    """A parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(port: int, request: bytes) -> Reply:
    """Send raw bytes on a fresh connection and read the answer to its end, within SECONDS."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(SECONDS):
            writer.write(request)
            with suppress(ConnectionError):  # answered (413) and closed before all was sent
                await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v for k, v in (
                line.split(": ", 1) for line in lines[1:] if line)}
            length = headers.get("content-length")
            body = await (reader.readexactly(int(length)) if length is not None
                          else reader.read())
        return Reply(int(lines[0].split()[1]), headers, body)
    finally:
        writer.close()
        with suppress(ConnectionError):  # the server may have closed first
            await writer.wait_closed()


# -- requests ---------------------------------------------------------------------------------

Headers = dict[str, str | bytes | None]


def default_headers(path: str) -> dict[str, str | bytes]:
    """What each API's clients send: Anthropic's SDK a key in `x-api-key` and its version;
    OpenAI's a bearer token."""
    if path.startswith(ANTHROPIC):
        return {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    return {"Authorization": f"Bearer {KEY}"}


def build(method: str, path: str, body: bytes | dict | list | None = None, *,
          headers: Headers | None = None, length: bool = True) -> bytes:
    """An HTTP/1.1 request with the path's API's usual headers, changed by `headers` (None:
    left out); dict/list bodies are JSON; values may be raw bytes (not UTF-8)."""
    raw = (json.dumps(body).encode() if isinstance(body, dict | list)
           else body if body is not None else b"")
    all_headers: dict[str, str | bytes | None] = {
        "Host": "127.0.0.1", "Connection": "close", "Content-Type": "application/json"}
    if length:
        all_headers["Content-Length"] = str(len(raw))
    all_headers.update(default_headers(path))
    all_headers.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
    for name, value in all_headers.items():
        if value is not None:
            head += name.encode("latin-1") + b": " + (
                value if isinstance(value, bytes) else value.encode("latin-1")) + b"\r\n"
    return head + b"\r\n" + raw


def chunked(path: str, raw: bytes) -> bytes:
    """`raw` sent chunked (no Content-Length), in 64 KiB chunks."""
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(raw[i:i + 65536]), raw[i:i + 65536])
                      for i in range(0, len(raw), 65536))
    return build("POST", path, headers={"Transfer-Encoding": "chunked"},
                 length=False) + chunks + b"0\r\n\r\n"


def good(path: str) -> dict[str, Any]:
    """A body each endpoint accepts (header and key cases must fail for the header alone)."""
    if path == MESSAGES:
        return {**GOOD, "model": "tiny", "max_tokens": 4}
    if path == COUNT_TOKENS:
        return {"model": "tiny", "messages": GOOD["messages"]}
    return {"model": "tiny", "input": "hi", **({"max_output_tokens": 4}
                                              if path == RESPONSES else {})}


# -- the cases --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One bad request and the 4xx it must get; `param` (None: the error names none) is the
    Responses API's `param` and, for Anthropic, must be in the message; `fragment` must be in
    the message; `code` (when set) is the Responses API's `code`."""

    id: str
    request: bytes
    status: int
    fragment: str = ""
    param: str | None = None
    code: str | None = None
    xfail: str | None = None
    message: str | None = None  # the whole message, where it is the package's


def _anthropic_body(path: str, body: Any) -> Any:
    """A table body as sent: the model served here; count_tokens takes no max_tokens (the
    table's usual 64 is left out, any other value kept: refused)."""
    if not isinstance(body, dict):
        return body
    if body.get("model") == MODEL:
        body = {**body, "model": "tiny"}
    if path == COUNT_TOKENS and body.get("max_tokens") == GOOD["max_tokens"]:
        body = {k: v for k, v in body.items() if k != "max_tokens"}
    return body


def _responses_body(body: Any) -> Any:
    return {**BASE, **body} if isinstance(body, dict) and "input" not in body else body


PARSERS: dict[str, Callable[[Any, str], Any]] = {
    RESPONSES: lambda body, tier: responses.parse(body, CAP, tier),
    INPUT_TOKENS: lambda body, tier: responses.parse(body, CAP, tier, kind="input_tokens"),
    MESSAGES: lambda body, tier: anthropic.parse(body, tier),
    COUNT_TOKENS: lambda body, tier: anthropic.parse_count_tokens(body, tier),
}


def refusal(path: str, tier: str, body: Any) -> InvalidRequest | None:
    """The package's refusal of `body` at `tier` (what passes the orchestrator is judged again
    by the backend, which reads the model first to find its slot), or None where it is
    accepted."""
    for judge in (tier, "backend"):
        try:
            if judge == "backend":
                checks.model(checks.json_object(body))
            PARSERS[path](body, judge)
        except InvalidRequest as exc:
            return exc
    return None


def table_cases(path: str, tier: str) -> list[Case]:
    """The package's table of bad bodies, each sent over HTTP: the 400 the package raises."""
    out = []
    if path in ANTHROPIC:
        rows = [(name, _anthropic_body(path, body), param, word)
                for name, body, param, word in MESSAGES_BAD]
    else:
        rows = [(what.replace(" ", "-"), _responses_body(body), param, "")
                for what, body, param in RESPONSES_BAD]
    for name, body, param, word in rows:
        exc = refusal(path, tier, body)
        if exc is None:
            continue  # a create body that counting accepts (max_tokens, say)
        # The table's param is the create endpoint's; counting may refuse another field first.
        named = param if path in (RESPONSES, MESSAGES) else exc.param
        out.append(Case(f"table:{name}", build("POST", path, body), 400,
                        word if path == MESSAGES else "", named,
                        None if path in ANTHROPIC else exc.code, message=str(exc)))
    return out


def transport_cases(path: str) -> list[Case]:
    """Bodies that are not acceptable JSON, sizes, keys, models and methods: every endpoint."""
    model = "llama-70b/../../etc/passwd"
    unknown = {**good(path), "model": "no-such-model"}
    return [
        Case("not-json", build("POST", path, b"{not json"), 400, "not valid JSON",
             code="invalid_json"),
        Case("not-utf8", build("POST", path, b'{"model": "\xff\xfe"}'), 400, "not valid UTF-8",
             code="invalid_encoding"),
        Case("latin1-body", build("POST", path, '{"input": "café"}'.encode("latin-1")), 400,
             "not valid UTF-8", code="invalid_encoding"),
        Case("empty-body", build("POST", path, b""), 400, "empty", code="invalid_json"),
        Case("blank-body", build("POST", path, b" \r\n\t "), 400, "empty", code="invalid_json"),
        Case("array-body", build("POST", path, [good(path)]), 400,
             "must be a JSON object, got array"),
        Case("string-body", build("POST", path, b'"hi"'), 400,
             "must be a JSON object, got string"),
        Case("null-body", build("POST", path, b"null"), 400, "must be a JSON object, got null"),
        Case("nested-100k", build("POST", path, b"[" * 100_000 + b"]" * 100_000), 400,
             "more than 64 levels deep", code="invalid_json"),
        Case("nested-65-in-field", build("POST", path, b'{"model": "tiny", "input": '
                                        + b"[" * 65 + b"]" * 65 + b"}"), 400,
             "more than 64 levels deep", code="invalid_json"),
        Case("nested-unbalanced", build("POST", path, b'{"input": ' + b"{" * 50_000), 400,
             "more than 64 levels deep", code="invalid_json"),
        Case("lone-surrogate", build("POST", path, b'{"model": "tiny", "input": "a\\ud800b"}'),
             400, "surrogate", code="invalid_encoding"),
        Case("nan", build("POST", path, b'{"model": "tiny", "temperature": NaN}'), 400, "NaN",
             code="invalid_json"),
        Case("number-5000-digits", build("POST", path, b'{"max_tokens": 1.' + b"5" * 5000
                                        + b"}"), 400, "characters", code="invalid_json"),
        Case("body-over-limit", build("POST", path, b'{"input": "' + b"x" * LIMIT + b'"}'),
             413, f"over the limit of {LIMIT} bytes", code="payload_too_large"),
        Case("content-length-10gb", build("POST", path, headers={
            "Content-Length": "10000000000"}), 413, "over the limit",
             code="payload_too_large"),
        Case("chunked-over-limit", chunked(path, b'{"input": "' + b"x" * LIMIT + b'"}'), 413,
             "over the limit", code="payload_too_large"),
        Case("no-key", build("POST", path, good(path), headers={
            "Authorization": None, "x-api-key": None}), 401, "missing or invalid API key",
             code="invalid_api_key"),
        Case("wrong-bearer", build("POST", path, good(path), headers={
            "Authorization": "Bearer nope", "x-api-key": None}), 401,
             "missing or invalid API key", code="invalid_api_key"),
        Case("wrong-x-api-key", build("POST", path, good(path), headers={
            "Authorization": None, "x-api-key": "nope"}), 401, "missing or invalid API key",
             code="invalid_api_key"),
        Case("basic-auth-with-the-key", build("POST", path, good(path), headers={
            "Authorization": f"Basic {KEY}", "x-api-key": None}), 401,
             "missing or invalid API key", code="invalid_api_key"),
        Case("bearer-without-key", build("POST", path, good(path), headers={
            "Authorization": "Bearer", "x-api-key": None}), 401, "missing or invalid API key",
             code="invalid_api_key"),
        Case("bearer-not-utf8", build("POST", path, good(path), headers={
            "Authorization": b"Bearer \xff\xfe" + KEY.encode(), "x-api-key": None}), 401,
             "missing or invalid API key", code="invalid_api_key"),
        Case("x-api-key-not-utf8", build("POST", path, good(path), headers={
            "Authorization": None, "x-api-key": b"\xc3\x28" + KEY.encode()}), 401,
             "missing or invalid API key", code="invalid_api_key"),
        Case("x-api-key-20kb", build("POST", path, good(path), headers={
            "Authorization": None, "x-api-key": "k" * HUGE_HEADER}), 431, "over the limit"),
        Case("authorization-20kb", build("POST", path, good(path), headers={
            "Authorization": "Bearer " + "k" * HUGE_HEADER, "x-api-key": None}), 431,
             "over the limit"),
        Case("unknown-model", build("POST", path, unknown), 404, "no-such-model",
             code="model_not_found"),
        Case("model-a-path", build("POST", path, {**good(path), "model": model}), 404, model,
             code="model_not_found"),
        Case("model-a-number", build("POST", path, {**good(path), "model": 7}), 400, "model",
             "model"),
        Case("get", build("GET", path), 405, "Method Not Allowed", code="method_not_allowed"),
        Case("put", build("PUT", path, good(path)), 405, "Method Not Allowed",
             code="method_not_allowed"),
    ]


def header_cases(path: str) -> list[Case]:
    """Anthropic's headers, malformed (each with a key that is right and a good body: the
    header alone is refused), on /v1/messages and its count_tokens, `?beta=true` too."""
    body = good(path)

    def with_(name: str, value: str | bytes, at: str = path) -> bytes:
        return build("POST", at, body, headers={name: value})

    version, beta = anthropic.headers.VERSION, anthropic.headers.BETA
    return [
        Case("version-yesterday", with_(version, "yesterday"), 400, "date", version),
        Case("version-yesterday-beta-true", with_(version, "yesterday", path + "?beta=true"),
             400, "date", version),
        Case("version-empty", with_(version, ""), 400, "date", version),
        Case("version-date-and-time", with_(version, "2023-06-01T00:00:00Z"), 400, "date",
             version),
        Case("version-4kb", with_(version, "2023-06-01" + "1" * 4000), 400, "date", version),
        Case("version-not-utf8", with_(version, b"2023-06-0\xff"), 400, "date", version),
        Case("version-20kb", with_(version, "2" * HUGE_HEADER), 431, "over the limit"),
        Case("beta-empty-name", with_(beta, "a,,b"), 400, "comma-separated", beta),
        Case("beta-trailing-comma", with_(beta, "claude-code-20250219,"), 400,
             "comma-separated", beta),
        Case("beta-space-in-name", with_(beta, "claude code"), 400, "comma-separated", beta),
        Case("beta-non-token", with_(beta, "a;b=c"), 400, "comma-separated", beta),
        Case("beta-65-names", with_(beta, ",".join(f"b{i}" for i in range(65))), 400,
             "up to 64", beta),
        Case("beta-name-200-chars", with_(beta, "b" * 200), 400, "comma-separated", beta),
        Case("beta-not-utf8", with_(beta, b"claude-code-\xe9"), 400, "comma-separated", beta),
        Case("beta-not-utf8-beta-true", with_(beta, b"\xff", path + "?beta=true"), 400,
             "comma-separated", beta),
        Case("beta-20kb", with_(beta, "b," * (HUGE_HEADER // 2)), 431, "over the limit"),
        Case("x-api-key-and-another-bearer", with_("Authorization", "Bearer other-key"), 400,
             "different keys", "authorization"),
        Case("x-api-key-and-basic-auth", with_("Authorization", "Basic abc"), 400, "Bearer",
             "authorization"),
    ]


# The backend's HTTP parser (aiohttp, server.py) refuses a header line over 8,190 bytes before
# any handler runs, when the request's path is not known: its 431 is in OpenAI's shape.
PARSER_431 = ("backend: a header over the HTTP parser's line limit is refused before the path "
              "is known, so its 431 is in OpenAI's error shape, not Anthropic's")


def cases(path: str, tier: str) -> list[Case]:
    """Every case of an endpoint at a tier."""
    out = [*table_cases(path, tier), *transport_cases(path)]
    if path not in ANTHROPIC:
        return out
    out = [*out, *header_cases(path)]
    if tier == "backend":
        out = [dataclasses.replace(c, xfail=PARSER_431) if c.status == 431 else c for c in out]
    return out


ALL = [(tier, path, case) for tier in TIERS for path in ENDPOINTS for case in cases(path, tier)]


def _param(tier: str, path: str, case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.xfail)
             ] if case.xfail else []
    return pytest.param(tier, path, case, marks=marks, id=f"{tier}:{path}:{case.id}")


# -- the tests --------------------------------------------------------------------------------

def test_at_least_thirty_cases_per_endpoint_and_tier():
    for tier in TIERS:
        for path in ENDPOINTS:
            got = [c.id for c in cases(path, tier)]
            assert len(got) >= 30, (tier, path, len(got))
            assert len(set(got)) == len(got), (tier, path)
            assert len({c.request for c in cases(path, tier)}) == len(got), (tier, path)


@MODULE_LOOP
@pytest.mark.parametrize(("tier", "path", "case"), [_param(*a) for a in ALL])
async def test_bad_input_is_a_4xx_in_the_apis_own_shape(ports, tier, path, case):
    reply = await exchange(ports[tier], case.request)
    assert reply.status == case.status, reply.body[:400]
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    if path in ANTHROPIC:
        assert body.get("type") == "error", body
        assert set(body) <= {"type", "error", "request_id"}, body
        error = body["error"]
        assert set(error) == {"type", "message"}, body
        assert error["type"] == anthropic.error_type(case.status), body
        if case.param is not None:
            assert case.param.lower() in error["message"].lower(), body
    else:
        assert set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert error["type"] == "invalid_request_error", body
        assert error["param"] == case.param, body
        if case.code is not None:
            assert error["code"] == case.code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert case.fragment.lower() in error["message"].lower(), body
    if case.message is not None:
        assert error["message"] == case.message
    health = await exchange(ports[tier], build("GET", "/health", headers={
        "Authorization": None, "x-api-key": None, "anthropic-version": None}))
    assert health.status == 200


@MODULE_LOOP
async def test_both_tiers_still_serve_after_every_case(ports):
    for tier in TIERS:
        health = await exchange(ports[tier], build("GET", "/health"))
        assert health.status == 200 and health.json()["status"] == "ok", tier
        # and answer a good request of each endpoint
        for path in (INPUT_TOKENS, COUNT_TOKENS):
            answer = await exchange(ports[tier], build("POST", path, good(path)))
            assert answer.status == 200, (tier, path, answer.body[:300])


async def test_an_unexpected_failure_is_a_500_in_the_apis_own_shape(start_backend, tiny_model,
                                                                   http):
    def broken(spec: Any, path: Any) -> Any:
        raise KeyError("a bug")  # not a failure the engine knows: the catch-all answers

    server = await start_backend(spec("tiny", tiny_model, n_ctx=256), loader=broken)
    url = str(server.make_url("")).rstrip("/")
    async with http.post(url + COUNT_TOKENS, json=good(COUNT_TOKENS)) as resp:
        body = await resp.json()
    assert resp.status == 500
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body
    async with http.post(url + INPUT_TOKENS, json=good(INPUT_TOKENS)) as resp:
        body = await resp.json()
    assert resp.status == 500 and body["error"]["type"] == "server_error", body
