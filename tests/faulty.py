"""A deliberately faulty OpenAI-compatible upstream, for fault injection only.

Every path it breaks is also tested against the real backend."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

MODES = ("ok", "die_midstream", "stall_midstream", "slow_first", "error500", "busy503",
         "garbage", "hold", "reject400", "hold_after_first", "flood", "no_fim")


class Faulty:
    """Answers completions according to `mode`; counts calls."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        self.release = asyncio.Event()
        self.seen_headers: list[dict[str, str]] = []
        self.has_tokenize = True  # False: /v1/tokenize answers 404, as llama-server's does
        self.tokenize_calls = 0
        self.flooded = asyncio.Event()  # set when a "flood" stream found its client gone
        self.served: set[int] = set()  # transports that answered once ("drop_reused")
        self.infill_bodies: list[dict] = []
        self.bodies: list[dict] = []  # the completion requests, as received
        self.raw_bodies: list[bytes] = []  # … and their bytes
        # Set: the last chunk's usage reports speculative decoding, as our backend's does.
        self.completion_details: dict | None = None
        self.hung_up = asyncio.Event()  # set when a held /infill stream lost its client

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/tokenize", self.tokenize)
        app.router.add_post("/infill", self.infill)
        return app

    async def tokenize(self, request: web.Request) -> web.Response:
        self.tokenize_calls += 1
        if not self.has_tokenize:
            raise web.HTTPNotFound()
        body = await request.json()
        return web.json_response({"tokens": max(1, len(body["text"].split()))})  # a word each

    async def completions(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "drop_reused":  # as llama-server: a kept-alive connection is dead
            transport = request.transport
            assert transport is not None
            if id(transport) in self.served:
                transport.close()
                return web.Response()  # never reaches the client
            self.served.add(id(transport))
        self.calls += 1
        self.seen_headers.append(dict(request.headers))
        self.raw_bodies.append(await request.read())
        body = await request.json()
        self.bodies.append(body)
        if self.mode == "error500":
            return web.json_response({"error": {"message": "boom", "type": "server_error",
                                                "code": "internal_error"}}, status=500)
        if self.mode == "busy503":
            return web.json_response({"error": {"message": "queue full", "code": "queue_full",
                                                "type": "server_error"}}, status=503,
                                     headers={"Retry-After": "3"})
        if self.mode == "reject400":
            return web.json_response({"error": {"message": "prompt too long", "type":
                                                "invalid_request_error",
                                                "code": "context_length_exceeded"}},
                                     status=400)
        if self.mode == "slow_first":
            await asyncio.sleep(30)
        if self.mode == "hold":
            await self.release.wait()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chat = "messages" in body
        rid = request.headers.get("X-Request-ID", "x")
        if self.mode == "flood":
            return await self._flood(resp, chat)
        for i in range(5):
            if self.mode == "garbage" and i == 2:
                await resp.write(b"data: {this is not json\n\n")
                return resp
            if self.mode == "stall_midstream" and i == 2:
                await asyncio.sleep(30)  # alive but silent
            if self.mode == "die_midstream" and i == 2:
                request.transport.close()  # the upstream process dies mid-answer
                return resp
            if self.mode == "hold_after_first" and i == 1:
                await self.release.wait()
            piece = f"tok{i} "
            choice = ({"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat
                      else {"index": 0, "text": piece, "finish_reason": None})
            chunk = {"id": f"chatcmpl-{rid}", "object": "chat.completion.chunk" if chat
                     else "text_completion", "created": 1, "model": body.get("model"),
                     "choices": [choice]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        last = {"id": f"chatcmpl-{rid}", "object": "chat.completion.chunk" if chat
                else "text_completion", "created": 1, "model": body.get("model"),
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}
        if self.completion_details is not None:
            last["usage"]["completion_tokens_details"] = self.completion_details
        await resp.write(f"data: {json.dumps(last)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def _flood(self, resp: web.StreamResponse, chat: bool) -> web.StreamResponse:
        """Stream 4 KB chunks as fast as the reader takes them (up to 64 MB) until it goes."""
        piece = "x" * 4096
        delta = {"delta": {"content": piece}} if chat else {"text": piece}
        line = f"data: {json.dumps({'choices': [{'index': 0, **delta}]})}\n\n".encode()
        try:
            for _ in range(16_384):
                await resp.write(line)
        except (ConnectionError, RuntimeError):  # the orchestrator closed the stream
            self.flooded.set()
        except asyncio.CancelledError:  # … noticed by the server first
            self.flooded.set()
            raise
        return resp

    async def infill(self, request: web.Request) -> web.StreamResponse:
        """llama.cpp's /infill stream: content chunks, then one `stop: true` chunk (no [DONE])."""
        self.calls += 1
        body = await request.json()
        self.infill_bodies.append(body)
        if self.mode == "busy503":
            return web.json_response({"error": {"code": 503, "message": "no free slot",
                                                "type": "unavailable_error"}}, status=503,
                                     headers={"Retry-After": "3"})
        if self.mode == "error500":
            return web.json_response({"error": {"code": 500, "message": "boom",
                                                "type": "server_error"}}, status=500)
        if self.mode == "no_fim":
            return web.json_response({"error": {"code": 501, "message": "the model has no "
                                                "FIM tokens", "type": "not_supported_error"}},
                                     status=501)
        if self.mode == "hold":
            await self.release.wait()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(3):
            if self.mode == "die_midstream" and i == 1:
                request.transport.close()
                return resp
            if self.mode == "hold_after_first" and i == 1:
                try:
                    await self.release.wait()
                except asyncio.CancelledError:  # the orchestrator closed the connection
                    self.hung_up.set()
                    raise
            chunk = {"index": 0, "content": f"x{i}", "stop": False, "tokens_predicted": i + 1}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        last = {"index": 0, "content": "", "stop": True, "stop_type": "limit",
                "tokens_predicted": 3, "tokens_evaluated": 11, "tokens_cached": 13,
                "truncated": False, "timings": {"prompt_n": 11, "predicted_n": 3}}
        await resp.write(f"data: {json.dumps(last)}\n\n".encode())
        return resp
