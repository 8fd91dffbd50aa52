"""`cerebrum-backend` as a process: systemd socket activation, idle exit, SIGTERM, the
exposure guard, and logs that never carry prompt text or keys."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp_path: Path, model: Path, extra: str = "") -> Path:
    path = tmp_path / "backend.toml"
    path.write_text(f"{extra}\n[[models]]\nname = \"tiny\"\npath = \"{model}\"\n"
                    "n_ctx = 512\nn_threads = 2\n")
    return path


def call(url: str, body: dict | None = None, key: str | None = None,
         timeout: float = 60) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(url: str, proc: subprocess.Popen, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not come up")


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_socket_activation_then_idle_exit(tmp_path, tiny_model):
    assert SOCKET_ACTIVATE, "needs systemd-socket-activate: apt-get install systemd"
    port = free_port()
    cmd = [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "-E", "PYTHONPATH",
           sys.executable, "-m", "vps_appliance", "--config", str(config(tmp_path, tiny_model)),
           "--idle-exit", "1.5"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        # The socket is systemd-socket-activate's; the first connection starts the service.
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        status, health = call(f"http://127.0.0.1:{port}/health")
        assert status == 200 and health["status"] == "ok"
        status, body = call(f"http://127.0.0.1:{port}/v1/completions",
                            {"prompt": "def f", "max_tokens": 3})
        assert status == 200 and body["usage"]["completion_tokens"] <= 3
        # No more requests: the process exits cleanly by itself, freeing the model's RAM.
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        stderr = proc.communicate()[1]
    logs = log_lines(stderr)
    listening = next(line for line in logs if line["event"] == "listening")
    assert listening["socket_activated"] is True
    assert any(line["event"] == "idle_exit" for line in logs)


def test_sigterm_stops_cleanly_and_logs_hold_no_prompt_or_key(tmp_path, tiny_model):
    port = free_port()
    key, marker = "k-SECRET-7f3a", "PROMPT-MARKER-91b2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vps_appliance", "--config", str(config(tmp_path, tiny_model)),
         "--port", str(port)],
        stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
        env={"CEREBRUM_API_KEYS": key, "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        status, _ = call(url + "/v1/chat/completions",
                         {"messages": [{"role": "user", "content": marker}], "max_tokens": 4},
                         key=key)
        assert status == 200
        status, err = call(url + "/v1/models", key=key + "-wrong")
        assert status == 401 and key not in json.dumps(err)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        stderr = proc.communicate()[1]
    assert marker not in stderr and key not in stderr
    requests = [line for line in log_lines(stderr) if line["event"] == "request"]
    chat = next(line for line in requests if line["path"] == "/v1/chat/completions")
    assert chat["status"] == 200 and chat["prompt_tokens"] > 0 and "ttft_ms" in chat
    assert len(chat["request_id"]) == 32


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "::"]])
def test_refuses_a_public_address_without_a_key(tmp_path, tiny_model, args):
    proc = subprocess.run(
        [sys.executable, "-m", "vps_appliance", "--config", str(config(tmp_path, tiny_model)),
         "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2], env={})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CEREBRUM_API_KEYS" in lines[0] and "refusing" in lines[0]


def test_bad_config_is_one_line_naming_the_key(tmp_path, tiny_model):
    path = config(tmp_path, tiny_model, extra="max_queue = -1")
    proc = subprocess.run([sys.executable, "-m", "vps_appliance", "--config", str(path)],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2], env={})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cerebrum-backend: max_queue: must be between 0 and 10000, got -1"
