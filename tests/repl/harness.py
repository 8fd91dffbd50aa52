"""REPL fixtures: real backend + orchestrator subprocesses, and the REPL in a real pty.

Not a conftest.py: a second `conftest` module would shadow tests/conftest.py for the test
modules that import helpers from it, so the REPL tests import these fixtures by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from screen import Screen

ROOT = Path(__file__).parents[2]
Spawn = Callable[..., Screen]
PROMPT = "cerebrum>"  # the edit line's prompt, as the screen shows it (trailing blank cut)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, f"{url} exited"
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def supervise_argv(tmp: Path, model: Path, max_tokens: int = 8, orchestrator_extra: str = "",
                   parallel: int = 4) -> tuple[list[str], int, int]:
    """`python -m cerebrum.supervise` for one model: its argv, backend and orchestrator ports."""
    bport, oport = free_port(), free_port()
    (tmp / "backend.toml").write_text(
        f'[[models]]\nname = "tiny"\npath = "{model}"\nn_ctx = 4096\nn_threads = 2\n'
        f"parallel = {parallel}\n"
        f"[models.sampling]\ntemperature = 0.0\nmax_tokens = {max_tokens}\n")
    (tmp / "orchestrator.toml").write_text(f"""{orchestrator_extra}
default_max_tokens = {max_tokens}
[[backends]]
name = "local"
url = "http://127.0.0.1:{bport}"
[[routes]]
name = "qwen"
model = "tiny"
backends = ["local"]
languages = ["python", "javascript", "typescript", "rust", "c", "cpp"]
n_ctx = 4096
""")
    return ([sys.executable, "-m", "cerebrum.supervise", "--backend-config",
             str(tmp / "backend.toml"), "--orchestrator-config", str(tmp / "orchestrator.toml"),
             "--backend-port", str(bport), "--orchestrator-port", str(oport)], bport, oport)


def supervise(tmp: Path, model: Path, max_tokens: int = 8, orchestrator_extra: str = "",
              parallel: int = 4) -> Iterator[tuple[str, str]]:
    """Run the supervisor with one model; yield the two base URLs."""
    argv, bport, oport = supervise_argv(tmp, model, max_tokens, orchestrator_extra, parallel)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for port in (bport, oport):
            wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{oport}", f"http://127.0.0.1:{bport}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def services(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[str, str]]:
    """A real backend (tiny model, 8 tokens) and orchestrator: (orchestrator, backend) URLs."""
    yield from supervise(tmp_path_factory.mktemp("svc"), tiny_model)


KEY = "sk-cerebrum-test-key"


@pytest.fixture(scope="module")
def keyed_services(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[str, str]]:
    """The same as `services`, but the orchestrator accepts only the API key KEY."""
    tmp = tmp_path_factory.mktemp("keyed")
    (tmp / "keys").write_text(f"# accepted keys\n{KEY}\n")
    yield from supervise(tmp, tiny_model, orchestrator_extra=f'api_keys_file = "{tmp}/keys"')


@pytest.fixture(scope="module")
def slow_services(smollm2: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[str, str]]:
    """The same with SmolLM2 and 3000 tokens an answer: long enough to cancel; one sequence
    (the orchestrator's own `max_concurrent`, 2, is then its limit)."""
    yield from supervise(tmp_path_factory.mktemp("slow"), smollm2, max_tokens=3000, parallel=1)


@pytest.fixture(scope="module")
def queued_services(smollm2: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[tuple[str, str]]:
    """SmolLM2 on one sequence, 24 tokens an answer: a second client waits its turn."""
    yield from supervise(tmp_path_factory.mktemp("queued"), smollm2, max_tokens=24, parallel=1)


@pytest.fixture(scope="module")
def fake_orchestrator() -> Iterator[str]:
    """tests/repl/fake_orchestrator.py as a process: the prompt picks the fault."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name(
        "fake_orchestrator.py")), str(port)], cwd=ROOT)
    try:
        end = time.monotonic() + 60
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < end, "fake did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def at_prompt(screen: Screen) -> bool:
    """Whether the REPL waits for input on an empty edit line."""
    return screen.cursor_line == PROMPT


@pytest.fixture
def launch() -> Iterator[Callable[..., Screen]]:
    """Start `python -m repl ARGS` in a real 40x200 pseudo-terminal; all closed afterwards."""
    screens: list[Screen] = []

    def start(*args: str, cwd: Path = ROOT, **env: str) -> Screen:
        screen = Screen.spawn([sys.executable, "-m", "repl", *args], cwd=str(cwd),
                              env={**os.environ, "TERM": "xterm", **env})
        screens.append(screen)
        return screen

    yield start
    for screen in screens:
        screen.close()


@pytest.fixture
def spawn(launch: Callable[..., Screen]) -> Spawn:
    """The REPL against `url` in a real pseudo-terminal, once it shows its prompt."""

    def start(url: str, *args: str, cwd: Path = ROOT, **env: str) -> Screen:
        screen = launch("--url", url, *args, cwd=cwd, **env)
        screen.wait_for(at_prompt)
        return screen

    return start
