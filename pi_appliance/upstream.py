"""Talking to OpenAI-compatible backends over one pooled aiohttp session."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from cerebrum.sse import MalformedStream, events

from .errors import UpstreamError, UpstreamRejected
from .settings import Backend, Timeouts


def new_session(timeouts: Timeouts, limit: int = 32) -> aiohttp.ClientSession:
    """The process's one pooled session: keep-alive, bounded connections, connect timeout."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect,
                                      connect=timeouts.connect),
        raise_for_status=False,
    )


def _headers(backend: Backend, request_id: str) -> dict[str, str]:
    headers = {"X-Request-ID": request_id}
    if backend.api_key:
        headers["Authorization"] = f"Bearer {backend.api_key}"
    return headers


async def _raise_for(resp: aiohttp.ClientResponse, backend: Backend) -> None:
    """Translate an upstream error status at the boundary."""
    try:
        body = await resp.json(content_type=None)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(error.get("message") or resp.reason)
        code = str(error.get("code") or "upstream_error")
    except (aiohttp.ClientError, ValueError, AttributeError):
        message, code = str(resp.reason), "upstream_error"
    if resp.status == 503:
        raise UpstreamError(f"backend {backend.name} is busy: {message}", code="upstream_busy",
                            counts=False)
    if 400 <= resp.status < 500 and resp.status not in (401, 403, 408, 429):
        raise UpstreamRejected(resp.status, message, code)
    raise UpstreamError(f"backend {backend.name} answered {resp.status}: {message}")


async def stream(session: aiohttp.ClientSession, backend: Backend, path: str,
                 payload: dict[str, Any], request_id: str, *, first_token: float,
                 between_tokens: float) -> AsyncIterator[dict[str, Any]]:
    """POST a streaming request and yield its chunks; UpstreamError on any failure.

    Leaving the iteration early (the client went away) closes the connection, which the
    backend sees as a disconnect and stops generating.
    """
    loop = asyncio.get_running_loop()
    first_by = loop.time() + first_token
    resp: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout_at(first_by):
            try:
                resp = await session.post(backend.url + path, json={**payload, "stream": True},
                                          headers=_headers(backend, request_id))
            except aiohttp.ClientConnectorError as exc:
                raise UpstreamError(f"backend {backend.name} is unreachable: {exc.strerror}",
                                    code="upstream_unreachable") from None
            if resp.status >= 400:
                await _raise_for(resp, backend)
        chunks = aiter(events(resp.content))
        deadline = first_by
        while True:
            # No yield inside a timeout block: each read gets its own deadline.
            async with asyncio.timeout_at(deadline):
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
            if "error" in chunk:
                error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                raise UpstreamError(f"backend {backend.name} failed mid-stream: "
                                    f"{error.get('message', 'unknown error')}")
            yield chunk
            deadline = loop.time() + between_tokens
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
            resp.close()


class TokenCounter:
    """Exact token counts from a backend's /v1/tokenize, cached per model (bounded LRU)."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float, size: int = 512):
        self._session = session
        self._timeout = timeout
        self._size = size
        self._cache: OrderedDict[tuple[str, str, bytes], int] = OrderedDict()

    async def count(self, backend: Backend, model: str, text: str, request_id: str) -> int:
        """Tokens of `text` for `model` on `backend`; UpstreamError if it cannot tell."""
        key = (backend.name, model, hashlib.blake2b(text.encode(), digest_size=16).digest())
        if (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return hit
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(
                        backend.url + "/v1/tokenize", json={"model": model, "text": text,
                                                            "add_special": False},
                        headers=_headers(backend, request_id)) as resp:
                    if resp.status >= 400:
                        await _raise_for(resp, backend)
                    n = int((await resp.json())["tokens"])
        except (TimeoutError, aiohttp.ClientError, KeyError, ValueError, TypeError):
            raise UpstreamError(f"backend {backend.name} could not count tokens",
                                code="upstream_tokenize") from None
        self._cache[key] = n
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return n
