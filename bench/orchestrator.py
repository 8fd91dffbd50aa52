"""Orchestrator benchmark (figures, not pass/fail), in one run:

1. TTFT and tok/s through the orchestrator vs straight to the backend (Qwen2.5-Coder-0.5B,
   the same cached prompt, alternating) → added TTFT p50/p99 and the tok/s ratio.
1b. The same over a 40 ms RTT link (a latency-injecting TCP relay, tests/relay.py, in front
   of the backend; the kernel has no netem) with a fresh prompt each round: a direct client
   (a new connection per prompt, as curl or a script makes) vs the orchestrator on loopback
   (its pooled connection across the link) → added TTFT p50/p99.
2. Pipeline time on the seed 8.3 KB case and on the largest corpus prompt.
3. End-to-end TTFT on the seed case: raw vs through the pipeline (fresh prompts, no KV reuse).
4. Orchestrator RSS idle and under 50 concurrent streaming clients (a trivial local upstream,
   so the orchestrator, not the model, is what is loaded).
5. The corpus table: reduction, instruction kept, target recall.

Writes bench/results/orchestrator.json and orchestrator.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

from relay import Relay  # noqa: E402

from bench.harness import wait_healthy, write_results  # noqa: E402
from bench.pipeline import corpus_report  # noqa: E402
from cerebrum import sse  # noqa: E402
from vps_appliance import models  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
CORPUS = ROOT / "tests" / "data" / "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def timed_stream(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    start = time.perf_counter()
    first = last = None
    n = 0
    async with session.post(url + "/v1/chat/completions", json={**body, "stream": True}) as r:
        r.raise_for_status()
        async for chunk in sse.events(r.content):
            if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    assert first is not None and last is not None
    return {"ttft": first - start, "tok_s": (n - 1) / (last - first) if n > 1 else float("nan")}


def pipeline_times(corpus: list[dict]) -> dict:
    """The seed case's and the largest case's pipeline time, from the corpus report."""
    seed = next(c for c in corpus if c["case"] == "seed_async_refactor")
    largest = max(corpus, key=lambda c: c["chars_in"])
    return {"seed_chars": seed["chars_in"], "seed_ms": seed["ms"], "largest": largest["case"],
            "largest_chars": largest["chars_in"], "largest_ms": largest["ms"]}


async def fake_upstream(tokens: int) -> tuple[web.AppRunner, str]:
    """A trivial streaming upstream for the concurrency/RSS measurement."""
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(tokens):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.02)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    app.router.add_post("/v1/tokenize", lambda r: web.json_response({"tokens": 10}))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def orchestrator_config(path: Path, upstream: str, model: str, concurrent: int,
                        extra: str = "") -> None:
    """The bench's orchestrator config; `extra` is appended (more TOML tables)."""
    path.write_text(f'max_concurrent = {concurrent}\n[[backends]]\nname = "b"\n'
                    f'url = "{upstream}"\n[[routes]]\nname = "qwen"\nmodel = "{model}"\n'
                    f'backends = ["b"]\nlanguages = ["python", "javascript", "typescript", '
                    f'"rust", "c", "cpp"]\nn_ctx = 4096\n' + extra)


async def start_orchestrator(session: aiohttp.ClientSession, procs: list,
                             config: Path, upstream: str, model: str, concurrent: int,
                             port: int, extra: str = "") -> str:
    """An orchestrator subprocess in front of `upstream` (added to `procs`), once healthy."""
    orchestrator_config(config, upstream, model, concurrent, extra)
    procs.append(subprocess.Popen([sys.executable, "-m", "pi_appliance", "--config",
                                   str(config), "--port", str(port)],
                                  cwd=ROOT, stderr=subprocess.DEVNULL))
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(session, url)
    return url


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--e2e-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-"))
    model_path = models.resolve(MODEL, models.default_cache_dir())
    bport, oport, lport, wport = free_port(), free_port(), free_port(), free_port()
    (work / "backend.toml").write_text(
        f'[[models]]\nname = "{MODEL}"\npath = "{model_path}"\nn_ctx = 4096\n')
    orchestrator_config(work / "orch.toml", f"http://127.0.0.1:{bport}", MODEL, 4)
    procs = []
    result: dict = {"date": time.strftime("%Y-%m-%d"), "model": MODEL}
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                                       str(work / "backend.toml"), "--port", str(bport)],
                                      cwd=ROOT, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([sys.executable, "-m", "pi_appliance", "--config",
                                       str(work / "orch.toml"), "--port", str(oport)],
                                      cwd=ROOT, stderr=subprocess.DEVNULL))
        direct, via = f"http://127.0.0.1:{bport}", f"http://127.0.0.1:{oport}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
            await wait_healthy(session, direct)
            await wait_healthy(session, via)
            result["rss_idle_mb"] = rss_mb(procs[1].pid)
            prompt = "Write a haiku about the sea."
            body = {"model": MODEL, "max_tokens": 48, "temperature": 0,
                    "messages": [{"role": "user", "content": prompt}]}
            await timed_stream(session, direct, body)  # load the model, cache the prompt
            added, ratio = [], []
            for _ in range(args.rounds):
                d = await timed_stream(session, direct, body)
                v = await timed_stream(session, via, body)
                added.append((v["ttft"] - d["ttft"]) * 1000)
                ratio.append(v["tok_s"] / d["tok_s"])
            result["added_ttft_ms"] = {"p50": pct(added, 50), "p99": pct(added, 99)}
            result["tok_s_ratio"] = {"min": min(ratio), "median": statistics.median(ratio),
                                     "max": max(ratio)}
            print("added TTFT ms", result["added_ttft_ms"], "tok/s ratio", result["tok_s_ratio"])

            link = await Relay("127.0.0.1", bport, rtt=0.040).start()
            wurl = await start_orchestrator(session, procs, work / "wan.toml", link.url,
                                            MODEL, 4, wport)
            fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                          timeout=aiohttp.ClientTimeout(total=900))
            wan_added, wan_pooled = [], []
            for i in range(args.rounds + 1):
                ttft = {}
                for name, client, url in (("direct", fresh, link.url), ("via", fresh, wurl),
                                          ("pooled", session, link.url)):
                    req = {**body, "messages": [{"role": "user", "content":
                                                 f"({name} {time.time_ns()}) {prompt}"}]}
                    ttft[name] = (await timed_stream(client, url, req))["ttft"]
                if i:  # the first round warms the pooled connections
                    wan_added.append((ttft["via"] - ttft["direct"]) * 1000)
                    wan_pooled.append((ttft["via"] - ttft["pooled"]) * 1000)
            await fresh.close()
            await link.close()
            print("relay connections", link.connections, "for", 3 * (args.rounds + 1),
                  "requests", flush=True)
            # One per direct request, plus the orchestrator's and the pooled client's.
            result["wan_relay_connections"] = link.connections
            result["wan_added_ttft_ms"] = {"rtt_ms": 40, "p50": pct(wan_added, 50),
                                           "p99": pct(wan_added, 99),
                                           "vs_pooled_p50": pct(wan_pooled, 50),
                                           "vs_pooled_p99": pct(wan_pooled, 99)}
            print("added TTFT over 40 ms RTT, ms", result["wan_added_ttft_ms"], flush=True)

            seed = (CORPUS / "seed_async_refactor.md").read_text()
            raw, piped, reduction = [], [], None
            for i in range(args.e2e_rounds):
                for context, sink in (("raw", raw), ("auto", piped)):
                    text = f"(session {time.time_ns()} {i})\n" + seed  # no KV reuse
                    req = {"max_tokens": 8, "temperature": 0, "cerebrum": {"context": context},
                           "messages": [{"role": "user", "content": text}]}
                    sink.append((await timed_stream(session, via, req))["ttft"])
                    print(f"e2e {context}: ttft {sink[-1] * 1000:.0f} ms", flush=True)
            async with session.post(via + "/v1/context/preview", json={
                    "messages": [{"role": "user", "content": seed}]}) as resp:
                reduction = (await resp.json())["cerebrum"]["reduction"]
            result["e2e_seed"] = {"raw_ttft_s": statistics.median(raw),
                                  "pipeline_ttft_s": statistics.median(piped),
                                  "ratio": statistics.median(piped) / statistics.median(raw),
                                  "reduction": reduction}

            runner, fake = await fake_upstream(50)
            lurl = await start_orchestrator(session, procs, work / "load.toml", fake, "m", 64,
                                            lport)
            load = procs[-1]
            peak = rss_mb(load.pid)
            tasks = [asyncio.create_task(timed_stream(session, lurl, {
                "messages": [{"role": "user", "content": f"client {i}"}]})) for i in range(50)]
            while not all(t.done() for t in tasks):
                peak = max(peak, rss_mb(load.pid))
                await asyncio.sleep(0.05)
            ok = sum(1 for t in tasks if t.exception() is None)
            result["rss_50_clients_mb"] = peak
            result["rss_50_clients_ok"] = ok
            await runner.cleanup()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    result["corpus"] = corpus_report()  # median ms of 31 runs per case
    result["pipeline"] = pipeline_times(result["corpus"])
    write_results(args.out, "orchestrator", result, markdown(result))
    return 0


def markdown(r: dict) -> str:
    p, e = r["pipeline"], r["e2e_seed"]
    lines = [f"Orchestrator, {r['date']}, same machine as above; model {r['model']}.", "",
             "| measure | result | goal |", "|---|---|---|",
             f"| added TTFT through the orchestrator, p50 / p99 | "
             f"{r['added_ttft_ms']['p50']:.1f} / {r['added_ttft_ms']['p99']:.1f} ms "
             f"| ≤ 3 / ≤ 10 ms |",
             f"| added TTFT over a {r['wan_added_ttft_ms']['rtt_ms']} ms RTT link (relay), "
             f"fresh prompt, p50 / p99: vs a direct client (new connection) | "
             f"{r['wan_added_ttft_ms']['p50']:.1f} / {r['wan_added_ttft_ms']['p99']:.1f} ms "
             f"| ≤ 5 ms p50 |",
             f"| … vs a direct client keeping its connection alive | "
             f"{r['wan_added_ttft_ms']['vs_pooled_p50']:.1f} / "
             f"{r['wan_added_ttft_ms']['vs_pooled_p99']:.1f} ms | |",
             f"| tok/s through ÷ direct (min / median / max) | "
             f"{r['tok_s_ratio']['min']:.3f} / {r['tok_s_ratio']['median']:.3f} / "
             f"{r['tok_s_ratio']['max']:.3f} | ≥ 0.98 |",
             f"| pipeline time, seed case ({p['seed_chars']} chars) | {p['seed_ms']:.2f} ms "
             f"| ≤ 5 ms |",
             f"| pipeline time, largest corpus prompt ({p['largest']}, {p['largest_chars']} "
             f"chars) | {p['largest_ms']:.2f} ms | ≤ 5 ms |",
             f"| seed case end-to-end TTFT, pipeline ÷ raw | {e['ratio']:.2f} "
             f"({e['pipeline_ttft_s']:.2f} s vs {e['raw_ttft_s']:.2f} s; reduction "
             f"{e['reduction']:.0%}) | ≤ 0.45 |",
             f"| orchestrator RSS idle / under 50 concurrent streams | "
             f"{r['rss_idle_mb']:.0f} / {r['rss_50_clients_mb']:.0f} MB "
             f"({r['rss_50_clients_ok']}/50 ok) | ≤ 80 MB |"]
    if r.get("corpus"):
        lines += ["", "| corpus case | language | reduction | instruction kept | target recall |",
                  "|---|---|---|---|---|"]
        for c in r["corpus"]:
            lines.append(f"| {c.get('case')} | {c.get('language')} | "
                         f"{c.get('reduction', 0):.0%} | {c.get('instruction_kept')} | "
                         f"{c.get('recall', 0):.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
