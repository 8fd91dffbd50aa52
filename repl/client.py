"""The orchestrator over HTTP (aiohttp): streamed chat, context preview; errors translated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cerebrum import sse

from .errors import Malformed, Rejected, ReplError, StreamFailed, Unreachable

TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300)


@dataclass
class Answer:
    """What one streamed answer produced (filled in as it arrives)."""

    text: str = ""
    tokens: int = 0
    prompt_tokens: int | None = None  # the whole request's, from the usage chunk
    stats: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def _rejected(resp: aiohttp.ClientResponse) -> Rejected:
    try:
        error = json.loads(await resp.text()).get("error") or {}
        message, code = str(error.get("message") or resp.reason), str(error.get("code") or "")
    except (ValueError, AttributeError, aiohttp.ClientError, UnicodeDecodeError):
        message, code = str(resp.reason or "error"), ""
    retry = resp.headers.get("Retry-After")
    retry_after = int(retry) if retry and retry.isdigit() else None
    if resp.status == 503 and code == "breaker_open":
        text = "every backend's circuit breaker is open"
    elif resp.status == 503:
        text = f"orchestrator busy ({message})"
    else:
        text = f"orchestrator error {resp.status}: {message}"
    if retry_after is not None:
        text += f"; retry in {retry_after} s"
    return Rejected(text, status=resp.status, code=code, retry_after=retry_after)


def _unreachable(url: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"cannot reach the orchestrator at {url} ({type(exc).__name__}); "
                       "is it running? (`make serve`)")


async def stream_chat(url: str, body: dict[str, Any], on_text: Callable[[str], None],
                      answer: Answer, api_key: str | None = None) -> Answer:
    """POST a streamed chat request, calling on_text per piece; the stats land in `answer`."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
                f"{url}/v1/chat/completions", json=body, headers=_headers(api_key)) as resp:
            if resp.status != 200:
                raise await _rejected(resp)
            async for event in sse.events(resp.content):
                if "error" in event:
                    error = event["error"] if isinstance(event["error"], dict) else {}
                    raise StreamFailed(f"the answer broke off: "
                                       f"{error.get('message') or 'unknown error'}")
                _take(event, on_text, answer)
    except ReplError:
        raise
    except (sse.MalformedStream, UnicodeDecodeError, KeyError, TypeError, IndexError) as exc:
        raise Malformed(f"malformed answer stream: {exc}") from None
    except aiohttp.ClientConnectorError as exc:
        raise _unreachable(url, exc) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Malformed(f"the answer stream broke off ({type(exc).__name__})") from None
    return answer


def _take(event: dict[str, Any], on_text: Callable[[str], None], answer: Answer) -> None:
    if isinstance(event.get("cerebrum"), dict):
        answer.stats = event["cerebrum"]
    usage = event.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        answer.tokens = usage["completion_tokens"]
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        answer.prompt_tokens = usage["prompt_tokens"]
    for choice in event.get("choices") or []:
        piece = (choice.get("delta") or {}).get("content") or ""
        if piece:
            if answer.first_token is None:
                answer.first_token = time.monotonic()
            answer.text += piece
            if not isinstance(usage, dict):
                answer.tokens += 1
            on_text(piece)


async def preview(url: str, body: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    """POST /v1/context/preview: what the pipeline would send."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
                f"{url}/v1/context/preview", json=body, headers=_headers(api_key)) as resp:
            if resp.status != 200:
                raise await _rejected(resp)
            out = json.loads(await resp.text())
    except ReplError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"malformed preview: {type(exc).__name__}") from None
    except aiohttp.ClientConnectorError as exc:
        raise _unreachable(url, exc) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Malformed(f"the preview broke off ({type(exc).__name__})") from None
    if not isinstance(out, dict):
        raise Malformed("malformed preview: not a JSON object")
    return out
