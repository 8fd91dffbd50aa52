"""The REPL's private state on disk: `$XDG_STATE_HOME/cerebrum/`, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def state_dir() -> Path:
    """Where the REPL keeps its state ($XDG_STATE_HOME, default ~/.local/state)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cerebrum"


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, private and atomically.

    Prompts and answers are private: the directory is created 0700 and the file is 0600
    whatever the umask. The data goes to a temporary file of a unique name beside `path`,
    then replaces it in one rename, so REPLs saving at the same time never share a temporary
    file and a reader sees one whole version or the other.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates it 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
