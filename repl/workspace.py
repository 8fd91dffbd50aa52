"""Writing answers back to disk: where a file may be written, its backup, an atomic write.

A path the user typed in the command (`:apply PATH`, `:save PATH`) is theirs to choose. A
path that comes from elsewhere (an attached file matched to the answer by name) must resolve,
links followed, inside the working directory. Before a file is replaced its old content is
copied to `PATH.orig` (replacing an older backup), so one apply can always be undone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ReplError

BACKUP_SUFFIX = ".orig"


class NotWritten(ReplError):
    """A file was not written (outside the working directory, or an OS error)."""


def target(cwd: Path, name: str, *, explicit: bool) -> Path:
    """The absolute path to write `name` to; NotWritten when an implicit one leaves `cwd`."""
    path = Path(os.path.normpath(cwd / name))
    if not explicit:
        real, root = path.resolve(), cwd.resolve()
        if real != root and root not in real.parents:
            raise NotWritten(f"{name}: outside the working directory {cwd}; name it "
                             "explicitly to write there")
    return path


def backup_of(path: Path) -> Path:
    """Where the old content of `path` is kept."""
    return path.with_name(path.name + BACKUP_SUFFIX)


def read_current(path: Path) -> str | None:
    """The file's text now, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotWritten(f"{path}: cannot read it ({type(exc).__name__})") from None


def write(path: Path, text: str) -> Path | None:
    """Replace the file with `text` (atomically, keeping its mode), the old one copied to
    its backup first; the backup's path, or None for a new file."""
    backup = None
    try:
        mode = None
        if path.exists():
            backup = backup_of(path)
            shutil.copy2(path, backup)
            mode = path.stat().st_mode & 0o7777
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise NotWritten(f"{path}: not written ({exc.strerror or type(exc).__name__})"
                         ) from None
    return backup


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
