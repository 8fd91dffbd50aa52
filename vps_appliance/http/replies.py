"""The backend's JSON replies, all through the one compact serializer (cerebrum.jsonwire)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cerebrum import jsonwire


def json_response(body: Any, *, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """`body` as compact JSON (`{"content":"…"}`, as llama-server writes it)."""
    return web.json_response(body, status=status, headers=headers, dumps=jsonwire.dumps)
