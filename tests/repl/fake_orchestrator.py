"""A fake orchestrator for fault injection: the prompt's keyword picks the failure."""

from __future__ import annotations

import json
import sys

from aiohttp import web


def chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}
                                  ).encode() + b"\n\n"


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    prompt = body["messages"][-1]["content"]
    if "SHED" in prompt:
        return web.json_response({"error": {"message": "busy: 1 requests in flight; retry in "
                                            "7 s", "code": "overloaded"}}, status=503,
                                 headers={"Retry-After": "7"})
    if "BREAKER" in prompt:
        return web.json_response({"error": {"message": "all backends of route qwen are open",
                                            "code": "breaker_open"}}, status=503,
                                 headers={"Retry-After": "9"})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(chunk("partial "))
    if "MIDERROR" in prompt:
        await resp.write(b'data: {"error": {"message": "backend vps stalled", '
                         b'"code": "timeout"}}\n\ndata: [DONE]\n\n')
    else:
        await resp.write(b"data: {not json\n\n")
    return resp


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
