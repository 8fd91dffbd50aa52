"""deploy/systemd: the units verify without a warning, and both services run under
`systemd-socket-activate` exactly as the units start them, up to an idle exit."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED_BIN = "/opt/cerebrum/.venv/bin"  # where the units expect the installed venv
VENV_BIN = Path(sys.executable).parent  # this test run's venv: the same console scripts
ANALYZE = shutil.which("systemd-analyze")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
SERVICES = ("cerebrum-backend", "cerebrum-orchestrator")
HARDENING = ("DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
             "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources",
             "LockPersonality=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
             "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "RestrictNamespaces=yes",
             "RestrictRealtime=yes", "CapabilityBoundingSet=", "UMask=0077",
             "MemoryDenyWriteExecute=yes")

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(path: Path) -> Unit:
    """A unit file's sections as ordered (key, value) lists; keys may repeat."""
    unit: Unit = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}: continuation lines are not parsed here"
        if line.startswith("["):
            section = line.strip("[]")
            unit.setdefault(section, [])
            continue
        assert section is not None, f"{path.name}: {line!r} outside a section"
        key, _, value = line.partition("=")
        unit[section].append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def installed_copies(tmp_path: Path) -> Path:
    """The units, rewritten to run this venv's console scripts instead of /opt/cerebrum's."""
    out = tmp_path / "units"
    out.mkdir()
    for path in UNITS.glob("cerebrum-*"):
        text = path.read_text()
        if path.suffix == ".service":
            assert INSTALLED_BIN in text
            text = text.replace(INSTALLED_BIN, str(VENV_BIN))
        (out / path.name).write_text(text)
    return out


def verify(units: Path) -> str:
    """Everything `systemd-analyze verify` prints about the units ('' when they are clean).

    It exits 0 on an unknown key and only warns, so any output at all is a failure."""
    assert ANALYZE, "needs systemd-analyze: apt-get install systemd"
    proc = subprocess.run([ANALYZE, "verify", "--man=no", *sorted(map(str, units.iterdir()))],
                          capture_output=True, text=True, timeout=120)
    said = (proc.stdout + proc.stderr).strip()
    return said if proc.returncode == 0 else f"{said}\n(exit status {proc.returncode})"


def test_units_verify_without_a_single_warning(tmp_path):
    assert verify(installed_copies(tmp_path)) == ""


@pytest.mark.parametrize("name, good, bad", [
    ("cerebrum-backend.service", "ProtectHome=", "ProtectHom="),
    ("cerebrum-orchestrator.socket", "ListenStream=", "ListenStrem="),
])
def test_the_check_catches_a_misspelt_key(tmp_path, name, good, bad):
    units = installed_copies(tmp_path)
    text, count = re.subn(rf"^{good}", bad, (units / name).read_text(), count=1, flags=re.M)
    assert count == 1
    (units / name).write_text(text)
    said = verify(units)
    assert f"Unknown key '{bad[:-1]}'" in said


def test_the_check_catches_a_missing_program(tmp_path):
    # The shipped units themselves: /opt/cerebrum is not installed on this machine.
    units = tmp_path / "shipped"
    shutil.copytree(UNITS, units, ignore=shutil.ignore_patterns("*.example", "*.md"))
    assert f"{INSTALLED_BIN}/cerebrum-backend is not executable" in verify(units)


@pytest.mark.parametrize("service", SERVICES)
def test_services_are_hardened_and_load_keys_as_credentials(tmp_path, service):
    unit = parse_unit(UNITS / f"{service}.service")
    lines = {f"{k}={v}" for k, v in unit["Service"]}
    assert not set(HARDENING) - lines
    (exec_start,) = values(unit, "Service", "ExecStart")
    assert exec_start.startswith(INSTALLED_BIN + "/") and "--idle-exit" in exec_start
    assert "api-keys:/etc/cerebrum/api-keys" in values(unit, "Service", "LoadCredential")
    prefix = "CEREBRUM_BACKEND_" if service == "cerebrum-backend" else "CEREBRUM_ORCHESTRATOR_"
    assert f"{prefix}API_KEYS_FILE=%d/api-keys" in values(unit, "Service", "Environment")
    # systemd's own score: 0 (locked down) to 10 (exposed); 2.0 and under reads "OK".
    assert ANALYZE, "needs systemd-analyze: apt-get install systemd"
    path = installed_copies(tmp_path) / f"{service}.service"
    proc = subprocess.run([ANALYZE, "security", "--offline=yes",
                           "--threshold=20", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert re.search(r"Overall exposure level for \S+: [01]\.\d OK", proc.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answers(url: str) -> bool:
    """Whether GET url answers 200 (False while nothing listens yet)."""
    try:
        return call(url)[0] == 200
    except urllib.error.URLError:
        return False


def specifier(value: str, table: dict[str, str]) -> str:
    """Expand the unit specifiers the services use (%d credentials, %C and %S roots)."""

    def one(match: re.Match[str]) -> str:
        assert match.group(1) in table, f"specifier %{match.group(1)} is not emulated here"
        return table[match.group(1)]

    return re.sub(r"%(.)", one, value)


def as_the_units_start(name: str, tmp_path: Path, files: dict[str, Path],
                       idle_exit: str) -> tuple[list[str], int]:
    """The `systemd-socket-activate` command for a socket/service pair, and its port.

    Paths under /etc/cerebrum (config, credentials) become the test's `files`, the installed
    venv this one, the socket's port an ephemeral one and --idle-exit `idle_exit`; systemd's
    credential copy and cache directory are done here as systemd does them."""
    sock, service = parse_unit(UNITS / f"{name}.socket"), parse_unit(UNITS / f"{name}.service")
    (listen,) = values(sock, "Socket", "ListenStream")
    host, _, _ = listen.rpartition(":")
    assert host == "127.0.0.1", "the shipped socket listens on loopback"
    port = free_port()
    credentials = tmp_path / "credentials" / f"{name}.service"
    credentials.mkdir(parents=True)
    for entry in values(service, "Service", "LoadCredential"):
        ident, _, source = entry.partition(":")
        shutil.copy(files[source], credentials / ident)
    roots = {"C": tmp_path / "var-cache", "S": tmp_path / "var-lib"}
    for key, root in (("CacheDirectory", roots["C"]), ("StateDirectory", roots["S"])):
        for directory in values(service, "Service", key):
            (root / directory).mkdir(parents=True)
    table = {"d": str(credentials), "%": "%", **{k: str(v) for k, v in roots.items()}}
    env = [word for line in values(service, "Service", "Environment")
           for word in shlex.split(specifier(line, table))]
    (exec_start,) = values(service, "Service", "ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0].startswith(INSTALLED_BIN + "/"), "ExecStart runs the installed program"
    argv[0] = str(VENV_BIN / Path(argv[0]).name)
    argv = [str(files[arg]) if arg in files else arg for arg in argv]
    argv[argv.index("--idle-exit") + 1] = idle_exit
    setenv = [arg for pair in env for arg in ("-E", pair)]
    return [SOCKET_ACTIVATE or "", "-l", f"127.0.0.1:{port}", *setenv, *argv], port


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_services_run_as_the_units_start_them_then_exit_when_idle(tmp_path, tiny_model):
    assert SOCKET_ACTIVATE, "needs systemd-socket-activate: apt-get install systemd"
    backend_key, client_key = "k-backend-4d1e", "k-client-9a07"
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "backend-api-keys").write_text(f"# the orchestrator's key\n{backend_key}\n")
    (etc / "orchestrator-api-keys").write_text(f"{client_key}\n")
    (etc / "upstream-key").write_text(f"{backend_key}\n")
    # The example configs, with the tiny model in place of the packaged one.
    backend_example = (UNITS / "backend.toml.example").read_text()
    (etc / "backend.toml").write_text(
        backend_example.split("[[models]]")[0]
        + f'[[models]]\nname = "tiny"\npath = "{tiny_model}"\nn_ctx = 1024\nn_threads = 2\n')
    backend_cmd, backend_port = as_the_units_start("cerebrum-backend", tmp_path, {
        "/etc/cerebrum/backend.toml": etc / "backend.toml",
        "/etc/cerebrum/api-keys": etc / "backend-api-keys"}, idle_exit="3")
    orchestrator_example = (UNITS / "orchestrator.toml.example").read_text()
    credentials = tmp_path / "credentials" / "cerebrum-orchestrator.service"
    (etc / "orchestrator.toml").write_text(
        orchestrator_example.replace("http://vps.tailnet.ts.net:9000",
                                     f"http://127.0.0.1:{backend_port}")
        .replace('"qwen2.5-coder-0.5b-instruct"', '"tiny"')
        .replace("/run/credentials/cerebrum-orchestrator.service", str(credentials)))
    orchestrator_cmd, port = as_the_units_start("cerebrum-orchestrator", tmp_path, {
        "/etc/cerebrum/orchestrator.toml": etc / "orchestrator.toml",
        "/etc/cerebrum/api-keys": etc / "orchestrator-api-keys",
        "/etc/cerebrum/upstream-key": etc / "upstream-key"}, idle_exit="3")
    clean = {"PATH": "/usr/bin:/bin"}  # systemd starts services with a clean environment
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=clean)
             for cmd in (backend_cmd, orchestrator_cmd)]
    stderr = []
    try:
        # The first connection starts the orchestrator (and its pipeline worker); retried
        # while systemd-socket-activate has not bound the socket yet.
        health = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 60
        while not answers(health):
            assert time.monotonic() < deadline, "the orchestrator's socket never answered"
            time.sleep(0.05)
        # A scrape starts the backend but loads no model (so a rare one costs little).
        scrape = urllib.request.Request(f"http://127.0.0.1:{backend_port}/metrics",
                                        headers={"Authorization": f"Bearer {backend_key}"})
        with urllib.request.urlopen(scrape, timeout=120) as resp:
            assert 'cerebrum_backend_model_loaded{model="tiny"} 0.0' in resp.read().decode()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": "def f(): pass"}], "max_tokens": 3}
        # The first connection starts the orchestrator, whose first upstream call the backend.
        status, answer = call(url, body, key=client_key)
        assert status == 200, answer
        stats = answer["cerebrum"]
        assert stats["backend"] == "vps" and stats["model"] == "tiny" and "ttft_ms" in stats
        assert answer["usage"]["completion_tokens"] <= 3
        status, _ = call(url, body, key=backend_key)  # a backend key is no client key
        assert status == 401
        status, _ = call(f"http://127.0.0.1:{backend_port}/v1/models", key=client_key)
        assert status == 401
        # Then nothing: both exit cleanly by themselves, freeing the model's RAM.
        assert [proc.wait(timeout=60) for proc in procs] == [0, 0]
    finally:
        for proc in procs:
            proc.kill()
            stderr.append(proc.communicate()[1])
    for text in stderr:
        logs = log_lines(text)
        assert any(e["event"] == "listening" and e["socket_activated"] for e in logs), text
        assert any(e["event"] == "idle_exit" for e in logs), text
        assert backend_key not in text and client_key not in text
