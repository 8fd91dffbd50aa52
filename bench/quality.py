"""Answer quality raw vs through the context pipeline (figures, not pass/fail), in one run:

Each task (bench/quality/*.toml) asks for an edit of one function in a few KB of real-looking
code: Python, JavaScript, C or C++, with tests. Each goes through the orchestrator twice,
streamed, greedy: raw (`"cerebrum": {"context": "raw"}`) and reduced by the pipeline (the
default). The edited function is taken from the answer's code blocks and put in place of the
original one in the task's code (with any imports the answer adds), and the tests run on the
result in a temp dir with a timeout: python, node, gcc or g++. Per task: pass or why not, raw
and pipeline; prompt tokens (the backend's usage); time to [DONE]. Per model: the pass rates
and the median raw/pipeline time ratio on the large cases.

    .venv/bin/python bench/quality.py     # the 0.5B, and the 1.5B if installed
    .venv/bin/python bench/quality.py --models qwen2.5-coder-0.5b-instruct path/to/other.gguf
    .venv/bin/python bench/quality.py --render FIRST/runs.jsonl RERUN/runs.jsonl
Writes bench/results/quality.json and quality.md; each run is also logged as it ends to the
work dir's runs.jsonl, from which --render builds them again (a run cut short, or reruns of
some tasks with --tasks/--contexts after it: the last line for a task wins).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backend import machine  # noqa: E402
from bench.fim import cpu_ticks  # noqa: E402
from bench.harness import wait_healthy, write_results  # noqa: E402
from bench.orchestrator import free_port, start_orchestrator  # noqa: E402
from cerebrum import sse  # noqa: E402
from pi_appliance.pipeline.scan import mask  # noqa: E402
from vps_appliance import models  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct"
LARGER = "qwen2.5-coder-1.5b-instruct"  # also run by default when `make models-1.5b` ran
TASKS = ROOT / "bench" / "quality"
N_CTX = 4096  # the route's context in bench/orchestrator.py's config, and the backend's
MAX_TOKENS = 1024
LANGUAGES = ("python", "javascript", "c", "cpp")
EXTENSION = {"python": "py", "javascript": "js", "c": "c", "cpp": "cpp"}
CONTEXTS = ("raw", "pipeline")
BUSY = 0.15  # a run during which other processes used more of the CPUs is marked busy
RUN_TIMEOUT, BUILD_TIMEOUT = 10.0, 60.0
# A shared 2-core machine can stall a stream for minutes: no upstream timeout may end a run;
# and the pipeline gets time to finish, since what is measured is its output, not the raw
# fallback the orchestrator sends when it runs past its deadline.
ORCHESTRATOR_EXTRA = ("[timeouts]\nfirst_token = 900\nbetween_tokens = 600\n"
                      "[pipeline]\ntimeout_ms = 10000\n")


# --- tasks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """One edit: the user's instruction, the code it is about, a correct answer and tests."""

    name: str
    language: str  # one of LANGUAGES
    target: str  # the function the edit is about ("Class.method" for a method)
    answer_name: str  # its name after the edit (the same unless it is renamed)
    instruction: str
    position: str  # the instruction "before" or "after" the code
    code: str
    reference: str  # the edited function, as a good answer's code block would show it
    tests: str  # appended to the edited code; exit status 0 means pass

    @property
    def prompt(self) -> str:
        """The user's message: the instruction and the code in a fence."""
        fence = f"```{self.language}\n{self.code}```"
        if self.position == "before":
            return f"{self.instruction}\n\n{fence}\n"
        return f"{fence}\n\n{self.instruction}\n"


def load_task(path: Path) -> Task:
    """A task from its TOML file; ValueError naming the file and key if it is malformed."""
    data = tomllib.loads(path.read_text())
    required = ("language", "target", "instruction", "code", "reference", "tests")
    missing = [k for k in required if not isinstance(data.get(k), str)]
    if missing:
        raise ValueError(f"{path.name}: missing or not a string: {', '.join(missing)}")
    if data["language"] not in LANGUAGES:
        raise ValueError(f"{path.name}: language must be one of {LANGUAGES}")
    position = data.get("position", "before")
    if position not in ("before", "after"):
        raise ValueError(f"{path.name}: position must be 'before' or 'after'")
    return Task(path.stem, data["language"], data["target"],
                data.get("answer_name", data["target"]), " ".join(data["instruction"].split()),
                position, data["code"], data["reference"], data["tests"])


def load_tasks(folder: Path = TASKS) -> list[Task]:
    """Every task in `folder`, by name."""
    return [load_task(p) for p in sorted(folder.glob("*.toml"))]


# --- the answer's code ----------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[^\n`]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)


def code_blocks(answer: str) -> list[str]:
    """The fenced code blocks of a markdown answer (an unclosed last one runs to the end of
    the answer, as when max_tokens cut it); the whole answer if it has no fence."""
    blocks = [m.group(2) for m in _FENCE.finditer(answer)]
    return blocks or [answer]


def find_definition(code: str, name: str, language: str) -> tuple[int, int] | None:
    """Where the definition of function `name` ("Class.method" for a method) is in `code`:
    (start, end) offsets of whole lines, decorators and a return type's own line included."""
    if language == "python":
        return _python_definition(code, name)
    return _brace_definition(code, name, language)


def _line_offsets(code: str) -> list[int]:
    offsets = [0]
    for line in code.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _python_definition(code: str, name: str) -> tuple[int, int] | None:
    owner, _, simple = name.rpartition(".")
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return _python_definition_by_indent(code, simple)
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    candidates = []
    if owner:
        candidates += [f for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                       and c.name == owner for f in c.body
                       if isinstance(f, functions) and f.name == simple]
    candidates += [f for f in tree.body if isinstance(f, functions) and f.name == simple]
    candidates += [f for f in ast.walk(tree) if isinstance(f, functions) and f.name == simple]
    if not candidates:
        return None
    node = candidates[0]
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    offsets = _line_offsets(code)
    return offsets[first - 1], offsets[min(node.end_lineno or first, len(offsets) - 1)]


def _python_definition_by_indent(code: str, name: str) -> tuple[int, int] | None:
    """The same for code that does not parse (a method shown alone, prose in the block):
    the `def` line, then every line indented deeper (or blank, or inside its signature)."""
    lines = code.splitlines(keepends=True)
    masked = mask(code, "python").splitlines(keepends=True)
    head = re.compile(rf"([ \t]*)(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(")
    for i, line in enumerate(masked):
        m = head.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        start = i
        while start > 0 and masked[start - 1].strip().startswith("@"):
            start -= 1
        depth, in_signature, end = 0, True, i + 1
        for j in range(i, len(lines)):
            text = masked[j]
            if j > i and not in_signature and text.strip() and \
                    len(text) - len(text.lstrip()) <= indent:
                break
            depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
            if in_signature and depth <= 0 and text.rstrip().endswith(":"):
                in_signature = False
            if text.strip():
                end = j + 1
        offsets = _line_offsets(code)
        return offsets[start], offsets[end]
    return None


_JS_METHOD_LEAD = re.compile(r"[ \t]*(?:(?:static|async|get|set)[ \t]+)*\*?[ \t]*")
_JS_ASSIGNED = re.compile(r"\s*[:=]\s*(?:async\s+)?(?:function\b\s*\*?\s*[\w$]*\s*)?"
                          r"(?=\(|[\w$]+\s*=>)")
_CPP_TRAILER = re.compile(r"(?:\s|const\b|noexcept\b|override\b|final\b|->\s*[\w:<>,&* ]+)*")


def _brace_definition(code: str, name: str, language: str) -> tuple[int, int] | None:
    masked = mask(code, language)
    simple = re.split(r"::|\.", name)[-1]
    for m in re.finditer(rf"(?<![\w$.>]){re.escape(simple)}(?![\w$])", masked):
        line_start = masked.rfind("\n", 0, m.start()) + 1
        body = _body_start(masked, m, line_start, language)
        if body is None:
            continue
        end = _matching(masked, body, "{", "}")
        if end is None:
            return None  # cut off: no whole definition
        end = masked.find("\n", end)
        end = len(code) if end < 0 else end + 1
        start = line_start
        if language in ("c", "cpp") and not masked[line_start:m.start()].strip():
            # A return type or template header on the line(s) before the name.
            while start > 0:
                prev = masked.rfind("\n", 0, start - 1) + 1
                text = masked[prev:start].strip()
                if not text or text[-1] in ";{}" or text.startswith("#"):
                    break
                start = prev
        return start, end
    return None


def _body_start(masked: str, m: re.Match[str], line_start: int, language: str) -> int | None:
    """The offset of the `{` that opens the body when `m` names a function being defined."""
    before = masked[line_start:m.start()]
    if language == "javascript":
        if re.search(r"\bfunction\s*\*?\s*$", before) or _JS_METHOD_LEAD.fullmatch(before):
            pos = _skip_space(masked, m.end())  # a declaration or a method: `(` follows
            if not masked.startswith("(", pos):
                return None
        elif assigned := _JS_ASSIGNED.match(masked, m.end()):
            pos = _skip_space(masked, assigned.end())  # `= function (`, `= (…) =>`, `= x =>`
        else:
            return None
        if masked.startswith("(", pos):
            close = _matching(masked, pos, "(", ")")
            if close is None:
                return None
            pos = _skip_space(masked, close + 1)
        else:
            pos = _skip_space(masked, re.compile(r"[\w$]*").match(masked, pos).end())
        if masked.startswith("=>", pos):
            pos = _skip_space(masked, pos + 2)
        return pos if masked.startswith("{", pos) else None
    pos = _skip_space(masked, m.end())
    if not masked.startswith("(", pos) or re.search(r"(?:=|\breturn)\s*$", before):
        return None
    close = _matching(masked, pos, "(", ")")
    if close is None:
        return None
    pos = _CPP_TRAILER.match(masked, close + 1).end()  # type: ignore[union-attr]
    return pos if masked.startswith("{", pos) else None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _matching(text: str, pos: int, opener: str, closer: str) -> int | None:
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    return None


def definition_text(code: str, name: str, language: str) -> str | None:
    """The definition of `name` in an answer's code block, dedented; None if there is none."""
    for attempt in (code, textwrap.dedent(code)):
        span = find_definition(attempt, name, language)
        if span is not None:
            return textwrap.dedent(attempt[span[0]:span[1]])
    return None


_IMPORT = {
    "python": re.compile(r"^(?:import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import[ \t]).*$", re.M),
    "javascript": re.compile(r"^[ \t]*(?:const|let|var)\b[^=\n]*=[ \t]*require\(.*$", re.M),
    "c": re.compile(r"^[ \t]*#[ \t]*include\b.*$", re.M),
    "cpp": re.compile(r"^[ \t]*#[ \t]*include\b.*$", re.M),
}


def edited_program(task: Task, answer: str) -> str | None:
    """The task's code with its target function replaced by the answer's version, and the
    imports the answer adds on top; None if no code block of the answer defines it."""
    found = None
    for block in code_blocks(answer):
        text = definition_text(block, task.answer_name, task.language)
        if text is not None:
            found = block, text  # the last block that defines it: the final version
    if found is None:
        return None
    block, text = found
    span = find_definition(task.code, task.target, task.language)
    assert span is not None, f"{task.name}: {task.target} is not in the task's code"
    start, end = span
    original = task.code[start:end]
    indent = original[:len(original) - len(original.lstrip())].rsplit("\n", 1)[-1]
    text = textwrap.indent(text.rstrip("\n") + "\n", indent)
    code = task.code[:start] + text + task.code[end:]
    present = set(code.splitlines()) | set(task.tests.splitlines())
    imports = [line.strip() for line in _IMPORT[task.language].findall(block)
               if line.strip() not in present and line.count("(") == line.count(")")]
    if task.language == "python" and "." not in task.target:
        code = _with_helpers(code, task, block)
    return "".join(f"{line}\n" for line in dict.fromkeys(imports)) + code


def _with_helpers(code: str, task: Task, block: str) -> str:
    """Top-level functions the answer added next to the target (helpers it calls), put
    before the target."""
    try:
        answer, original = ast.parse(textwrap.dedent(block)), ast.parse(task.code)
    except SyntaxError:
        return code
    known = {n.name for n in original.body if hasattr(n, "name")} | {task.answer_name}
    lines = textwrap.dedent(block).splitlines(keepends=True)
    helpers = ["".join(lines[min([n.lineno, *(d.lineno for d in n.decorator_list)]) - 1:
                             n.end_lineno]) + "\n\n"
               for n in answer.body
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
               and n.name not in known]
    if not helpers:
        return code
    span = find_definition(code, task.answer_name, "python")
    if span is None:
        return code
    return code[:span[0]] + "".join(helpers) + code[span[0]:]


# --- the check ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """How an answer fared: "pass", "no code" (no definition of the function in it),
    "build error", "failed" (the tests or the program failed) or "timeout"."""

    outcome: str
    detail: str = ""  # the end of the compiler's or the program's output

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


def check_answer(task: Task, answer: str, timeout: float = RUN_TIMEOUT) -> Check:
    """Extract the edited function from `answer`, put it in the code, run the tests."""
    program = edited_program(task, answer)
    if program is None:
        return Check("no code", f"no definition of {task.answer_name} in the answer")
    return run_program(task.language, program.rstrip("\n") + "\n\n" + task.tests, timeout)


def run_program(language: str, source: str, timeout: float = RUN_TIMEOUT) -> Check:
    """Build (C, C++) and run `source` in a fresh temp dir, with a timeout and limits."""
    with tempfile.TemporaryDirectory(prefix="cerebrum-quality-") as tmp:
        path = Path(tmp) / f"main.{EXTENSION[language]}"
        path.write_text(source)
        if language in ("c", "cpp"):
            build = (["gcc", "-std=gnu11"] if language == "c" else ["g++", "-std=gnu++17"])
            built = _sandboxed([*build, "-O0", "-w", "-o", "main", path.name, "-lm"], tmp,
                               BUILD_TIMEOUT)
            if built is None:
                return Check("timeout", "building")
            if built.returncode:  # the first errors say most, the notes after them less
                errors = [line for line in built.stderr.splitlines() if "error" in line]
                return Check("build error", "\n".join(errors[:6]) or _tail(built.stderr))
            argv = ["./main"]
        elif language == "python":
            argv = [sys.executable, "-I", path.name]
        else:
            argv = ["node", path.name]
        ran = _sandboxed(argv, tmp, timeout)
        if ran is None:
            return Check("timeout", f"over {timeout:.0f} s")
        if ran.returncode:
            return Check("failed", _tail(ran.stderr or ran.stdout))
        return Check("pass")


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _gist(detail: str) -> str:
    """The line of a failure's output that says most: the error, else the last line."""
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    hits = [line for line in lines if re.search(r"Error\b|error:|failed:", line)]
    return (hits or lines or [""])[0]


def _limits(cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))


def _sandboxed(argv: list[str], cwd: str, timeout: float
               ) -> subprocess.CompletedProcess[str] | None:
    """Run in `cwd` with a bare environment, CPU and file-size limits, its own process
    group (killed whole on timeout); None on timeout."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True,
                            preexec_fn=lambda: _limits(int(timeout) + 1))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# --- asking the model -----------------------------------------------------------------------

async def ask(session: aiohttp.ClientSession, url: str, task: Task, context: str,
              max_tokens: int) -> dict:
    """One streamed chat completion through the orchestrator: the answer, time to [DONE],
    the backend's usage and the orchestrator's `cerebrum` stats."""
    body = {"max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": task.prompt}]}
    if context == "raw":
        body["cerebrum"] = {"context": "raw"}
    started = time.perf_counter()
    first = None
    parts: list[str] = []
    usage: dict = {}
    stats: dict = {}
    finish = error = None
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        if resp.status != 200:
            return {"error": f"HTTP {resp.status}: {(await resp.text())[:300]}"}
        async for event in sse.events(resp.content):
            if "error" in event:
                error = str(event["error"])[:300]
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    parts.append(text)
                finish = choice.get("finish_reason") or finish
            usage = event.get("usage") or usage
            stats = event.get("cerebrum") or stats
        done = time.perf_counter()  # events() returns at [DONE], else raises
    end = done
    return {"answer": "".join(parts), "time_s": round(end - started, 2),
            "ttft_s": round((first or end) - started, 2),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"), "finish_reason": finish,
            "mode": stats.get("context"), "context_reason": stats.get("context_reason"),
            "reduction": stats.get("reduction"), "prediction_chars": stats.get("prediction_chars"),
            "drafted_tokens": stats.get("drafted_tokens"),
            "accepted_tokens": stats.get("accepted_tokens"), "error": error}


def resolve_model(spec: str) -> tuple[str, Path]:
    """A packaged model's name, or a path to a GGUF file: (name, path)."""
    path = Path(spec)
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path
    return spec, models.resolve(spec, models.default_cache_dir())


async def run_model(spec: str, tasks: list[Task], work: Path, max_tokens: int,
                    contexts: tuple[str, ...] = CONTEXTS) -> dict:
    """Start a backend with the model and an orchestrator in front; ask every task raw and
    through the pipeline, staggered so that no prompt follows its own other form (which
    would reuse its KV prefix); check the answers."""
    name, path = resolve_model(spec)
    bport, oport = free_port(), free_port()
    config = work / f"backend-{bport}.toml"
    # No prompt-cache snapshots: a task's second form must not restore the first's KV.
    config.write_text(f'[[models]]\nname = "{name}"\npath = "{path}"\nn_ctx = {N_CTX}\n'
                      f"prompt_cache_bytes = 0\n")
    procs = [subprocess.Popen([sys.executable, "-m", "vps_appliance", "--config", str(config),
                               "--port", str(bport)], cwd=ROOT, stderr=subprocess.DEVNULL)]
    runs: dict[tuple[str, str], dict] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1800)) as session:
            backend = f"http://127.0.0.1:{bport}"
            await wait_healthy(session, backend, procs[0])
            url = await start_orchestrator(session, procs, work / f"orch-{oport}.toml",
                                           backend, name, 1, oport, ORCHESTRATOR_EXTRA)
            async with session.post(url + "/v1/chat/completions", json={
                    "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}) as r:
                await r.read()  # load the model, build the graphs
            order = [(i, "raw") if k == 0 else (i - 1, "pipeline")
                     for i in range(len(tasks) + 1) for k in (0, 1)
                     if (k == 0 and i < len(tasks)) or (k == 1 and i > 0)]
            roots = {os.getpid(), *(p.pid for p in procs)}
            for i, context in [(i, c) for i, c in order if c in contexts]:
                task = tasks[i]
                busy0, own0, t0 = *cpu_ticks(roots), time.monotonic()
                run = await ask(session, url, task, context, max_tokens)
                busy1, own1, t1 = *cpu_ticks(roots), time.monotonic()
                # The share of the CPUs other processes used meanwhile (as bench/fim.py).
                run["others_cpu"] = round(max(0.0, ((busy1 - busy0) - (own1 - own0)) / (
                    os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1) * (t1 - t0))), 2)
                check = (Check("error", run["error"]) if "answer" not in run
                         else check_answer(task, run["answer"]))
                row = {**run, "passed": check.passed, "outcome": check.outcome,
                       "detail": check.detail}
                runs[task.name, context] = row
                with open(work / "runs.jsonl", "a") as log:  # kept if the run is cut short
                    log.write(json.dumps({"model": name, "task": task.name,
                                          "context": context, **row}) + "\n")
                why = [] if check.passed else [_gist(check.detail)]
                print(f"{task.name:28} {context:8} {check.outcome:11} "
                      f"{run.get('time_s', 0):6.1f} s, prompt {run.get('prompt_tokens')}, "
                      f"completion {run.get('completion_tokens')}, sent {run.get('mode')}, "
                      f"accepted {run.get('accepted_tokens')}"
                      f"{''.join(f'; {w[:100]}' for w in why)}", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    return {"model": name, "file": path.name, "tasks": table_rows(tasks, runs)}


def table_rows(tasks: list[Task], runs: dict[tuple[str, str], dict]) -> list[dict]:
    """One row per task that ran: its language and each context's run."""
    return [{"task": t.name, "language": t.language,
             **{c: runs[t.name, c] for c in CONTEXTS if (t.name, c) in runs}}
            for t in tasks if any((t.name, c) in runs for c in CONTEXTS)]


def from_log(paths: list[Path], tasks: list[Task]) -> list[dict]:
    """The models' results again from runs' runs.jsonl files (a run cut short, reruns of
    some tasks after it); the last line for a (model, task, context) wins."""
    by_model: dict[str, dict[tuple[str, str], dict]] = {}
    for line in (line for path in paths for line in path.read_text().splitlines()):
        row = json.loads(line)
        model, key = row.pop("model"), (row.pop("task"), row.pop("context"))
        by_model.setdefault(model, {})[key] = row
    return [{"model": model, "file": "-", "tasks": table_rows(tasks, runs)}
            for model, runs in by_model.items()]


def summarize(result: dict, large_tokens: int) -> dict:
    """Pass rates raw and through the pipeline; the median raw/pipeline time ratio, over all
    tasks and over the large cases (raw prompt of at least `large_tokens` tokens)."""
    rows = result["tasks"]
    both = [r for r in rows if "raw" in r and "pipeline" in r]
    timed = [r for r in both if r["raw"].get("time_s") and r["pipeline"].get("time_s")]
    ratios = [r["raw"]["time_s"] / r["pipeline"]["time_s"] for r in timed]
    large = [r["raw"]["time_s"] / r["pipeline"]["time_s"] for r in timed
             if (r["raw"].get("prompt_tokens") or 0) >= large_tokens]
    return {"tasks": len(rows),
            **{f"{c}_passed": sum(r[c]["passed"] for r in rows if c in r) for c in CONTEXTS},
            **{f"{c}_runs": sum(c in r for r in rows) for c in CONTEXTS},
            "large_tokens": large_tokens, "large_cases": len(large),
            "large_time_ratio_median": round(statistics.median(large), 2) if large else None,
            "time_ratio_median": round(statistics.median(ratios), 2) if ratios else None,
            "pipeline_lost": [r["task"] for r in both
                              if r["raw"]["passed"] and not r["pipeline"]["passed"]],
            "pipeline_won": [r["task"] for r in both
                             if r["pipeline"]["passed"] and not r["raw"]["passed"]]}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    larger = models.PACKAGED.get(LARGER)
    parser.add_argument("--models", nargs="+",
                        default=[MODEL, *([LARGER] if larger and models.any_part_installed(larger)
                                          else [])],
                        help=f"packaged model names or GGUF paths (default: {MODEL}, and "
                        f"{LARGER} if it is installed)")
    parser.add_argument("--tasks", nargs="+", help="only these tasks (file stems)")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--large", type=int, default=1200,
                        help="raw prompt tokens from which a case counts as large")
    parser.add_argument("--contexts", nargs="+", choices=CONTEXTS, default=list(CONTEXTS),
                        help="ask raw, through the pipeline, or both (the default)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--render", type=Path, nargs="+", metavar="RUNS_JSONL",
                        help="only build the results again from runs' runs.jsonl, in order")
    args = parser.parse_args()
    tasks = [t for t in load_tasks() if not args.tasks or t.name in args.tasks]
    if args.render:
        result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "n_ctx": N_CTX,
                  "max_tokens": args.max_tokens, "temperature": 0,
                  "models": from_log(args.render, tasks)}
        for run in result["models"]:
            run["summary"] = summarize(run, args.large)
        write_results(args.out, "quality", result, markdown(result))
        return 0
    work = Path(tempfile.mkdtemp(prefix="cerebrum-bench-quality-"))
    print(f"each run is also logged to {work / 'runs.jsonl'}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services too
    began = time.monotonic()
    result: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "n_ctx": N_CTX,
                    "max_tokens": args.max_tokens, "temperature": 0, "models": []}
    for spec in args.models:
        run = await run_model(spec, tasks, work, args.max_tokens, tuple(args.contexts))
        run["summary"] = summarize(run, args.large)
        result["models"].append(run)
    result["wall_s"] = round(time.monotonic() - began)
    write_results(args.out, "quality", result, markdown(result))
    return 0


def _cell(run: dict | None) -> str:
    if run is None:
        return "-"
    return "pass" if run["passed"] else f"FAIL ({run['outcome']})"


def _seconds(run: dict | None) -> str:
    if run is None or run.get("time_s") is None:
        return "-"
    busy = (run.get("others_cpu") or 0) > BUSY
    return f"{run['time_s']}{' (busy)' if busy else ''}"


def markdown(r: dict) -> str:
    lines = [f"Answer quality raw vs through the context pipeline, {r['date']}. Machine: "
             f"{r['machine']}. Each task once raw and once through the pipeline, streamed "
             f"through the orchestrator, temperature 0, max_tokens {r['max_tokens']}, "
             f"n_ctx {r['n_ctx']}, no prompt-cache snapshots; time is to [DONE]. A pass: the "
             "answer's version of the function, put into the task's code, passes the task's "
             f"tests. (busy): other processes used over {BUSY:.0%} of the CPUs during that "
             "run, so its time is inflated.", ""]
    for m in r["models"]:
        s = m["summary"]
        lines += [f"Model {m['model']} ({m['file']}):", "",
                  "| task | language | raw | pipeline | raw prompt tokens | pipeline prompt "
                  "tokens | raw s | pipeline s |", "|---|---|---|---|---|---|---|---|"]
        for row in m["tasks"]:
            raw, pipe = row.get("raw"), row.get("pipeline")
            figures = [*((run or {}).get("prompt_tokens", "-") for run in (raw, pipe)),
                       *(_seconds(run) for run in (raw, pipe))]
            lines.append(f"| {row['task']} | {row['language']} | {_cell(raw)} | {_cell(pipe)} | "
                         + " | ".join(str(f) for f in figures) + " |")
        ratio = s["large_time_ratio_median"]
        lines += ["", f"Passed: raw {s['raw_passed']}/{s['raw_runs']}, through the pipeline "
                  f"{s['pipeline_passed']}/{s['pipeline_runs']} (goal: pipeline ≥ raw). Median "
                  f"time ratio raw/pipeline: {s['time_ratio_median'] or '-'} over all tasks, "
                  f"{ratio if ratio is not None else '-'} over the {s['large_cases']} large "
                  f"cases (raw prompt ≥ {s['large_tokens']} tokens; goal ≥ 3). Lost through "
                  f"the pipeline: {', '.join(s['pipeline_lost']) or 'none'}; won: "
                  f"{', '.join(s['pipeline_won']) or 'none'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
