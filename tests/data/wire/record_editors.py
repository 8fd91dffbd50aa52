"""Record the `/infill` and `/completion` bodies editors send (llama_vim.json,
llama_vscode.json, continue.json).

- llama.vim: the real plugin (the checkout LLAMA_VIM_DIR names) in real Vim under tmux
  (tests/editors/vim_driver.py), typing into a file while a stand-in server keeps every body
  it POSTs: its ring updates (extra context, nothing generated) and its FIM requests.
- llama.vscode and Continue: no editor runs here; their bodies are built by
  tests/editors/llama_vscode.py and tests/editors/continue_llamacpp.py, which copy the
  plugins' sources (commits named there). Each case says which module built it.

Each case's `expect` is what `cerebrum.llamacpp.parse_infill` / `parse_completion` must make
of the body: the plugin's constant settings written here by hand, and the text fields as
llama-server reads them (input_prefix → prefix, input_extra → [filename, text], …).

    LLAMA_VIM_DIR=/path/to/llama.vim .venv/bin/python tests/data/wire/record_editors.py
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "editors"))

import continue_llamacpp  # noqa: E402
import llama_vim  # noqa: E402
import llama_vscode  # noqa: E402
from vim_driver import VimSession, missing_tools, plugin_dir  # noqa: E402

HELPER = ("def fee_rate(kind):\n    if kind == \"gold\":\n        return 0.01\n"
          "    return 0.02\n")
ACCOUNT = ("class Account:\n    def __init__(self, owner):\n        self.owner = owner\n"
           "        self.balance = 0\n\n    def total(self, fee):\n\n\n"
           "    def withdraw(self, amount):\n        self.balance -= amount\n")
TOTAL_LINE = ACCOUNT.splitlines().index("    def total(self, fee):") + 1  # 1-based
# llama.vim's defaults (autoload/llama.vim s:default_config, llama#fim, s:ring_update).
VIM_FIM = {"max_tokens": 128, "stop": [], "stream": False, "model": None, "rendered": False,
           "sampling": {"top_k": 40, "top_p": 0.9, "temperature": None},
           "controls": {"samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
                        "typical_p": 1.0, "repeat_last_n": 64},
           "response_fields": llama_vim.FIM_FIELDS}
VIM_RING = {"max_tokens": 0, "stop": [], "stream": False, "model": None, "rendered": False,
            "prefix": "", "suffix": "", "prompt": "",
            "sampling": {"temperature": 0.0, "top_k": None, "top_p": None},
            "controls": {"samplers": [], "cache_prompt": True, "t_max_predict_ms": 1,
                         "n_indent": 0},
            "response_fields": [""]}


def _text_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What llama-server reads from the body's text fields."""
    return {"prefix": body["input_prefix"], "suffix": body["input_suffix"],
            "prompt": body["prompt"],
            "extra": [[c.get("filename", "tmp"), c["text"]] for c in body["input_extra"]]}


async def record_llama_vim() -> list[dict[str, Any]]:
    """The real plugin's bodies: ring updates after opening two files, then FIM requests
    while a line is typed into total()."""
    if missing_tools() is not None:
        raise SystemExit(missing_tools())
    plugin = plugin_dir()
    assert plugin is not None
    digest = hashlib.sha256((plugin / "autoload" / "llama.vim").read_bytes()).hexdigest()
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(json.loads(await request.read()))
        # Compact: the plugin drops a line with a space between "content": and the string.
        return web.Response(body=b'{"content":"fee * 42"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/infill", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "rates.py").write_text(HELPER)
        (work / "account.py").write_text(ACCOUNT)
        session = await asyncio.to_thread(VimSession, work, f"http://127.0.0.1:{port}/infill",
                                          work / "rates.py")
        try:
            def drive() -> None:
                time.sleep(2.5)  # BufEnter picks rates.py; the ring update sends it
                session.keys(":e " + str(work / "account.py"), "Enter")
                time.sleep(2.5)  # account.py's chunk goes out the same way
                session.keys(f"{TOTAL_LINE}G", "o")
                session.keys("return ", literal=True)
                session.wait_for(lambda screen: "fee * 42" in screen, 60)
                time.sleep(1.0)

            await asyncio.to_thread(drive)
        finally:
            session.close()
            await runner.cleanup()
    source = f"ggml-org/llama.vim, real plugin in Vim (autoload/llama.vim sha256 {digest})"
    cases = []
    rings = fims = 0
    for body in seen:
        ring = body["n_predict"] == 0
        rings, fims = rings + ring, fims + (not ring)
        name = f"ring_update_{rings}" if ring else f"fim_{fims}"
        if ring:
            expect = {**VIM_RING, "extra": _text_fields(body)["extra"]}
        else:
            expect = {**VIM_FIM, **_text_fields(body)}
            expect["controls"] = {**VIM_FIM["controls"], "n_indent": body["n_indent"],
                                  "t_max_predict_ms": body["t_max_predict_ms"]}
        cases.append({"name": name, "endpoint": "/infill", "recorded_with": source,
                      "body": body, "expect": expect})
    return cases


PREFIX = "import math\n\n\ndef circle_area(radius):\n"
SUFFIX = "\n\n\ndef main():\n    print(circle_area(2.0))\n"
CHUNK = {"text": "def square(x):\n    return x * x\n", "time": 1733100000512,
         "filename": "/home/me/project/geometry.py"}


def llama_vscode_cases() -> list[dict[str, Any]]:
    built = "tests/editors/llama_vscode.py {} (llama.vscode 3938fb3 src/llama-server.ts)"
    fim = llama_vscode.fim_request(PREFIX, SUFFIX, "    return ", [CHUNK], model="",
                                   n_indent=4)
    fim_no_indent = llama_vscode.fim_request("x = ", "\n", "", [], model="qwen", n_indent=0)
    prime = llama_vscode.prime_request([CHUNK])
    controls = {"samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
                "t_max_predict_ms": 500}
    return [
        {"name": "fim", "endpoint": "/infill", "recorded_with": built.format("fim_request"),
         "body": fim, "expect": {
             "prefix": PREFIX, "suffix": SUFFIX, "prompt": "    return ",
             "extra": [["/home/me/project/geometry.py", "def square(x):\n    return x * x\n"]],
             "max_tokens": 128, "stream": False, "model": None, "stop": [],
             "sampling": {"top_k": 40, "top_p": 0.99, "temperature": None},
             "controls": {**controls, "n_indent": 4}, "response_fields": None}},
        {"name": "fim_named_model_no_indent", "endpoint": "/infill",
         "recorded_with": built.format("fim_request"), "body": fim_no_indent, "expect": {
             "prefix": "x = ", "suffix": "\n", "prompt": "", "extra": [], "model": "qwen",
             "controls": {**controls, "n_indent": 0}}},
        {"name": "prime_extra_context", "endpoint": "/infill",
         "recorded_with": built.format("prime_request"), "body": prime, "expect": {
             "prefix": "", "suffix": "", "prompt": "", "max_tokens": 0, "stream": False,
             "model": None,
             "extra": [["/home/me/project/geometry.py", "def square(x):\n    return x * x\n"]],
             "controls": {"samplers": [], "t_max_predict_ms": 1, "cache_prompt": True}}},
    ]


def continue_cases() -> list[dict[str, Any]]:
    built = ("tests/editors/continue_llamacpp.py autocomplete_request (continuedev/continue "
             "d0a3c0b core/llm/llms/LlamaCpp.ts)")
    body = continue_llamacpp.autocomplete_request(PREFIX + "    return ", SUFFIX,
                                                  model="qwen2.5-coder-0.5b-instruct")
    return [{"name": "autocomplete", "endpoint": "/completion", "recorded_with": built,
             "body": body, "expect": {
                 "rendered": True, "prefix": "", "suffix": "", "extra": [],
                 "prompt": "<|fim_prefix|>" + PREFIX + "    return <|fim_suffix|>" + SUFFIX
                           + "<|fim_middle|>",
                 "max_tokens": 4096, "stream": True, "model": "qwen2.5-coder-0.5b-instruct",
                 "stop": continue_llamacpp.QWEN_STOPS,
                 "sampling": {"temperature": 0.01, "top_k": None},
                 "controls": {"samplers": None, "cache_prompt": True, "n_indent": 0},
                 "response_fields": None}}]


def write(name: str, cases: list[dict[str, Any]]) -> None:
    path = HERE / name
    path.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases → {path}")


def main() -> None:
    write("llama_vscode.json", llama_vscode_cases())
    write("continue.json", continue_cases())
    write("llama_vim.json", asyncio.run(record_llama_vim()))


if __name__ == "__main__":
    main()
