"""The real llama.vim in real Vim (tmux) against both tiers: a suggestion is shown while
typing and Tab accepts it into the file. Runs where LLAMA_VIM_DIR names a checkout of
ggml-org/llama.vim (docs/editors.md); CI cannot fetch it and skips with the reason."""

from __future__ import annotations

import asyncio

import pytest
from conftest import QWEN, base_url, qwen_stack_settings, spec
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
