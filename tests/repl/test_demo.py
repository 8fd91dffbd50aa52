"""`make demo`'s supervisor mode: services up, the REPL on the terminal, all gone after."""

from __future__ import annotations

import os
import re
import socket
import sys

from harness import PROMPT, ROOT, supervise_argv
from screen import Screen


def test_demo_runs_the_repl_and_stops_the_services_after(tmp_path, tiny_model):
    argv, bport, oport = supervise_argv(tmp_path, tiny_model)
    repl = f"{sys.executable} -m repl --url http://127.0.0.1:{oport}"
    screen = Screen.spawn([*argv, "--then", repl], cwd=str(ROOT),
                          env={**os.environ, "TERM": "xterm"})
    try:
        screen.wait_for("cerebrum: ready", timeout=120)
        screen.wait_for(lambda s: s.cursor_line == PROMPT, timeout=120)
        screen.send("x = 1\x03")  # Ctrl-C at the prompt clears the line, stops nothing
        screen.wait_for(f"{PROMPT} x = 1^C\n")
        screen.send("def f(): pass\r")
        screen.wait_for(re.compile(r"\[tiny · \S+ · .+ tokens"), timeout=120)
        screen.send("\x04")
        assert screen.wait_exit(timeout=120) == 0
    finally:
        screen.close()
    for port in (bport, oport):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening
