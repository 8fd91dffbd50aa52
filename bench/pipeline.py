"""Context pipeline benchmark: per corpus case, chars in and out, reduction, instruction kept,
target recall and pipeline time (median of several runs); per-stage times of the seed and the
largest case; the pipeline's import cost. Figures, not a pass/fail test.

    .venv/bin/python bench/pipeline.py [--runs 31] [--json out.json]
    .venv/bin/python bench/pipeline.py --tree-sitter /path/to/venv-with-tree-sitter/bin/python
    .venv/bin/python bench/pipeline.py --calibrate ~/.cache/cerebrum/models/*.gguf

--tree-sitter measures, in that interpreter, what the tree-sitter grammars would cost (import,
RSS, parse) next to our splitter; --calibrate counts the corpus with real vocabularies and
fits the token estimate's coefficients (needs llama-cpp-python and numpy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pi_appliance.pipeline import PipelineConfig, estimate_tokens, prepare  # noqa: E402
from pi_appliance.pipeline.chunk import chunk  # noqa: E402
from pi_appliance.pipeline.language import canonical  # noqa: E402
from pi_appliance.pipeline.segment import segment  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"
SEED = "seed_async_refactor"


def cases() -> list[dict[str, Any]]:
    """The corpus cases (tests/data/corpus/cases.toml), each with its text."""
    out = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
    for case in out:
        case["text"] = (CORPUS / case["file"]).read_text()
    return out


def median_ms(fn: Any, runs: int) -> float:
    """Median wall time of `fn()` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def recall(case: dict[str, Any], out: Any) -> float:
    """Share of the case's target names sent whole (1.0 when the raw prompt went)."""
    names = case.get("kept", [])
    if out.mode == "raw" or not names:
        return 1.0
    sent = out.messages[0]["content"]
    hits = 0
    for name in names:
        pieces = [c.text for i, seg in enumerate(segment(case["text"])) if seg.kind == "code"
                  for c in chunk(seg.text, canonical(seg.tag) or out.language, PipelineConfig(),
                                 block=i) if c.name == name]
        hits += bool(pieces) and name in out.kept and all(p in sent for p in pieces)
    return hits / len(names)


def corpus_report(runs: int = 31, cfg: PipelineConfig | None = None) -> list[dict[str, Any]]:
    """One row per corpus case: sizes, reduction, instruction kept, recall, median ms."""
    cfg = cfg or PipelineConfig()
    rows = []
    for case in cases():
        text = case["text"]
        out = prepare(text, cfg)
        sent = out.messages[0]["content"]
        rows.append({
            "case": case["name"], "language": out.language or "-", "mode": out.mode,
            "chars_in": len(text), "chars_out": out.sent_chars,
            "tokens_in": out.original_tokens, "tokens_out": out.sent_tokens,
            "reduction": round(out.reduction, 3),
            "instruction_kept": "instruction" not in case or case["instruction"] in sent,
            "recall": recall(case, out),
            "ms": round(median_ms(lambda text=text: prepare(text, cfg), runs), 3),
            "reason": out.reason,
        })
    return rows


def stage_report(text: str, runs: int = 31) -> dict[str, float]:
    """Median ms of each stage alone on one prompt (each stage fed the previous one's output)."""
    from pi_appliance.pipeline.assemble import assemble
    from pi_appliance.pipeline.dedup import dedup
    from pi_appliance.pipeline.extract import extract
    from pi_appliance.pipeline.language import detect_language
    from pi_appliance.pipeline.rank import protected, rank, resolve_named, select

    cfg = PipelineConfig()
    language = detect_language(text)[0]
    segments = segment(text)
    instruction = extract(segments)
    assert instruction is not None

    def chunk_all() -> list[Any]:
        out: list[Any] = []
        for i, seg in enumerate(segments):
            if seg.kind == "code":
                lang = canonical(seg.tag) or language
                out += chunk(seg.text, lang, cfg, block=i, first_index=len(out))
        return out

    chunks = chunk_all()
    named = resolve_named(instruction, chunks)
    deduped = dedup(chunks, cfg, protect=protected(chunks, instruction, named))
    scored = rank(deduped.chunks, instruction, named, cfg)
    kept = {i for pick in select(scored, named, cfg) for i in pick}
    stages = {
        "language": lambda: detect_language(text),
        "count tokens": lambda: estimate_tokens(text),
        "segment": lambda: segment(text),
        "extract": lambda: extract(segments),
        "chunk": chunk_all,
        "dedup": lambda: dedup(chunks, cfg, protect=protected(chunks, instruction, named)),
        "rank+select": lambda: select(rank(deduped.chunks, instruction, named, cfg), named, cfg),
        "assemble": lambda: assemble(segments, instruction, chunks, kept, deduped.duplicate_of),
        "prepare (all)": lambda: prepare(text, cfg),
    }
    return {name: round(median_ms(fn, runs), 3) for name, fn in stages.items()}


IMPORT_COST = """
import time, sys
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
r0, t0 = rss(), time.perf_counter()
import {module}
print((time.perf_counter() - t0) * 1000, (rss() - r0) / 1024)
"""


def import_cost(python: str, module: str, cwd: Path = ROOT) -> tuple[float, float]:
    """(ms, MiB of RSS) to import `module` in a fresh `python` (median of 5 starts)."""
    runs = [subprocess.run([python, "-c", IMPORT_COST.format(module=module)], cwd=cwd,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(5)]
    return (statistics.median(float(r[0]) for r in runs),
            statistics.median(float(r[1]) for r in runs))


TREE_SITTER = """
import json, statistics, sys, time
import tree_sitter as ts, tree_sitter_c, tree_sitter_cpp, tree_sitter_javascript
import tree_sitter_rust, tree_sitter_typescript
grammars = {'c': tree_sitter_c.language, 'cpp': tree_sitter_cpp.language,
            'javascript': tree_sitter_javascript.language, 'rust': tree_sitter_rust.language,
            'typescript': tree_sitter_typescript.language_typescript}
out = {}
for lang, code in json.load(sys.stdin):
    parser = ts.Parser(ts.Language(grammars[lang]()))
    src = code.encode()
    def work():
        # The least tree-sitter chunking would do: parse, walk top level and one level down.
        root = parser.parse(src).root_node
        return [(n.type, n.start_point, n.end_point) for top in root.children
                for n in (top, *top.children)]
    work()
    times = []
    for _ in range(31):
        t = time.perf_counter(); work(); times.append((time.perf_counter() - t) * 1000)
    out.setdefault(lang, []).append((len(src), statistics.median(times)))
print(json.dumps(out))
"""


def tree_sitter_report(python: str) -> dict[str, Any]:
    """tree-sitter's import, RSS and parse cost (in `python`) next to our splitter's."""
    ms, mib = import_cost(python, "tree_sitter, tree_sitter_c, tree_sitter_cpp, "
                          "tree_sitter_javascript, tree_sitter_rust, tree_sitter_typescript",
                          cwd=Path("/"))
    blocks = [(canonical(seg.tag) or "", seg.text) for case in cases()
              for seg in segment(case["text"])
              if seg.kind == "code" and canonical(seg.tag) in ("c", "cpp", "javascript", "rust",
                                                                "typescript")]
    done = subprocess.run([python, "-c", TREE_SITTER], input=json.dumps(blocks),
                          capture_output=True, text=True, check=True)
    theirs = json.loads(done.stdout)
    from pi_appliance.pipeline.chunk_braces import brace_spans
    from pi_appliance.pipeline.scan import scan

    cfg = PipelineConfig(chunk_threshold=0)
    splitter: dict[str, float] = {}  # the same work as theirs: find the item boundaries
    whole: dict[str, float] = {}  # all of chunk(): boundaries, names, identifiers, chunks
    for lang, code in blocks:
        splitter[lang] = splitter.get(lang, 0.0) + median_ms(
            lambda lang=lang, code=code: brace_spans(scan(code, lang), lang, cfg), 31)
        whole[lang] = whole.get(lang, 0.0) + median_ms(
            lambda lang=lang, code=code: chunk(code, lang, cfg), 31)
    return {"import_ms": round(ms, 1), "import_rss_mib": round(mib, 1),
            "parse": {lang: {"bytes": sum(b for b, _ in rows),
                             "tree_sitter_ms": round(sum(t for _, t in rows), 3),
                             "our_splitter_ms": round(splitter[lang], 3),
                             "our_chunk_ms": round(whole[lang], 3)}
                      for lang, rows in theirs.items()}}


def calibrate(vocabularies: list[str]) -> None:
    """Count calibration texts with real vocabularies; print the best TokenEstimate for each,
    and for all at once: the smallest median estimate/exact with 98 % not underestimated."""
    import llama_cpp
    import numpy as np

    texts = [c["text"] for c in cases()]
    texts += [s.text for t in list(texts) for s in segment(t) if len(s.text) > 200]
    texts += [p.read_text() for p in sorted((ROOT / "vps_appliance").glob("*.py"))]
    feats = np.array([[len(t) - t.count(" ") - t.count("\t") - t.count("\n"),
                       t.count(" ") + t.count("\t"), t.count("\n")] for t in texts], float)
    grid = np.array([(a, b, c) for a in np.linspace(0.1, 0.6, 51)
                     for b in np.linspace(0, 0.6, 31) for c in np.linspace(0, 10, 101)])
    estimates = feats @ grid.T + 1  # texts x candidates
    exact = {}
    for path in vocabularies:
        vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        exact[Path(path).name] = np.array(
            [len(vocab.tokenize(t.encode(), add_bos=False)) for t in texts], float)
    chars = np.array([len(t) for t in texts], float)
    print(f"{len(texts)} texts")
    for name, counts in [*exact.items(), ("all of them", None)]:
        ys = [counts] if counts is not None else list(exact.values())
        ratio = np.concatenate([estimates / y[:, None] for y in ys])
        ok = np.percentile(ratio, 2, axis=0) >= 1.0
        median = np.where(ok, np.median(ratio, axis=0), np.inf)
        best = int(np.argmin(median))
        a, b, c = grid[best]
        span = ", ".join(f"{(chars / y).min():.2f}-{(chars / y).max():.2f}" for y in ys[:1])
        print(f"{name}: {span + ' chars/token; ' if counts is not None else ''}"
              f"TokenEstimate({a:.2f}, {b:.2f}, {c:.1f}): median estimate/exact "
              f"{median[best]:.2f}, worst {ratio[:, best].min():.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tree-sitter", metavar="PYTHON", help="an interpreter with the grammars")
    parser.add_argument("--calibrate", nargs="+", metavar="VOCAB", help="GGUF files to count with")
    args = parser.parse_args(argv)
    if args.calibrate:
        calibrate(args.calibrate)
        return 0
    rows = corpus_report(args.runs)
    print(f"{'case':24} {'lang':10} {'mode':8} {'chars':>11} {'red.':>5} {'instr':>5} "
          f"{'recall':>6} {'ms':>6}")
    for r in rows:
        print(f"{r['case']:24} {r['language']:10} {r['mode']:8} "
              f"{r['chars_in']:>5}>{r['chars_out']:<5} {r['reduction']:>5.0%} "
              f"{'yes' if r['instruction_kept'] else 'NO':>5} {r['recall']:>6.0%} {r['ms']:>6.2f}")
    largest = max(cases(), key=lambda c: len(c["text"]))
    seed = next(c for c in cases() if c["name"] == SEED)
    report: dict[str, Any] = {"cases": rows, "stages": {}}
    for case in {SEED: seed, largest["name"]: largest}.values():
        stages = stage_report(case["text"], args.runs)
        report["stages"][case["name"]] = stages
        print(f"\n{case['name']} ({len(case['text'])} chars), median ms per stage:")
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    ms, mib = import_cost(sys.executable, "pi_appliance.pipeline")
    report["import"] = {"ms": round(ms, 1), "rss_mib": round(mib, 1)}
    print(f"\nimport pi_appliance.pipeline: {ms:.1f} ms, +{mib:.1f} MiB RSS")
    if args.tree_sitter:
        ts = tree_sitter_report(args.tree_sitter)
        report["tree_sitter"] = ts
        print(f"tree-sitter + 5 grammars: import {ts['import_ms']} ms, "
              f"+{ts['import_rss_mib']} MiB RSS")
        for lang, p in ts["parse"].items():
            print(f"  {lang:10} {p['bytes']:>6} B: tree-sitter parse+walk {p['tree_sitter_ms']:.3f}"
                  f" ms; our splitter (scan+split) {p['our_splitter_ms']:.3f} ms, "
                  f"our whole chunk() {p['our_chunk_ms']:.3f} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
