"""The REPL in a real pseudo-terminal against a real orchestrator and backend (processes),
asserted on the screen a terminal emulator (pyte) renders from its output."""

# ruff: noqa: F811  (pytest fixtures imported from harness are test arguments)
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from harness import (  # fixtures, used by name as arguments
    PROMPT,
    ROOT,
    at_prompt,
    fake_orchestrator,  # noqa: F401
    free_port,
    launch,  # noqa: F401
    queued_services,  # noqa: F401
    services,  # noqa: F401
    slow_services,  # noqa: F401
    spawn,  # noqa: F401
)
from screen import Screen


def history_file() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "cerebrum" / "history"


def saved_history() -> list[str]:
    return [json.loads(line) for line in history_file().read_text(encoding="utf-8").splitlines()]


def cleared(screen: Screen) -> bool:
    """Only the prompt is left, on the top row."""
    return screen.lines[0] == PROMPT and not any(screen.lines[1:])


LEFT, RIGHT, UP, HOME, DELETE = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[H", "\x1b[3~"
STATUS = re.compile(r"\[tiny · \S+ · .+ · \d+ tokens · .+\]")


def test_editing_keys(services, spawn):
    screen = spawn(services[0])
    screen.send("xx:lang cobol\x01" + DELETE + DELETE + "\x05\x17rus" + LEFT + LEFT + RIGHT
                + RIGHT + "t\r")
    screen.wait_for("language: rust")
    screen.send(":model abc" + LEFT * 3 + "\x0btin\x7fny" + HOME + RIGHT + "\r")
    screen.wait_for("model: tiny")
    screen.send("garbage\x15:stats\r")
    screen.wait_for("no stats yet")
    screen.send(":model café漢x字" + LEFT + "\x7f")
    screen.wait_for(lambda s: s.cursor_line == f"{PROMPT} :model café漢字")
    screen.send("\r")
    screen.wait_for("model: café漢字")
    screen.send("abc\x03")
    screen.wait_for(f"{PROMPT} abc^C\n{PROMPT}")
    screen.send("\x0c")
    screen.wait_for(cleared)
    screen.send(":he\t\r")
    screen.wait_for(f"{PROMPT} :help\n:help     this list")
    screen.wait_for(":multi")
    screen.send("\x04")
    assert screen.wait_exit() == 0


def test_history_survives_a_restart(services, spawn):
    screen = spawn(services[0])
    screen.send(":lang rust\r")
    screen.wait_for("language: rust")
    screen.send("fn main() {}\r")
    screen.wait_for(STATUS)
    screen.send(":quit\r")
    assert screen.wait_exit() == 0
    assert saved_history() == ["fn main() {}"]
    screen = spawn(services[0])
    screen.send(UP + UP)  # commands are not kept; the prompt is
    screen.wait_for(lambda s: s.cursor_line == f"{PROMPT} fn main() {{}}")
    screen.send("\r")
    screen.wait_for(STATUS)


def test_history_file_is_private(services, spawn):
    umask = os.umask(0o022)  # the usual umask, inherited by the REPL: files 0644, dirs 0755
    try:
        screen = spawn(services[0])
    finally:
        os.umask(umask)
    screen.send("x = 1\r")
    screen.wait_for(STATUS)
    screen.wait_for(at_prompt)  # the exchange is saved before the prompt comes back
    assert stat.S_IMODE(history_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(history_file().parent.stat().st_mode) == 0o700
    state = history_file().parent
    assert sorted(p.name for p in state.iterdir()) == ["conversations", "history"]
    (saved,) = (state / "conversations").iterdir()  # the conversation, private too
    assert saved.suffix == ".json" and stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700


def test_multiline_and_paste(services, spawn):
    screen = spawn(services[0])
    screen.send(":multi\r")
    screen.wait_for("multiline on")
    screen.wait_for(lambda s: s.cursor_line == "cerebrum [multi: blank line sends]>")
    screen.send("def f():\r")
    screen.wait_for(lambda s: s.cursor_line == "...")
    screen.send("    return 1\r\r")
    screen.wait_for(STATUS)
    screen.send(":raw on\r:context\r")
    screen.wait_for("context raw")
    screen.wait_for("--- user ---\ndef f():\n    return 1")
    screen.send(":multi\r")
    screen.wait_for("multiline off")
    screen.wait_for(at_prompt)
    lines = "".join(f"x{i} = {i}\r" for i in range(200))
    screen.send("\x1b[200~" + lines + "\x1b[201~")
    screen.wait_for(lambda s: s.cursor_line == "..." and "x199 = 199" in s.text)
    screen.send("explain\r")
    screen.wait_for(STATUS)
    screen.send(":context\r")
    screen.wait_for("x198 = 198\nx199 = 199\nexplain")
    entries = saved_history()
    assert entries[-1].count("\n") == 200 and entries[0] == "def f():\n    return 1"


def test_commands(services, spawn):
    screen = spawn(services[0])
    screen.send(":help\r")
    screen.wait_for(":raw      on|off")
    screen.send(":stats\r")
    screen.wait_for("no stats yet")
    screen.send(":context\r")
    screen.wait_for("nothing to preview yet")
    screen.send(":nope\r")
    screen.wait_for("unknown command :nope: try :help, :model, :lang")
    screen.send(":lang cobol\r")
    screen.wait_for(":lang takes python|javascript|typescript|rust|c|cpp|auto")
    screen.send(":raw sometimes\r")
    screen.wait_for(":raw takes on|off")
    screen.send(":lang python\r:model tiny\r:raw on\r")
    screen.wait_for("raw: on")
    screen.send("x = 1  # make it 2\r")
    screen.wait_for(STATUS)
    screen.send(":stats\r")
    screen.wait_for('language: "python"')
    screen.wait_for('context: "raw"')
    screen.send(":raw off\r:context\r")
    screen.wait_for("model tiny · context")
    screen.send(":clear\r")
    screen.wait_for(cleared)
    screen.send(":stats\r")
    screen.wait_for(f"{PROMPT} :stats\nno stats yet: ask something first\n{PROMPT}")
    screen.send(":quit\r")
    assert screen.wait_exit() == 0


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{.*}})? (\S+)$", text, re.M))


@pytest.mark.slow
def test_ctrl_c_cancels_the_generation(slow_services, spawn):
    orchestrator, backend = slow_services
    name = "cerebrum_backend_generations_cancelled_total"
    before = metric(backend, name)
    screen = spawn(orchestrator)
    screen.send("Write a very long story about a dragon.\r")
    # tokens are arriving, on the lines under the prompt as typed
    screen.wait_for(lambda s: re.search(r"\w\w", s.after(f"{PROMPT} Write a very long story "
                                                          "about a dragon.\n")))
    screen.send("\x03")
    screen.wait_for(lambda s: "[cancelled]" in s.recent and at_prompt(s))
    deadline = time.monotonic() + 60
    while metric(backend, name) <= before:
        assert time.monotonic() < deadline, "the backend did not stop generating"
        time.sleep(0.1)
    screen.send(":stats\r")
    screen.wait_for("no stats yet")
    screen.send(":history\r")  # a cancelled answer is not kept in the conversation
    screen.wait_for("no turns yet in this conversation")


def test_orchestrator_down(spawn):
    screen = spawn(f"http://127.0.0.1:{free_port()}")
    screen.send("hello\r")
    screen.wait_for(lambda s: "error: cannot reach the orchestrator at http://127.0.0.1:"
                    in s.after(f"{PROMPT} hello\n") and at_prompt(s))
    assert b"Traceback" not in screen.raw


@pytest.mark.parametrize(("prompt", "message"), [
    ("SHED", "error: orchestrator busy (busy: 1 requests in flight; retry in 7 s); retry in 7 s"),
    ("BREAKER", "error: every backend's circuit breaker is open; retry in 9 s"),
    ("MIDERROR", "partial\nerror: the answer broke off: backend vps stalled"),
    ("MALFORMED", "partial\nerror: malformed answer stream: event is not JSON"),
    ("HOSTILE_ERROR", "error: orchestrator error 400: bad thing"),
])
def test_error_messages(fake_orchestrator, spawn, prompt, message):
    screen = spawn(fake_orchestrator)
    screen.send(prompt + "\r")
    screen.wait_for(re.compile(re.escape(f"{PROMPT} {prompt}\n{message}") + r".*\n" + PROMPT))
    screen.send(":help\r")  # still running
    screen.wait_for(":quit")
    assert b"Traceback" not in screen.raw
    assert b"\x1b]" not in screen.raw and screen.title == ""


def test_model_escape_sequences_never_reach_the_terminal(fake_orchestrator, spawn):
    screen = spawn(fake_orchestrator)
    screen.send("some text\r")  # the screen holds something that a clear would erase
    screen.wait_for(lambda s: "partial" in s.recent and at_prompt(s))
    screen.send("ESCAPES\r")
    screen.wait_for(re.compile(r"before safe text middle\nafter end\ufffd\n\[\? · .*\]\n" + PROMPT))
    assert screen.lines[0].startswith("cerebrum → http://127.0.0.1:")  # nothing cleared
    assert screen.title == ""
    assert "\x1b]" not in screen.raw.decode() and "\x9b" not in screen.raw.decode()
    assert b"ZXZpbA" not in screen.raw and b"\x1b[2J" not in screen.raw
    # the REPL's own styling is kept: a bold prompt, a dim status line
    assert screen.emulator.buffer[screen.emulator.cursor.y][0].bold
    assert re.search(rb"\x1b\[2m\[\? \xc2\xb7 ", screen.raw)


def test_pipe_mode_scrubs_a_terminal_but_not_a_file(fake_orchestrator, launch):
    screen = launch("--url", fake_orchestrator, "-m", "ESCAPES")
    assert screen.wait_exit() == 0
    assert screen.text == "before safe text middle\nafter end\ufffd"
    assert b"\x1b" not in screen.raw and screen.title == ""
    done = subprocess.run([sys.executable, "-m", "repl", "--url", fake_orchestrator, "-m",
                           "ESCAPES"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("before \x1b]52;c;ZXZpbA==\x07safe\x1b]0;pwned\x07")
    assert done.stdout.endswith("\x1b]2;again\x1b\\ end\ufffd\n")  # encodable, not a crash
    failed = subprocess.run([sys.executable, "-m", "repl", "--url", fake_orchestrator, "-m",
                             "HOSTILE_ERROR"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == "cerebrum: orchestrator error 400: bad thing\n"


@pytest.mark.parametrize("url", ["localhost:7000", "ftp://host", "http://127.0.0.1:99999",
                                 "http://[::1"])
def test_a_bad_url_is_one_line_and_exit_2(launch, url):
    for mode in ((), ("-m", "x")):  # the REPL on a terminal, and pipe mode
        screen = launch("--url", url, *mode)
        assert screen.wait_exit() == 2
        assert screen.text.startswith("cerebrum: --url: ") and "\n" not in screen.text
        assert b"Traceback" not in screen.raw


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
    screen = spawn(services[0], NO_COLOR="1")
    screen.send("x = 1\r")
    screen.wait_for(STATUS)
    screen.send(":quit\r")
    assert screen.wait_exit() == 0
    assert b"\x1b[0m" not in screen.raw and b"\x1b[2m" not in screen.raw
    assert not screen.emulator.buffer[0][0].bold
    coloured = spawn(services[0])
    coloured.send("x = 1\r")
    coloured.wait_for(STATUS)
    coloured.wait_for(at_prompt)
    assert re.search(rb"\x1b\[2m\[tiny", coloured.raw)
    assert coloured.emulator.buffer[coloured.emulator.cursor.y][0].bold


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
        screen = spawn(orchestrator)
        screen.send("hello\r")
        screen.wait_for(re.compile(r"\nerror: orchestrator busy .*retry in 1 s\n" + PROMPT))
        assert b"Traceback" not in screen.raw
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


def test_files_in_the_pty(services, spawn, tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    screen = spawn(services[0], "app.py", "nope.py", cwd=tmp_path)  # files on the command line
    assert "attached: app.py (1 lines)\nnope.py: no such file" in screen.text
    screen.send(":add blob.bin\r")
    screen.wait_for("blob.bin: a binary file (it holds NUL bytes); not attached")
    screen.send(":diff\r")
    screen.wait_for("error: no answer yet: ask something first")
    screen.send(":save\r")
    screen.wait_for(":save takes PATH")
    screen.send(":resume x\r")
    screen.wait_for(":resume takes [N]")
    screen.send(":history\r")
    screen.wait_for("no turns yet in this conversation")
    screen.send("look at @app.py and @gone.py\r")
    screen.wait_for(lambda s: "still attached: app.py (1 lines)\ngone.py: no such file"
                    in s.recent and STATUS.search(s.recent) and at_prompt(s))
    screen.send(":history\r")
    screen.wait_for(re.compile(r"  1\. look at @app\.py and @gone\.py \+ app\.py · \d+ tokens "
                               r"sent · \d+ tokens answered"))
    screen.send(":drop app.py nope.py\r")
    screen.wait_for("dropped: app.py\nnope.py: not attached")
    screen.send(":files\r")
    screen.wait_for("no files attached")
    screen.send(":quit\r")
    assert screen.wait_exit() == 0


def test_hostile_or_cut_off_answers_are_not_written(fake_orchestrator, spawn, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "outside.py").write_text("x = 1\n")
    screen = spawn(fake_orchestrator, cwd=project)
    screen.send(":add ../outside.py\r")
    screen.wait_for("attached: ../outside.py (1 lines)")
    screen.send("OUTSIDE\r")
    screen.wait_for(lambda s: "x = 2" in s.recent and at_prompt(s))
    screen.send(":diff\r")  # reading is fine
    screen.wait_for("+++ b/../outside.py")
    screen.send(":apply\r")  # writing there was not asked for by name
    screen.wait_for("error: ../outside.py: outside the working directory")
    assert (tmp_path / "outside.py").read_text() == "x = 1\n"
    screen.send(":apply ../outside.py\r")  # named: the user's choice
    screen.wait_for("? [y/N]")
    screen.send("\x03")  # Ctrl-C is no
    screen.wait_for("not written")
    screen.send(":apply ../outside.py\r")
    screen.wait_for(lambda s: "? [y/N]" in s.recent)
    screen.send("Y")
    screen.wait_for("wrote ../outside.py (the old one is ../outside.py.orig)")
    assert (tmp_path / "outside.py").read_text() == "x = 2\n"
    assert (tmp_path / "outside.py.orig").read_text() == "x = 1\n"
    screen.send("CUTOFF\r")
    screen.wait_for(lambda s: "x = 3" in s.recent and at_prompt(s))
    screen.send(":save new.py\r")
    screen.wait_for("new.py: not written: the answer's code block is cut off (no closing fence)")
    screen.send(":diff new.py\r")
    screen.wait_for("new.py: the answer's code block is cut off")
    assert not (project / "new.py").exists()


def backend_load(backend: str) -> dict:
    with urllib.request.urlopen(backend + "/health", timeout=10) as resp:
        return json.load(resp)["models"][0]


@pytest.mark.slow
def test_the_status_line_shows_the_wait_for_the_models_turn(queued_services, spawn):
    import http.client

    orchestrator, backend = queued_services
    host, port = backend.removeprefix("http://").split(":")
    holder = http.client.HTTPConnection(host, int(port), timeout=60)
    held = 0.5  # seconds the REPL's request waits at least once it is queued
    try:  # another client's long answer holds the backend's only sequence
        holder.request("POST", "/v1/chat/completions", json.dumps({
            "model": "tiny", "messages": [{"role": "user", "content": "Tell a long story."}],
            "stream": True, "max_tokens": 3000}), {"Content-Type": "application/json"})
        wait_until(lambda: backend_load(backend)["in_use"] == 1, "the sequence is taken")
        screen = spawn(orchestrator)
        screen.send("hello\r")
        wait_until(lambda: backend_load(backend)["waiting"] == 1, "the REPL's request queued")
        time.sleep(held)  # not a wait for anything: how long the REPL's turn is held back
    finally:
        holder.close()  # its client leaves: the REPL's request takes the sequence
    screen.wait_for(lambda s: STATUS.search(s.text) and at_prompt(s))
    queued = re.search(r"\[tiny · \S+ · queued (\d+\.\d) s · ", screen.text)
    assert queued, screen.text
    assert float(queued.group(1)) >= held - 0.05  # shown with one decimal


def wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)
