"""`make demo`'s supervisor: the services log to files under $XDG_STATE_HOME, not the terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_a_foreground_command_the_services_log_to_files(tmp_path, tiny_model):
    bport, oport = free_port(), free_port()
    (tmp_path / "backend.toml").write_text(
        f'[[models]]\nname = "tiny"\npath = "{tiny_model}"\nn_ctx = 1024\nn_threads = 2\n')
    (tmp_path / "orchestrator.toml").write_text(
        f'[[backends]]\nname = "local"\nurl = "http://127.0.0.1:{bport}"\n'
        f'[[routes]]\nname = "qwen"\nmodel = "tiny"\nbackends = ["local"]\n')
    probe = (f"{sys.executable} -c \"import urllib.request; print(urllib.request.urlopen("
             f"'http://127.0.0.1:{oport}/health').status)\"")
    state = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "cerebrum.supervise", "--backend-config",
         str(tmp_path / "backend.toml"), "--orchestrator-config",
         str(tmp_path / "orchestrator.toml"), "--backend-port", str(bport),
         "--orchestrator-port", str(oport), "--then", probe],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "XDG_STATE_HOME": str(state)})
    assert proc.returncode == 0, proc.stderr
    logs = state / "cerebrum" / "logs"
    assert f"service logs in {logs}" in proc.stderr
    # The terminal got the command's output and the supervisor's own lines, no log lines.
    assert proc.stdout.strip() == "200"
    assert '"event"' not in proc.stdout + proc.stderr
    for name in ("backend", "orchestrator"):
        lines = [json.loads(line) for line in (logs / f"{name}.log").read_text().splitlines()
                 if line.startswith("{")]
        assert any(line["event"] == "listening" for line in lines), name
