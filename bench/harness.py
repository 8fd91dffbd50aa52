"""What the benchmarks share: waiting for a service, and writing results as JSON and table."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp


async def wait_healthy(session: aiohttp.ClientSession, url: str,
                       proc: subprocess.Popen | None = None, timeout: float = 300) -> None:
    """Until GET url/health answers 200; RuntimeError if `proc` exits or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            async with session.get(url + "/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


def write_results(out: Path, stem: str, result: dict[str, Any], table: str) -> None:
    """bench/results/<stem>.json and <stem>.md, and the table on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print("\n" + table)
