"""`make demo`'s supervisor mode: services up, the REPL on the terminal, all gone after."""

from __future__ import annotations

import os
import socket
import sys

import pexpect
from harness import ROOT, supervise_argv


def test_demo_runs_the_repl_and_stops_the_services_after(tmp_path, tiny_model):
    argv, bport, oport = supervise_argv(tmp_path, tiny_model)
    repl = f"{sys.executable} -m repl --url http://127.0.0.1:{oport}"
    child = pexpect.spawn(argv[0], [*argv[1:], "--then", repl], cwd=str(ROOT),
                          env={**os.environ, "TERM": "xterm"}, encoding="utf-8", timeout=120,
                          dimensions=(40, 200))
    try:
        child.expect_exact("cerebrum: ready")
        child.expect_exact("cerebrum> ")
        child.send("x = 1\x03")  # Ctrl-C at the prompt clears the line, stops nothing
        child.expect_exact("^C")
        child.send("def f(): pass\r")
        child.expect(r"\[tiny · \S+ · .+ tokens")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    for port in (bport, oport):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening
