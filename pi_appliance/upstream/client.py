"""Talking to OpenAI-compatible backends over one pooled aiohttp session.

aiohttp's client is imported by the functions that use it, not with this module: it is a
third of the orchestrator's start-up, and a socket-activated start answers `/health` before
any request needs a backend.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from cerebrum import jsonwire
from cerebrum.capacity import sequences
from cerebrum.sse import MalformedStream, events

from ..errors import UpstreamError, UpstreamRejected
from ..metrics import Metrics
from ..settings import Backend, Timeouts

if TYPE_CHECKING:
    import aiohttp

# What a backend without the endpoint answers /v1/tokenize with (llama-server: 404, others
# 405 or 501): remembered, so it is not asked again.
_NO_TOKENIZE = frozenset({404, 405, 501})


def new_session(timeouts: Timeouts, limit: int = 32) -> aiohttp.ClientSession:
    """The process's one pooled session: keep-alive, bounded connections, connect timeout."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect,
                                      connect=timeouts.connect),
        raise_for_status=False,
        json_serialize=jsonwire.dumps,
    )


def _headers(backend: Backend, request_id: str) -> dict[str, str]:
    headers = {"X-Request-ID": request_id}
    if backend.api_key:
        headers["Authorization"] = f"Bearer {backend.api_key}"
    return headers


def retry_after(resp: aiohttp.ClientResponse) -> int | None:
    """A response's Retry-After in whole seconds (1..3600), when given as a number."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value.isdigit():
        return None  # absent, or an HTTP date: the caller's default applies
    return max(1, min(3600, int(value)))


async def _raise_for(resp: aiohttp.ClientResponse, backend: Backend) -> None:
    """Translate an upstream error status at the boundary."""
    import aiohttp

    try:
        body = await resp.json(content_type=None)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(error.get("message") or resp.reason)
        code = str(error.get("code") or "upstream_error")
        param = error.get("param") if isinstance(error.get("param"), str) else None
    except (aiohttp.ClientError, ValueError, AttributeError):
        message, code, param = str(resp.reason), "upstream_error", None
    if resp.status == 503:
        raise UpstreamError(f"backend {backend.name} is busy: {message}", code="upstream_busy",
                            counts=False, retry_after=retry_after(resp))
    # 501: the backend cannot do this request (a model without FIM tokens): not a failure.
    if (400 <= resp.status < 500 and resp.status not in (401, 403, 408, 429)) or \
            resp.status == 501:
        raise UpstreamRejected(resp.status, message, code, param)
    raise UpstreamError(f"backend {backend.name} answered {resp.status}: {message}")


async def stream(session: aiohttp.ClientSession, backend: Backend, path: str,
                 payload: dict[str, Any], request_id: str, *, first_token: float,
                 between_tokens: float, last: Callable[[dict[str, Any]], bool] | None = None,
                 capacity: Callable[[int], None] | None = None
                 ) -> AsyncGenerator[dict[str, Any], None]:
    """POST a streaming request and yield its chunks; UpstreamError on any failure.

    The stream ends at `[DONE]`, or after the chunk `last` says is the last one (llama.cpp's
    native endpoints, like /infill, end with a `"stop": true` chunk and no `[DONE]`).
    `capacity` hears the sequences the backend reports (its answer's header), busy or not.

    A stream read to its end gives its connection back to the pool (the next request skips
    the TCP handshake, a round trip over the tailnet); leaving the iteration early (the client
    went away) closes the connection, which the backend sees as a disconnect and stops.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    first_by = loop.time() + first_token
    resp: aiohttp.ClientResponse | None = None
    finished = False
    try:
        async with asyncio.timeout_at(first_by):
            resp = await _post(session, backend, path, {**payload, "stream": True},
                               request_id)
            if capacity is not None and (n := sequences(resp.headers)) is not None:
                capacity(n)
            if resp.status >= 400:
                await _raise_for(resp, backend)
        chunks = aiter(events(_lines(resp.content, first_by, between_tokens)))
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:  # [DONE]: the end of the body follows at once
                finished = await _drained(resp)
                return
            if "error" in chunk:
                error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                raise UpstreamError(f"backend {backend.name} failed mid-stream: "
                                    f"{error.get('message', 'unknown error')}")
            yield chunk
            if last is not None and last(chunk):
                finished = await _drained(resp)
                return
    except TimeoutError:
        raise UpstreamError(f"backend {backend.name} timed out", code="upstream_timeout") from None
    except MalformedStream as exc:
        raise UpstreamError(f"backend {backend.name} sent a broken stream: {exc}",
                            code="upstream_bad_stream") from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamError(f"backend {backend.name} connection failed: {type(exc).__name__}",
                            code="upstream_disconnected") from None
    finally:
        if resp is not None:
            if finished:
                resp.release()
            else:
                resp.close()


async def _lines(content: aiohttp.StreamReader, first_by: float, between: float
                 ) -> AsyncIterator[bytes]:
    """The body's lines, each within its deadline: the first by `first_by`, each next within
    `between` of the one before. A comment line counts (`: keep-alive`, which the backend
    sends while it evaluates a long prompt), so a backend at work is not taken for a stalled
    one; a silent one is."""
    loop = asyncio.get_running_loop()
    deadline = first_by
    while True:
        # No yield inside a timeout block: each read gets its own deadline.
        async with asyncio.timeout_at(deadline):
            line = await content.readline()
        if not line:
            return
        yield line
        deadline = loop.time() + between


# A pooled connection the upstream closed after its last answer (llama-server closes its
# end after a stream without saying so) fails before any response byte: the request never
# reached it, so it goes again on another connection, a bounded number of times.
_STALE_RETRIES = 3


async def _post(session: aiohttp.ClientSession, backend: Backend, path: str,
                body: dict[str, Any], request_id: str) -> aiohttp.ClientResponse:
    """POST, retried when a pooled connection turns out to be closed; UpstreamError when
    the backend cannot be reached."""
    import aiohttp

    for attempt in range(_STALE_RETRIES + 1):
        try:
            return await session.post(backend.url + path, json=body,
                                      headers=_headers(backend, request_id))
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(f"backend {backend.name} is unreachable: {exc.strerror}",
                                code="upstream_unreachable") from None
        except aiohttp.ServerDisconnectedError:
            if attempt == _STALE_RETRIES:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


async def _drained(resp: aiohttp.ClientResponse, limit: float = 1.0) -> bool:
    """Read what is left of the body after [DONE] (the chunked terminator), so the
    connection can go back to the pool; False if it does not end within `limit` seconds."""
    import aiohttp

    try:
        async with asyncio.timeout(limit):
            while not resp.content.at_eof():
                if not await resp.content.readany():
                    break
    except (TimeoutError, aiohttp.ClientError):
        return False
    return resp.content.at_eof()


async def post_json(session: aiohttp.ClientSession, backend: Backend, path: str,
                    payload: dict[str, Any], request_id: str, timeout: float
                    ) -> tuple[int, Any]:
    """POST a request that is answered with one JSON body (a token count): its status and
    body; UpstreamError when the backend cannot be reached, is too slow or sends no JSON."""
    import aiohttp

    try:
        async with asyncio.timeout(timeout):
            async with session.post(backend.url + path, json=payload,
                                    headers=_headers(backend, request_id)) as resp:
                return resp.status, await resp.json(content_type=None)
    except TimeoutError:
        raise UpstreamError(f"backend {backend.name} timed out",
                            code="upstream_timeout") from None
    except (aiohttp.ClientError, ConnectionError, ValueError) as exc:
        raise UpstreamError(f"backend {backend.name} failed: {type(exc).__name__}",
                            code="upstream_disconnected") from None


class TokenCounter:
    """Exact token counts from a backend's /v1/tokenize, cached per model (bounded LRU); a
    backend that turns out not to have the endpoint is remembered and not asked again.
    `session` gives the pooled session (opened on first use)."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], timeout: float,
                 metrics: Metrics, size: int = 512):
        self._session = session
        self._timeout = timeout
        self._metrics = metrics
        self._size = size
        self._cache: OrderedDict[tuple[str, str, bytes], int] = OrderedDict()
        self._without: set[str] = set()

    def offers(self, backend: str) -> bool:
        """Whether `backend` may have /v1/tokenize (not yet seen to lack it)."""
        return backend not in self._without

    async def count(self, backend: Backend, model: str, text: str, request_id: str) -> int:
        """Tokens of `text` for `model` on `backend`; UpstreamError if it cannot tell."""
        import aiohttp

        key = (backend.name, model, hashlib.blake2b(text.encode(), digest_size=16).digest())
        if (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return hit
        outcome = "failed"
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session().post(
                        backend.url + "/v1/tokenize", json={"model": model, "text": text,
                                                            "add_special": False},
                        headers=_headers(backend, request_id)) as resp:
                    if resp.status in _NO_TOKENIZE:
                        self._without.add(backend.name)
                        outcome = "unsupported"
                        raise UpstreamError(f"backend {backend.name} has no /v1/tokenize",
                                            code="upstream_tokenize")
                    if resp.status >= 400:
                        raise UpstreamError(f"backend {backend.name} could not count tokens",
                                            code="upstream_tokenize")
                    tokens = (await resp.json())["tokens"]
                    # Ours answers a count; llama.cpp-style servers the token ids.
                    n = len(tokens) if isinstance(tokens, list) else int(tokens)
                    outcome = "ok"
        except (TimeoutError, aiohttp.ClientError, KeyError, ValueError, TypeError):
            raise UpstreamError(f"backend {backend.name} could not count tokens",
                                code="upstream_tokenize") from None
        finally:
            self._metrics.tokenize_calls.labels(backend.name, outcome).inc()
        self._cache[key] = n
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return n
