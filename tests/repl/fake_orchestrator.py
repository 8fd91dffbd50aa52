"""A fake orchestrator for fault injection: the prompt's keyword picks the failure."""

from __future__ import annotations

import json
import sys

from aiohttp import web

# A hostile answer, split so that sequences straddle deltas: OSC 52 (set the clipboard),
# OSC 0 (set the title), CSI 2J (clear the screen), a cursor move, 8-bit CSI, CR, BS, NUL,
# and a lone surrogate (valid JSON, not encodable).
ESCAPES = ["before \x1b]52;c;ZXZpbA==\x07", "safe\x1b]0;pw", "ned\x07 text\x1b[",
           "2J\x1b[5;1H\x9b31m middle\x00\x08", "\r\nafter\x1b", "]2;again\x1b\\ end\ud800\n"]


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
    if "HOSTILE_ERROR" in prompt:
        return web.json_response({"error": {"message": "bad\x1b]0;pwned\x07 thing\x1b[2J",
                                            "code": "invalid"}}, status=400)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    if "OUTSIDE" in prompt:  # an answer for a file attached from outside the directory
        for piece in ["Here:\n```python ../outside.py\n", "x = 2\n```\n"]:
            await resp.write(chunk(piece))
        await resp.write(b"data: [DONE]\n\n")
        return resp
    if "CUTOFF" in prompt:  # an answer cut off inside its code block
        await resp.write(chunk("```python\nx = 3\n"))
        await resp.write(b"data: [DONE]\n\n")
        return resp
    if "ESCAPES" in prompt:
        for piece in ESCAPES:
            await resp.write(chunk(piece))
        await resp.write(b"data: [DONE]\n\n")
        return resp
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
