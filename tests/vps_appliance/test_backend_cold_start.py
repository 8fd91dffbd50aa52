"""Start-up stays lazy: a socket-activated backend answers `/health`, `/metrics` and
`/v1/models` without importing llama-cpp-python (nor numpy, nor jinja2); the first request
that needs a model imports them. The figures are `bench/coldstart.py`'s; this guards the
imports, not a timing.

The real entry point's app and server run in a fresh interpreter on an ephemeral loopback
socket (the way systemd hands one over), so nothing imported by this test process counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]  # raw_http.py

PROBE = textwrap.dedent("""
    import asyncio, json, os, socket, sys
    sys.path.insert(0, sys.argv[2])
    from raw_http import call
    from vps_appliance.http.app import make_app
    from vps_appliance.http.server import serve
    from vps_appliance.settings import load_settings

    HEAVY = ("llama_cpp", "numpy", "jinja2", "vps_appliance.engine",
             "vps_appliance.http.handlers")

    def loaded():
        return [m for m in HEAVY if m in sys.modules]

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        app = make_app(load_settings(sys.argv[1]))
        seen = {"at_start": loaded()}
        asyncio.create_task(serve(app, host="127.0.0.1", port=port, idle_exit=0, sock=sock))
        for path in ("/health", "/metrics", "/v1/models"):
            seen[path] = await call(port, path)
        seen["before_chat"] = loaded()
        body = json.dumps({"max_tokens": 2, "temperature": 0,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        seen["chat"] = (await call(port, "/v1/chat/completions", body))[0]
        seen["after_chat"] = loaded()
        seen["health_after"] = (await call(port, "/health"))[1]
        print(json.dumps(seen))
        sys.stdout.flush()
        os._exit(0)

    asyncio.run(main())
""")


def test_health_metrics_and_models_answer_before_llama_cpp_loads_and_a_completion_loads_it(
        tmp_path: Path, smollm2: Path) -> None:
    config = tmp_path / "backend.toml"
    config.write_text(f'[[models]]\nname = "smol"\npath = "{smollm2}"\nn_ctx = 512\n')
    done = subprocess.run([sys.executable, "-c", PROBE, str(config), str(TESTS)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["at_start"] == [] and seen["before_chat"] == []
    status, body = seen["/health"]
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body)["models"] == [
        {"name": "smol", "loaded": False, "busy": False, "waiting": 0, "sequences": 4,
         "in_use": 0, "prompt_tokens_pending": 0, "kv_cells": 512, "kv_cells_used": 0,
         "batch_tokens": 0}]
    assert seen["/metrics"][0] == "HTTP/1.1 200 OK"
    assert 'cerebrum_backend_model_loaded{model="smol"} 0.0' in seen["/metrics"][1]
    assert [m["id"] for m in json.loads(seen["/v1/models"][1])["data"]] == ["smol"]
    assert seen["chat"] == "HTTP/1.1 200 OK"
    assert {"llama_cpp", "vps_appliance.engine"} <= set(seen["after_chat"])
    assert json.loads(seen["health_after"])["models"][0]["loaded"] is True
