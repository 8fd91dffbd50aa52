"""Nothing from a prompt (nor a key) reaches either service's real log output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SECRETS = {
    "fence tag": "sk-live-FENCE0a1b2c",
    "file name": "secret_FILE3d4e5f",
    "instruction": "INSTRUCTION6g7h8i",
    "identifier": "IDENT9j0k1l",
    "system message": "SYSTEM2m3n4o",
    "prompt word": "PROMPT5p6q7r",
    "pinned model": "MODEL8s9t0u",
    "client key": "KEYv1w2x3y",
    "backend key": "BKEYz4a5b6c",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "process exited"
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def post(url: str, body: dict | bytes, key: str | None) -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def requests_with_secrets() -> list[tuple[str, dict | bytes]]:
    s = SECRETS
    code = "\n\n".join(f"def {s['identifier']}_{i}(x):\n    return x * {i}  # {s['prompt word']}"
                       for i in range(60))
    user = (f"In {s['file name']}.py, {s['instruction']}: refactor {s['identifier']}_3.\n"
            f"```{s['fence tag']}\n{code}\n```")
    messages = [{"role": "system", "content": s["system message"]},
                {"role": "user", "content": user}]
    return [
        ("/v1/chat/completions", {"messages": messages, "max_tokens": 4}),
        ("/v1/chat/completions", {"messages": messages, "max_tokens": 4, "stream": True}),
        ("/v1/chat/completions", {"messages": messages, "max_tokens": 4,
                                  "model": s["pinned model"]}),
        ("/v1/completions", {"prompt": user, "max_tokens": 4}),
        ("/v1/context/preview", {"messages": messages}),
        ("/v1/chat/completions", {"messages": messages, "max_tokens": 0}),
        ("/v1/chat/completions", f'{{"messages": "{s["prompt word"]}'.encode()),
    ]


def test_planted_secrets_never_reach_either_services_log(tmp_path, tiny_model):
    s = SECRETS
    bport, oport = free_port(), free_port()
    (tmp_path / "backend-keys").write_text(s["backend key"] + "\n")
    (tmp_path / "backend.toml").write_text(
        f'log_level = "debug"\napi_keys_file = "{tmp_path / "backend-keys"}"\n'
        f'[[models]]\nname = "tiny"\npath = "{tiny_model}"\nn_ctx = 4096\nn_threads = 2\n')
    (tmp_path / "orchestrator.toml").write_text(f"""
log_level = "debug"
[[backends]]
name = "local"
url = "http://127.0.0.1:{bport}"
api_key_file = "{tmp_path / "backend-keys"}"
[[routes]]
name = "qwen"
model = "tiny"
backends = ["local"]
languages = ["python"]
n_ctx = 4096
""")
    env = {**os.environ, "CEREBRUM_API_KEYS": s["client key"]}
    logs = {name: tmp_path / f"{name}.log" for name in ("backend", "orchestrator")}
    procs = []
    try:
        for name, module, port in (("backend", "vps_appliance", bport),
                                   ("orchestrator", "pi_appliance", oport)):
            with logs[name].open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", module, "--port", str(port), "--config",
                     str(tmp_path / f"{name}.toml")], stdout=out, stderr=out, env=env,
                    stdin=subprocess.DEVNULL))
        for proc, port in zip(procs, (bport, oport), strict=True):
            wait_up(f"http://127.0.0.1:{port}", proc)
        statuses = [post(f"http://127.0.0.1:{oport}{path}", body, s["client key"])
                    for path, body in requests_with_secrets()]
        # The orchestrator and the backend each saw the key-less and wrong-key variants too.
        statuses.append(post(f"http://127.0.0.1:{oport}/v1/chat/completions",
                             {"messages": [{"role": "user", "content": s["prompt word"]}]},
                             s["backend key"]))
        statuses.append(post(f"http://127.0.0.1:{bport}/v1/chat/completions",
                             {"messages": [{"role": "user", "content": s["prompt word"]}],
                              "max_tokens": 2}, s["backend key"]))
        assert statuses == [200, 200, 404, 200, 200, 400, 400, 401, 200]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    for name, path in logs.items():
        text = path.read_text(errors="replace")
        assert '"event": "request"' in text, f"no request lines in the {name} log"
        for where, secret in s.items():
            assert secret not in text, f"the {where} reached the {name} log"
