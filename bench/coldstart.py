"""Cold start under socket activation (figures, not pass/fail), in one run.

Each server is started as systemd starts it: `systemd-socket-activate` holds the listening
socket, and the first connection execs the server with that socket inherited (LISTEN_FDS). The
figure is the time from that connection to the first byte of the answer, for a fresh process
each time (median and best of --runs, the figures taking turns so that other load on the
machine falls on all of them alike):

- `GET /health` of the orchestrator (Falcon + uvicorn) and of the backend (aiohttp), beside a
  bare Falcon + uvicorn and a bare aiohttp hello-world started the same way: what the
  frameworks cost by themselves, the yardstick (the issue's goal: at most 1.5x);
- the first streamed completion (one token): the orchestrator's in front of a warm backend
  (its start-up plus its first upstream call; the warm backend's own answer to the same request
  is timed in each round too), the backend's own (start-up plus the model's load;
  SmolLM2-135M);
- the orchestrator's and the bare servers' `/health` under a CPU quota of a quarter of one core
  (a cgroup: v2 `cpu.max` "25000 100000", or v1 `cpu.cfs_quota_us`), a stand-in for a CM4's
  slower cores. Needs root and a writable cgroup; the rows say why when not.

Writes bench/results/coldstart.json and coldstart.md. Run: `.venv/bin/python bench/coldstart.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import write_results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ACTIVATE = shutil.which("systemd-socket-activate")
QUARTER = (25_000, 100_000)  # µs of CPU per period: a quarter of one core
CGROUP_NAME = "cerebrum-coldstart"
WARM = "backend, warm (not restarted)"  # the orchestrator's upstream, asked directly

BARE_AIOHTTP = """
import socket
from aiohttp import web
async def health(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/health", health)
web.run_app(app, sock=socket.socket(fileno=3), print=None, access_log=None)
"""
BARE_FALCON = """
import falcon.asgi, uvicorn
class Health:
    async def on_get(self, req, resp):
        resp.media = {"status": "ok"}
app = falcon.asgi.App()
app.add_route("/health", Health())
uvicorn.run(app, fd=3, log_level="warning", lifespan="off")
"""

HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def chat_request(model: str) -> bytes:
    body = (b'{"model": "%s", "stream": true, "max_tokens": 1, '
            b'"messages": [{"role": "user", "content": "def add(a, b):"}]}' % model.encode())
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Quota:
    """A cgroup limiting CPU to a quarter core (v2 cpu.max or v1 cfs quota), or why not."""

    def __init__(self) -> None:
        self.procs: Path | None = None
        self.why = ""
        v2, v1 = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpu")
        try:
            controllers = v2 / "cgroup.controllers"
            if controllers.exists() and "cpu" in controllers.read_text().split():
                group = v2 / CGROUP_NAME
                group.mkdir(exist_ok=True)
                (group / "cpu.max").write_text(f"{QUARTER[0]} {QUARTER[1]}\n")
            elif (v1 / "cpu.cfs_quota_us").exists():
                group = v1 / CGROUP_NAME
                group.mkdir(exist_ok=True)
                (group / "cpu.cfs_period_us").write_text(f"{QUARTER[1]}\n")
                (group / "cpu.cfs_quota_us").write_text(f"{QUARTER[0]}\n")
            else:
                self.why = "no cgroup cpu controller"
                return
        except OSError as exc:
            self.why = f"cgroup not writable ({exc.strerror})"
            return
        self.procs = group / "cgroup.procs"

    def enter(self) -> None:
        """In the child, before exec: move this process into the group."""
        assert self.procs is not None
        self.procs.write_text("0\n")

    def remove(self) -> None:
        if self.procs is not None:
            with contextlib.suppress(OSError):
                self.procs.parent.rmdir()


def listening(err) -> bool:
    """Whether systemd-socket-activate said it listens (on its stderr, a file)."""
    err.seek(0)
    return b"Listening on" in err.read()


@contextlib.contextmanager
def activated(argv: list[str], env: dict[str, str],
              preexec: Callable[[], None] | None = None) -> Iterator[int]:
    """`systemd-socket-activate` listening on a free loopback port for argv; yields the port
    once it listens (nothing of argv has run yet)."""
    assert ACTIVATE, "needs systemd-socket-activate (Debian package systemd)"
    port = free_port()
    with tempfile.TemporaryFile() as err:
        setenv = [a for k, v in env.items() for a in ("-E", f"{k}={v}")]
        proc = subprocess.Popen([ACTIVATE, "-l", f"127.0.0.1:{port}", *setenv, *argv],
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=preexec,
                                start_new_session=True, env={"PATH": "/usr/bin:/bin"})
        try:
            deadline = time.monotonic() + 30
            while not listening(err):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("systemd-socket-activate did not listen")
                time.sleep(0.005)
            yield port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def first_byte(port: int, request: bytes, timeout: float = 300) -> float:
    """Seconds from connecting to the first byte of the answer; reads it to the end."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        first = sock.recv(1)
        elapsed = time.perf_counter() - started
        rest = first
        while chunk := sock.recv(65536):
            rest += chunk
    status = rest.split(b"\r\n", 1)[0]
    if b" 200 " not in status:
        raise RuntimeError(f"answer was {status!r}")
    return elapsed


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "best_s": min(times), "runs": len(times)}


def once(argv: list[str], env: dict[str, str], request: bytes,
         preexec: Callable[[], None] | None = None) -> float:
    """One fresh start: the first byte's delay."""
    with activated(argv, env, preexec) as port:
        return first_byte(port, request)


def interleaved(figures: dict[tuple[str, str], Callable[[], float]],
                runs: int) -> dict[tuple[str, str], dict[str, float]]:
    """Each figure `runs` times, in turns (one start of each, then the next round), so a
    change in the machine's other load falls on every figure alike and ratios within the run
    hold even on a shared machine."""
    times: dict[tuple[str, str], list[float]] = {key: [] for key in figures}
    for round_ in range(runs):
        for key, start in figures.items():
            times[key].append(start())
        print(f"round {round_ + 1}/{runs}", flush=True)
    return {key: summary(t) for key, t in times.items()}


def configs(tmp: Path, model_path: Path, backend_url: str) -> tuple[Path, Path]:
    backend = tmp / "backend.toml"
    backend.write_text(f'[[models]]\nname = "smollm2"\npath = "{model_path}"\n'
                       "n_ctx = 1024\nn_threads = 2\n")
    orchestrator = tmp / "orchestrator.toml"
    orchestrator.write_text(
        'default_route = "qwen"\n'
        f'[[backends]]\nname = "vps"\nurl = "{backend_url}"\n'
        '[[routes]]\nname = "qwen"\nmodel = "smollm2"\nbackends = ["vps"]\n'
        'languages = ["python"]\nn_ctx = 1024\n'
        '[[routes]]\nname = "codellama"\nmodel = "smollm2"\nbackends = ["vps"]\n'
        'languages = ["rust"]\nn_ctx = 1024\n')
    return backend, orchestrator


def table(rows: dict[str, dict], quota_why: str) -> str:
    def cell(r: dict | None) -> str:
        if r is None:
            return "—"
        if "error" in r:
            return r["error"]
        return f"{r['median_s'] * 1000:.0f} ms (best {r['best_s'] * 1000:.0f})"

    bare = {"orchestrator": "bare Falcon + uvicorn", "backend": "bare aiohttp"}
    lines = ["| server | `/health`, first byte | vs bare | first completion, first byte |"
             " `/health` at ¼ core | vs bare at ¼ core |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        ratio = ratio_q = "—"
        if name in bare and "median_s" in r["health"] and \
                "median_s" in rows[bare[name]]["health"]:
            ratio = f"{r['health']['median_s'] / rows[bare[name]]['health']['median_s']:.2f}"
        rq, bq = r.get("quarter"), rows.get(bare.get(name, ""), {}).get("quarter")
        if rq and bq and "median_s" in rq and "median_s" in bq:
            ratio_q = f"{rq['median_s'] / bq['median_s']:.2f}"
        quarter = cell(rq) if rq or not quota_why or name == WARM else quota_why
        lines.append(f"| {name} | {cell(r.get('health'))} | {ratio} |"
                     f" {cell(r.get('completion'))} | {quarter} | {ratio_q} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh starts per figure")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from vps_appliance import models
    model_path = models.resolve("smollm2-135m-instruct", models.default_cache_dir())
    python = str(BIN / "python")
    quota = Quota()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = {"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_STATE_HOME": str(tmp / "state"),
               "HOME": str(tmp)}
        # A warm backend for the orchestrator's first completion (not socket-activated).
        warm_port = free_port()
        backend_toml, orchestrator_toml = configs(tmp, model_path,
                                                  f"http://127.0.0.1:{warm_port}")
        warm = subprocess.Popen([str(BIN / "cerebrum-backend"), "--config", str(backend_toml),
                                 "--port", str(warm_port)], env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            servers = {
                "bare aiohttp": [python, "-c", BARE_AIOHTTP],
                "bare Falcon + uvicorn": [python, "-c", BARE_FALCON],
                "orchestrator": [str(BIN / "cerebrum-orchestrator"), "--config",
                                 str(orchestrator_toml)],
                "backend": [str(BIN / "cerebrum-backend"), "--config", str(backend_toml)],
            }
            # Warm the page cache so the first measured start is not a disk read.
            for argv in servers.values():
                once(argv, env, HEALTH)
            chat = chat_request("smollm2")
            warm_by = time.monotonic() + 300
            while True:  # the warm backend answers (its model loads on the first completion)
                try:
                    first_byte(warm_port, chat)
                    break
                except OSError:
                    if time.monotonic() > warm_by:
                        raise
                    time.sleep(0.2)
            # Its first seconds after that are slow too (measurements after the model's load):
            # settled once an answer comes within half a second. The row "backend, warm"
            # times it directly in every round, beside the orchestrator in front of it.
            while first_byte(warm_port, chat) > 0.5 and time.monotonic() < warm_by:
                pass
            figures: dict[tuple[str, str], Callable[[], float]] = {}
            for name, argv in servers.items():
                figures[name, "health"] = functools.partial(once, argv, env, HEALTH)
                if not name.startswith("bare"):
                    figures[name, "completion"] = functools.partial(once, argv, env, chat)
                if name != "backend" and quota.procs:
                    figures[name, "quarter"] = functools.partial(once, argv, env, HEALTH,
                                                                 quota.enter)
            figures[WARM, "completion"] = functools.partial(first_byte, warm_port, chat)
            load_before = os.getloadavg()
            for (name, kind), figure in interleaved(figures, args.runs).items():
                rows.setdefault(name, {})[kind] = figure
            load_after = os.getloadavg()
            for name, row in rows.items():
                if name.startswith(("bare", "orchestrator")) and not quota.procs:
                    row["quarter"] = {"error": quota.why}
                print(name, row, flush=True)
        finally:
            warm.kill()
            warm.wait()
            quota.remove()
    result = {"runs": args.runs, "quarter_core": f"{QUARTER[0]}/{QUARTER[1]} µs",
              "cpu": os.cpu_count(), "load_average": {"before": load_before,
                                                      "after": load_after}, "rows": rows}
    note = (f"\n{args.runs} starts per figure, in turns; {os.cpu_count()} CPUs, 1-minute load "
            f"average {load_before[0]:.1f} before and {load_after[0]:.1f} after (other work "
            "on the machine, if any, slows every figure alike; compare the ratios).\n")
    write_results(args.out, "coldstart", result, table(rows, quota.why) + note)


if __name__ == "__main__":
    main()
