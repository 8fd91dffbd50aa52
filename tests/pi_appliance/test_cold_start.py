"""Start-up stays lazy: a socket-activated orchestrator answers its first `/health` without
importing what only the work endpoints need (aiohttp's client, for the upstream session), and
the pipeline's worker is started, not waited for. The figures are `bench/coldstart.py`'s; this
guards the imports, not a timing.

Each check runs the real entry point's `serve` in a fresh interpreter on an ephemeral loopback
socket (the way systemd hands one over), so nothing imported by this test process counts.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]  # raw_http.py

PROBE = textwrap.dedent("""
    import asyncio, json, os, socket, sys
    sys.path.insert(0, sys.argv[2])
    from raw_http import call
    from pi_appliance.__main__ import serve
    from pi_appliance.settings import load_settings

    LAZY = ("aiohttp", "aiohttp.client", "aiohttp.connector")

    async def get(port, path, body=None):
        return (await call(port, path, body))[0]

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        at_import = [m for m in LAZY if m in sys.modules]
        asyncio.create_task(serve(load_settings(sys.argv[1]), sock))
        health = await get(port, "/health")  # queued in the backlog until uvicorn serves
        at_health = [m for m in LAZY if m in sys.modules]
        body = json.dumps({"model": "auto", "stream": False, "max_tokens": 1,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        chat = await get(port, "/v1/chat/completions", body)
        print(json.dumps({"at_import": at_import, "health": health, "at_health": at_health,
                          "chat": chat, "after_chat": [m for m in LAZY if m in sys.modules]}))
        sys.stdout.flush()
        os._exit(0)

    asyncio.run(main())
""")


def test_first_health_answered_without_aiohttps_client_which_loads_on_the_first_upstream_call(
        tmp_path):
    # The backend's port has nothing listening: the chat call fails upstream (502/503),
    # after opening the session, which is what loads aiohttp's client.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    config = tmp_path / "orchestrator.toml"
    config.write_text(f'default_route = "qwen"\n[[backends]]\nname = "vps"\nurl = "{url}"\n'
                      '[[routes]]\nname = "qwen"\nmodel = "m"\nbackends = ["vps"]\n'
                      'languages = ["python"]\n'
                      '[[routes]]\nname = "codellama"\nmodel = "m"\nbackends = ["vps"]\n'
                      'languages = ["rust"]\n')
    done = subprocess.run([sys.executable, "-c", PROBE, str(config), str(TESTS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["at_import"] == []
    assert seen["health"] == "HTTP/1.1 200 OK"
    assert seen["at_health"] == []
    assert seen["chat"].split()[1] in {"502", "503"}, seen["chat"]
    assert "aiohttp.client" in seen["after_chat"]  # the check can see the module when loaded
