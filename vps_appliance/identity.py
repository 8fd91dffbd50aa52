"""What the backend tells clients about each model: `created` in /v1/models, and the
`system_fingerprint` of every response (OpenAI: which backend configuration answered, to
read alongside `seed`).

The fingerprint hashes the model's bytes (a packaged model's pinned sha256; for a model given
by path, its path, size and modification time: hashing gigabytes at start-up is not worth
it), the llama.cpp build, and the settings that change the numbers it computes. It is stable
across restarts and changes when any of them does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .models import PACKAGED
from .settings import ModelSpec


@dataclass(frozen=True)
class ModelIdentity:
    """One model's `created` (Unix seconds) and `system_fingerprint`."""

    created: int
    fingerprint: str


def llama_build() -> str:
    """The llama-cpp-python release (it pins the llama.cpp build it bundles)."""
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "unknown"


def identity(spec: ModelSpec, started: int, build: str,
             stat: Callable[[Path], tuple[int, int]] | None = None) -> ModelIdentity:
    """The identity of `spec`; `started` stands in for `created` when there is no file to
    date; `stat` gives a path's (size, mtime_ns), or raises OSError."""
    created = started
    if spec.source is not None:
        content = PACKAGED[spec.source].sha256
    else:
        assert spec.path is not None
        content = str(spec.path)
        try:
            size, mtime_ns = (stat or _stat)(spec.path)
        except OSError:
            pass  # not there yet: loading it will say so
        else:
            content += f":{size}:{mtime_ns}"
            created = mtime_ns // 1_000_000_000
    facts = {"model": content, "build": build, "chat_format": spec.chat_format,
             "flash_attn": spec.flash_attn, "weight_repack": spec.weight_repack,
             "n_batch": spec.n_batch}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return ModelIdentity(created=created, fingerprint=f"fp_{digest[:12]}")


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
