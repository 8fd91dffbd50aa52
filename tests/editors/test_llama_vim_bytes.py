"""llama.vim against both tiers, held to what the plugin does with the bytes (llama_vim.py):
its raw-body check, Vim's line-at-a-time callbacks, the flattened `response_fields`, the
ring's priming request, `n_indent` — with llama.cpp's own llama-server as the reference."""

from __future__ import annotations

import json

import pytest
from llama_vim import FIM_FIELDS, callbacks, fim_request, ring_request, shown

# Inside a method (indent 8): the plugin sends the indent of the cursor's line as n_indent.
PREFIX = ("class Account:\n    def __init__(self, owner):\n        self.owner = owner\n"
          "        self.balance = 0\n\n    def deposit(self, amount):\n")
MIDDLE = "        "
SUFFIX = "\n\n    def withdraw(self, amount):\n        self.balance -= amount\n"
RING = [{"text": "def audit(account):\n    return account.balance >= 0\n",
         "time": [1733100000, 512345], "filename": "audit.py"}]


def test_the_emulation_drops_what_the_plugin_drops():
    # The bug this suite guards: Python's default separators are invisible to the plugin.
    assert shown(json.dumps({"content": "return 1"}).encode()) is None
    assert shown(json.dumps({"content": "x"}, indent=2).encode()) is None  # split by line
    assert shown(b'{"content":"   \\n"}') is None  # whitespace only: not offered
    got = shown(b'{"content":"return 1\\n\\n","tokens_cached":7}')
    assert got is not None and got.lines == ["return 1"] and got.tokens_cached == 7
    assert not got.info  # no timings asked, no info line
    assert callbacks(b'{"a":1}\n{"b":2}') == ['{"a":1}', '{"b":2}']


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
async def test_llama_vim_shows_the_completion(qwen_tiers, http, tier):
    body = fim_request(PREFIX, SUFFIX, MIDDLE, RING, model="", n_indent=8)
    async with http.post(qwen_tiers[tier] + "/infill", json=body) as resp:
        raw = await resp.read()
        assert resp.status == 200, raw
    got = shown(raw)
    assert got is not None, f"llama.vim would drop this reply: {raw[:120]!r}"
    assert got.info and got.truncated is False and isinstance(got.tokens_cached, int)
    assert "<|" not in "".join(got.lines)
    # n_indent: no line after the first leaves the method's body.
    for line in got.lines[1:]:
        assert not line.strip() or len(line) - len(line.lstrip(" \t")) >= 8, got.lines
    keys = set(json.loads(raw))
    assert set(FIM_FIELDS) - {"timings/truncated"} <= keys <= {*FIM_FIELDS, "cerebrum"}


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
async def test_the_ring_priming_request_is_answered_as_llama_server_does(qwen_tiers, http, tier):
    async with http.post(qwen_tiers[tier] + "/infill", json=ring_request(RING, model="")) as resp:
        raw = await resp.read()
        assert resp.status == 200, raw
    body = json.loads(raw)
    # response_fields [""] names no field: llama-server answers {}; the orchestrator adds
    # nothing but its own stats.
    assert set(body) <= {"cerebrum"}
    assert b"\n" not in raw


async def test_llama_server_is_shown_by_the_same_emulation(qwen_llama_server, http):
    # The reference: the same request to llama.cpp's own server passes the same checks, so the
    # emulation asks no more of our tiers than of the server the plugin is written for.
    body = fim_request(PREFIX, SUFFIX, MIDDLE, RING, model="", n_indent=8)
    async with http.post(qwen_llama_server + "/infill", json=body) as resp:
        raw = await resp.read()
        assert resp.status == 200, raw
    got = shown(raw)
    assert got is not None and got.info, raw[:200]
    async with http.post(qwen_llama_server + "/infill", json=ring_request(RING, model="")) as resp:
        assert resp.status == 200 and json.loads(await resp.read()) == {}
