"""The REPL in a real pseudo-terminal against a real orchestrator and backend (processes)."""

# ruff: noqa: F811  (pytest fixtures imported from harness are test arguments)
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pexpect
import pytest
from harness import (  # fixtures, used by name as arguments
    ROOT,
    fake_orchestrator,  # noqa: F401
    free_port,
    services,  # noqa: F401
    slow_services,  # noqa: F401
    spawn,  # noqa: F401
)


def saved_history() -> list[str]:
    path = Path(os.environ["XDG_STATE_HOME"]) / "cerebrum" / "history"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

LEFT, RIGHT, UP, HOME, DELETE = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[H", "\x1b[3~"
STATUS = re.compile(r"\[tiny · \S+ · .+ · \d+ tokens · .+\]")


def test_editing_keys(services, spawn):
    child = spawn(services[0])
    child.send("xx:lang cobol\x01" + DELETE + DELETE + "\x05\x17rus" + LEFT + LEFT + RIGHT
               + RIGHT + "t\r")
    child.expect_exact("language: rust")
    child.send(":model abc" + LEFT * 3 + "\x0btin\x7fny" + HOME + RIGHT + "\r")
    child.expect_exact("model: tiny")
    child.send("garbage\x15:stats\r")
    child.expect_exact("no stats yet")
    child.send(":model café漢x字" + LEFT + "\x7f\r")
    child.expect_exact("model: café漢字")
    child.send("abc\x03")
    child.expect_exact("^C")
    child.send("\x0c")
    child.expect_exact("\x1b[H\x1b[2J")
    child.send(":he\t\r")
    child.expect_exact(":multi")
    child.send("\x04")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_history_survives_a_restart(services, spawn):
    child = spawn(services[0])
    child.send(":lang rust\r")
    child.expect_exact("language: rust")
    child.send("fn main() {}\r")
    child.expect(STATUS)
    child.send(":quit\r")
    child.expect(pexpect.EOF)
    assert saved_history() == ["fn main() {}"]
    child = spawn(services[0])
    child.send(UP + UP + "\r")  # commands are not kept; the prompt is
    child.expect(STATUS)


def test_multiline_and_paste(services, spawn):
    child = spawn(services[0])
    child.send(":multi\r")
    child.expect_exact("multiline on")
    child.expect_exact("[multi: blank line sends]> ")
    child.send("def f():\r")
    child.expect_exact("... ")
    child.send("    return 1\r\r")
    child.expect(STATUS)
    child.send(":raw on\r:context\r")
    child.expect_exact("context raw")
    child.expect_exact("def f():\r\n    return 1")
    child.send(":multi\r")
    child.expect_exact("multiline off")
    lines = "".join(f"x{i} = {i}\r" for i in range(200))
    child.send("\x1b[200~" + lines + "\x1b[201~")
    child.expect_exact("... ")
    child.send("explain\r")
    child.expect(STATUS)
    child.send(":context\r")
    child.expect_exact("x199 = 199\r\nexplain")
    entries = saved_history()
    assert entries[-1].count("\n") == 200 and entries[0] == "def f():\n    return 1"


def test_commands(services, spawn):
    child = spawn(services[0])
    child.send(":help\r")
    child.expect_exact(":raw      on|off")
    child.send(":stats\r")
    child.expect_exact("no stats yet")
    child.send(":context\r")
    child.expect_exact("nothing to preview yet")
    child.send(":nope\r")
    child.expect_exact("unknown command :nope: try :help, :model, :lang")
    child.send(":lang cobol\r")
    child.expect_exact(":lang takes python|javascript|typescript|rust|c|cpp|auto")
    child.send(":raw sometimes\r")
    child.expect_exact(":raw takes on|off")
    child.send(":lang python\r:model tiny\r:raw on\r")
    child.expect_exact("raw: on")
    child.send("x = 1  # make it 2\r")
    child.expect(STATUS)
    child.send(":stats\r")
    child.expect_exact('language: "python"')
    child.expect_exact('context: "raw"')
    child.send(":raw off\r:context\r")
    child.expect_exact("model tiny · context")
    child.send(":clear\r")
    child.expect_exact("\x1b[H\x1b[2J")
    child.send(":stats\r")
    child.expect_exact("no stats yet")
    child.send(":quit\r")
    child.expect(pexpect.EOF)


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{.*}})? (\S+)$", text, re.M))


@pytest.mark.slow
def test_ctrl_c_cancels_the_generation(slow_services, spawn):
    orchestrator, backend = slow_services
    name = "cerebrum_backend_generations_cancelled_total"
    before = metric(backend, name)
    child = spawn(orchestrator)
    child.send("Write a very long story about a dragon.\r")
    child.expect_exact("dragon.\r\n")
    child.expect(r"\w\w")  # tokens are arriving
    child.send("\x03")
    child.expect_exact("[cancelled]")
    child.expect_exact("> ")
    deadline = time.monotonic() + 60
    while metric(backend, name) <= before:
        assert time.monotonic() < deadline, "the backend did not stop generating"
        time.sleep(0.1)
    child.send(":stats\r")
    child.expect_exact("no stats yet")


def test_orchestrator_down(spawn):
    child = spawn(f"http://127.0.0.1:{free_port()}")
    child.send("hello\r")
    child.expect_exact("error: cannot reach the orchestrator at http://127.0.0.1:")
    child.expect_exact("> ")
    assert "Traceback" not in child.before


@pytest.mark.parametrize(("prompt", "message"), [
    ("SHED", "error: orchestrator busy (busy: 1 requests in flight; retry in 7 s); retry in 7 s"),
    ("BREAKER", "error: every backend's circuit breaker is open; retry in 9 s"),
    ("MIDERROR", "error: the answer broke off: backend vps stalled"),
    ("MALFORMED", "error: malformed answer stream: event is not JSON"),
])
def test_error_messages(fake_orchestrator, spawn, prompt, message):
    child = spawn(fake_orchestrator)
    child.send(prompt + "\r")
    child.expect_exact(message)
    child.send(":help\r")  # still running
    child.expect_exact(":quit")
    assert "Traceback" not in child.before


def test_pipe_mode(services):
    done = subprocess.run([sys.executable, "-m", "repl", "--url", services[0], "-m",
                           "convert to async/await"], input="def f():\n    return 1\n",
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout and done.stderr == ""
    assert "\x1b" not in done.stdout
    down = subprocess.run([sys.executable, "-m", "repl", "--url",
                           f"http://127.0.0.1:{free_port()}", "-m", "x"], input="y",
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.count("\n") == 1 and "cannot reach the orchestrator" in down.stderr


def test_no_color(services, spawn):
    child = spawn(services[0], NO_COLOR="1")
    child.send("x = 1\r")
    child.expect(STATUS)
    child.send(":quit\r")
    child.expect(pexpect.EOF)
    assert "\x1b[0m" not in child.before and "\x1b[2m" not in child.before
    coloured = spawn(services[0])
    coloured.send("x = 1\r")
    coloured.expect(r"\x1b\[2m\[tiny")


@pytest.mark.slow
def test_a_shedding_real_orchestrator_is_one_line_with_when_to_retry(slow_services, spawn):
    import http.client

    orchestrator, _ = slow_services
    host, port = orchestrator.removeprefix("http://").split(":")
    body = json.dumps({"messages": [{"role": "user", "content": "Tell a long story."}],
                       "stream": True})
    holders = [http.client.HTTPConnection(host, int(port), timeout=60) for _ in range(2)]
    try:
        for conn in holders:  # two streams fill the orchestrator's max_concurrent (2)
            conn.request("POST", "/v1/chat/completions", body,
                         {"Content-Type": "application/json"})
        deadline = time.monotonic() + 60
        while in_flight(orchestrator) < 2:
            assert time.monotonic() < deadline, "the two streams did not start"
            time.sleep(0.05)
        child = spawn(orchestrator)
        child.send("hello\r")
        child.expect_exact("error: orchestrator busy")
        child.expect_exact("retry in 1 s")
        child.expect_exact("> ")
        assert "Traceback" not in child.before
    finally:
        for conn in holders:
            conn.close()
    deadline = time.monotonic() + 60
    while in_flight(orchestrator) > 0:
        assert time.monotonic() < deadline, "the held streams were not released"
        time.sleep(0.05)


def in_flight(orchestrator: str) -> int:
    with urllib.request.urlopen(orchestrator + "/stats", timeout=10) as resp:
        return json.load(resp)["in_flight"]
