"""The real llama.vim in real Vim (tmux): time from typing to the first shown suggestion,
and whether Tab accepts it, against llama.cpp's `llama-server` /infill, the backend's and the
orchestrator's (figures, not pass/fail). Same model file (Qwen2.5-Coder-0.5B Q4_K_M), threads
and context for all three; the peers take turns, a fresh Vim each time (the plugin caches
suggestions per session) and a fresh comment at the top of the file (nothing cached on the
server: the first suggestion a person gets on opening the file).

    LLAMA_VIM_DIR=/path/to/llama.vim .venv/bin/python bench/editor.py   # ~3 min on 2 cores
Writes bench/results/editor.json and editor.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "editors"))

from llama_vim import fim_request  # noqa: E402
from vim_driver import INFO_MARK, VimSession, missing_tools  # noqa: E402

from bench.backend import machine  # noqa: E402
from bench.fim import MODEL, N_CTX, THREADS, start_services  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from vps_appliance import models  # noqa: E402

SOURCE = ('"""Bank accounts: {tag}."""\n\n\nclass Account:\n'
          "    def __init__(self, owner):\n        self.owner = owner\n"
          "        self.balance = 0\n\n    def deposit(self, amount):\n"
          "        self.balance += amount\n\n    def total(self, fee):\n\n\n"
          "    def withdraw(self, amount):\n        self.balance -= amount\n")
LINE = "    def total(self, fee):"
TYPED = "return self."


def one_try(work: Path, endpoint: str, tag: str) -> dict:
    """A fresh Vim on a fresh file: seconds to the first shown hint, and the accepted line."""
    source = SOURCE.format(tag=tag)
    path = work / "account.py"
    path.write_text(source)
    row = source.splitlines().index(LINE) + 1
    session = VimSession(work, endpoint, path)
    try:
        session.keys(f"{row}G", "o")
        session.keys(TYPED, literal=True)
        try:
            shown_s, _ = session.wait_for(lambda screen: INFO_MARK in screen, 300)
        except TimeoutError:
            return {"shown_s": None, "accepted": None}
        session.keys("Tab")  # accepted before Escape leaves insert mode (keys in order)
        session.keys("Escape", ":wq", "Enter")
        session.wait_exit(30)
        line = path.read_text().splitlines()[row]
        return {"shown_s": round(shown_s, 3), "accepted": line.strip()}
    finally:
        session.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if why := missing_tools():
        raise SystemExit(why)
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-editor-"))
    urls, procs = start_services(work, models.resolve(MODEL, models.default_cache_dir()))
    result: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "model": MODEL,
                    "threads": THREADS, "n_ctx": N_CTX, "tries": {p: [] for p in urls}}
    try:
        async with aiohttp.ClientSession() as session:
            for proc, url in zip(procs, urls.values(), strict=True):
                await wait_healthy(session, url, proc)
            # Load the model and build the graphs with the plugin's own request (another file),
            # so that no peer's first timed try pays for its start-up.
            source = SOURCE.format(tag="warm-up")
            cut = source.index(LINE) + len(LINE) + 1
            warm_up = fim_request(source[:cut], source[cut:], "        return self.", [],
                                  model="", n_indent=8)
            for url in urls.values():
                async with session.post(url + "/infill", json=warm_up) as resp:
                    await resp.read()
        for i in range(args.repeats):
            for peer, url in urls.items():
                tag = f"try {i} of {peer}, {time.time_ns()}"
                tries = result["tries"][peer]
                tries.append(await asyncio.to_thread(one_try, work, url + "/infill", tag))
                print(peer, tries[-1], flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    write_results(args.out, "editor", result, markdown(result))
    return 0


def markdown(r: dict) -> str:
    base = statistics.median(t["shown_s"] for t in r["tries"]["llama-server"]
                             if t["shown_s"] is not None)
    lines = [f"Real llama.vim in Vim 9 under tmux, {r['model']}, {r['threads']} threads, "
             f"n_ctx {r['n_ctx']}; {r['machine']}; {r['date']}.", "",
             "| peer | first suggestion shown (median s) | each try (s) | ÷ llama-server "
             "| accepted with Tab |", "|---|---:|---|---:|---:|"]
    for peer, tries in r["tries"].items():
        shown = [t["shown_s"] for t in tries if t["shown_s"] is not None]
        med = statistics.median(shown) if shown else None
        accepted = sum(1 for t in tries if t["accepted"])
        lines.append(f"| {peer} | {med if med is not None else '—'} | "
                     f"{', '.join(str(t['shown_s']) for t in tries)} | "
                     f"{f'{med / base:.2f}' if med else '—'} | {accepted}/{len(tries)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
