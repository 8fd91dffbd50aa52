"""The real llama.vim in real Vim (tmux) against both tiers: a suggestion is shown while
typing and Tab accepts it into the file. Runs where LLAMA_VIM_DIR names a checkout of
ggml-org/llama.vim (docs/editors.md); CI cannot fetch it and skips with the reason."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from conftest import QWEN, base_url, qwen_stack_settings, spec
from llama_vim import FIM_FIELDS, fim_request
from vim_driver import INFO_MARK, VimSession, missing_tools

from vps_appliance.settings import Sampling

KEY = "vim-test-key-0123456789abcdef"
SOURCE = ("class Account:\n    def __init__(self, owner):\n        self.owner = owner\n"
          "        self.balance = 0\n\n    def deposit(self, amount):\n"
          "        self.balance += amount\n\n    def total(self, fee):\n\n\n"
          "    def withdraw(self, amount):\n        self.balance -= amount\n")
TOTAL_LINE = SOURCE.splitlines().index("    def total(self, fee):") + 1  # 1-based

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=missing_tools() or "")


@pytest.fixture
async def keyed_tiers(start_backend, start_orchestrator, qwen_path):
    """{"backend": url, "orchestrator": url}, both requiring KEY, as docs/editors.md sets up."""
    backend = base_url(await start_backend(spec(QWEN, qwen_path, sampling=Sampling(
        temperature=0.0, max_tokens=64)), api_keys=(KEY,)))
    return {"backend": backend,
            "orchestrator": await start_orchestrator(qwen_stack_settings(backend, KEY))}


def type_and_accept(session: VimSession) -> str:
    """Open a line in total(), type its start, wait for the hint, Tab, save: the line."""
    session.keys(f"{TOTAL_LINE}G")
    session.keys("o")
    session.keys("return self.", literal=True)
    session.wait_for(lambda screen: INFO_MARK in screen, 120)
    session.keys("Tab")  # Vim takes keys in order: accepted before Escape leaves insert mode
    session.keys("Escape")
    session.keys(":wq", "Enter")
    session.wait_exit(30)
    return session.path.read_text().splitlines()[TOTAL_LINE]


@pytest.mark.parametrize("tier", ["backend", "orchestrator"])
async def test_real_llama_vim_shows_and_accepts_a_suggestion(keyed_tiers, tier, tmp_path):
    path = tmp_path / "account.py"
    path.write_text(SOURCE)
    session = await asyncio.to_thread(VimSession, tmp_path, keyed_tiers[tier] + "/infill", path,
                                      api_key=KEY)
    try:
        line = await asyncio.to_thread(type_and_accept, session)
    finally:
        session.close()
    assert line.startswith("        return self.")
    assert len(line) > len("        return self."), f"nothing was accepted: {line!r}"


async def test_the_emulated_requests_are_the_real_plugins(aiohttp_server, tmp_path):
    # The byte-level tests send llama_vim.fim_request: the real plugin's bodies, recorded
    # here by a stand-in server, carry exactly its fields.
    seen: list[dict] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=b'{"content":"fee * 42"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/infill", record)
    url = base_url(await aiohttp_server(app))
    path = tmp_path / "account.py"
    path.write_text(SOURCE)
    session = await asyncio.to_thread(VimSession, tmp_path, url + "/infill", path)
    try:
        await asyncio.to_thread(session.keys, f"{TOTAL_LINE}G", "o")
        await asyncio.to_thread(session.keys, "return ", literal=True)
        await asyncio.to_thread(session.wait_for, lambda screen: "fee * 42" in screen, 60)
    finally:
        session.close()
    assert seen
    want = set(fim_request("", "", "", [], model="", n_indent=0))
    for body in seen:
        assert set(body) == want, set(body) ^ want
        assert body["model"] == "" and body["response_fields"] == FIM_FIELDS
    assert {body["n_indent"] for body in seen} >= {8}  # the method body's indent
