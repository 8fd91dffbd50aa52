"""`python -m cerebrum.supervise`: run the backend and the orchestrator together in the
foreground (`make serve`), wait until both are healthy, and stop both on Ctrl-C, SIGTERM or
when either exits — no stray processes, no ports left bound. With `--then CMD` (`make demo`),
run CMD on the terminal once both are healthy and stop both when it exits; the services' logs
then go to files under `$XDG_STATE_HOME/cerebrum/logs/` (printed), so the terminal holds only
CMD's output."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Service:
    """A child process and where it answers /health."""

    name: str
    argv: tuple[str, ...]
    health_url: str


def default_log_dir() -> Path:
    """Where `--then` sends the services' logs: $XDG_STATE_HOME/cerebrum/logs."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cerebrum" / "logs"


def healthy(url: str) -> bool:
    """Whether GET url answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def stop(procs: Sequence[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM every child, then SIGKILL what is still alive after `grace` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(services: Sequence[Service], ready_timeout: float = 600.0,
        then: Sequence[str] = (), log_dir: Path | None = None) -> int:
    """Start, wait for health, then wait for a signal or a child to exit; 0 on a signal.

    With `then`, run that command in the foreground once healthy; its exit stops the rest.
    With `log_dir`, each service's stdout and stderr are appended to `<log_dir>/<name>.log`.
    """
    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            print(f"cerebrum: service logs in {log_dir}", file=sys.stderr, flush=True)
        for service in services:
            out = None
            if log_dir is not None:
                out = open(log_dir / f"{service.name}.log", "ab")  # noqa: SIM115 (child's)
            # With a foreground command the terminal's Ctrl-C is that command's (the REPL
            # cancels a generation with it), so the services get their own session.
            try:
                procs.append(subprocess.Popen(service.argv, start_new_session=bool(then),
                                              stdin=subprocess.DEVNULL,  # they read no input
                                              stdout=out, stderr=out))
            finally:
                if out is not None:
                    out.close()  # the child has its own copy
        pending = list(services)
        deadline = time.monotonic() + ready_timeout
        while pending and not stopping:
            if any(p.poll() is not None for p in procs):
                break
            pending = [s for s in pending if not healthy(s.health_url)]
            if time.monotonic() > deadline:
                print(f"cerebrum: {pending[0].name} not healthy after {ready_timeout:.0f} s",
                      file=sys.stderr)
                return 1
            if pending:
                time.sleep(0.2)
        if not pending and not stopping:
            names = ", ".join(f"{s.name} ({s.health_url.rsplit('/', 1)[0]})" for s in services)
            if then:
                print(f"cerebrum: ready: {names}", file=sys.stderr, flush=True)
                return _foreground(then, procs, stopping)
            print(f"cerebrum: ready: {names}; Ctrl-C stops", file=sys.stderr, flush=True)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        failed = [s.name for s, p in zip(services, procs, strict=False)
                  if p.poll() not in (None, 0)]
        if failed and not stopping:
            print(f"cerebrum: {', '.join(failed)} exited; stopping the rest", file=sys.stderr)
            return 1
        return 0
    finally:
        stop(procs)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _foreground(argv: Sequence[str], procs: Sequence[subprocess.Popen[bytes]],
                stopping: list[int]) -> int:
    """Run argv on this terminal until it exits (its status), SIGTERM, or a service dies."""
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # the command's to handle
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"cerebrum: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 1
    died = False
    try:
        while child.poll() is None and not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.1)
        died = child.poll() is None and not stopping
        if died:
            print("\ncerebrum: a service exited; stopping", file=sys.stderr)
    finally:
        stop([child], grace=5)
    return 0 if stopping else 1 if died else child.returncode


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m cerebrum.supervise` (what `make serve` runs)."""
    parser = argparse.ArgumentParser(prog="python -m cerebrum.supervise", description=__doc__)
    parser.add_argument("--backend-config")
    parser.add_argument("--orchestrator-config")
    parser.add_argument("--backend-port", type=int, default=9000)
    parser.add_argument("--orchestrator-port", type=int, default=7000)
    parser.add_argument("--then", metavar="CMD", help="run CMD once both are healthy (the REPL "
                        "for `make demo`); stop both when it exits")
    parser.add_argument("--log-dir", type=Path, help="append the services' logs to files "
                        "here (default with --then: $XDG_STATE_HOME/cerebrum/logs; without: "
                        "the terminal)")
    args = parser.parse_args(argv)
    log_dir = args.log_dir or (default_log_dir() if args.then else None)

    def argv_of(module: str, config: str | None, port: int) -> tuple[str, ...]:
        return (sys.executable, "-m", module, "--port", str(port),
                *(("--config", config) if config else ()))

    services = [
        Service("backend", argv_of("vps_appliance", args.backend_config, args.backend_port),
                f"http://127.0.0.1:{args.backend_port}/health"),
        Service("orchestrator", argv_of("pi_appliance", args.orchestrator_config,
                                        args.orchestrator_port),
                f"http://127.0.0.1:{args.orchestrator_port}/health"),
    ]
    return run(services, then=shlex.split(args.then) if args.then else (), log_dir=log_dir)


if __name__ == "__main__":
    sys.exit(main())
