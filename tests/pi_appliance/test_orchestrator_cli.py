"""`cerebrum-orchestrator` and `make serve`'s supervisor as processes: socket activation,
idle exit, the exposure guard, and a clean stop of both services."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data),
                                    timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_up(url: str, proc: subprocess.Popen, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "process exited"
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def orchestrator_config(tmp_path: Path, backend_port: int, model: str = "tiny") -> Path:
    path = tmp_path / "orchestrator.toml"
    path.write_text(f"""
[[backends]]
name = "local"
url = "http://127.0.0.1:{backend_port}"
[[routes]]
name = "qwen"
model = "{model}"
backends = ["local"]
languages = ["python"]
n_ctx = 1024
""")
    return path


def test_socket_activation_then_idle_exit(tmp_path):
    assert SOCKET_ACTIVATE, "needs systemd-socket-activate: apt-get install systemd"
    port = free_port()
    proc = subprocess.Popen(
        [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "-E", "PYTHONPATH", sys.executable, "-m",
         "pi_appliance", "--config", str(orchestrator_config(tmp_path, free_port())),
         "--idle-exit", "1.5"],
        stderr=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})
    try:
        wait_up(f"http://127.0.0.1:{port}", proc)
        status, body = get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        stderr = proc.communicate()[1]
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "listening" and e["socket_activated"] for e in events)
    assert any(e["event"] == "idle_exit" for e in events)


def test_refuses_a_public_address_without_a_key(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pi_appliance", "--host", "0.0.0.0",
                           "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env={})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "refusing to listen on 0.0.0.0" in proc.stderr


def read_lines(stream) -> tuple[queue.Queue[str | None], threading.Thread]:
    """Lines of `stream` as they come, read by a thread (None at the end), so that waiting
    for one can time out; the thread also keeps the pipe drained."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_serve_runs_both_services_and_sigterm_stops_everything(tmp_path, tiny_model):
    backend_port, orch_port = free_port(), free_port()
    backend_cfg = tmp_path / "backend.toml"
    backend_cfg.write_text(f'[[models]]\nname = "tiny"\npath = "{tiny_model}"\nn_ctx = 1024\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerebrum.supervise", "--backend-config", str(backend_cfg),
         "--orchestrator-config", str(orchestrator_config(tmp_path, backend_port)),
         "--backend-port", str(backend_port), "--orchestrator-port", str(orch_port)],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        start_new_session=True)  # its own process group: a failed test kills the services too
    lines, pump = read_lines(proc.stderr)  # the supervisor says when both are healthy
    try:
        seen: list[str] = []
        # The services write to the same pipe, so the supervisor's line can land in the
        # middle of one of theirs: look for it anywhere in a line.
        while not any("cerebrum: ready" in line for line in seen):
            try:
                line = lines.get(timeout=120)  # a hang: fail, don't wait
            except queue.Empty:
                raise AssertionError(f"nothing from the supervisor for 120 s: {seen[-5:]}"
                                     ) from None
            assert line is not None, f"supervisor exited before ready: {seen[-5:]}"
            seen.append(line)
        status, body = get(f"http://127.0.0.1:{orch_port}/v1/chat/completions",
                           {"messages": [{"role": "user", "content": "def f(): pass"}],
                            "max_tokens": 3})
        assert status == 200 and json.loads(body)["cerebrum"]["backend"] == "local"
        children = _children(proc.pid)
        assert len(children) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        # The services share the supervisor's stderr: were they left running, the pipe would
        # never close and the pump would block the close below for ever.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pump.join(timeout=10)
        proc.stderr.close()
    assert not any(_alive(pid) for pid in children)
    for port in (backend_port, orch_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening


def test_logs_carry_the_request_id_and_never_the_prompt(tmp_path):
    port, marker = free_port(), "PROMPT-MARKER-5c1e"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pi_appliance", "--config",
         str(orchestrator_config(tmp_path, free_port())), "--port", str(port)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env={})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        req = urllib.request.Request(
            url + "/v1/chat/completions", headers={"X-Request-ID": "rid-77"},
            data=json.dumps({"messages": [{"role": "user", "content": marker}]}).encode())
        try:
            urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as exc:
            assert exc.code == 502  # nothing listens on the backend port
            assert exc.headers["X-Request-ID"] == "rid-77"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        stderr = proc.communicate()[1]
    assert marker not in stderr
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    failed = next(e for e in events if e["event"] == "upstream_failed")
    assert failed["request_id"] == "rid-77" and failed["breaker"] == "closed"
    request = next(e for e in events if e["event"] == "request" and e["status"] == 502)
    assert request["request_id"] == "rid-77" and request["route"] == "qwen"
