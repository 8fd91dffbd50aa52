"""The history file: private (0600 in a 0700 directory) and replaced atomically, also when
several REPLs save at the same time."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from repl import history

ROOT = Path(__file__).parents[2]


def test_file_is_0600_and_directory_0700_whatever_the_umask(tmp_path):
    path = tmp_path / "state" / "cerebrum" / "history"
    umask = os.umask(0o022)
    try:
        history.save(path, ("secret prompt",))
        history.save(path, ("secret prompt", "another"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert history.load(path) == ("secret prompt", "another")


def test_concurrent_saves_from_threads_leave_one_whole_version(tmp_path):
    path = tmp_path / "cerebrum" / "history"
    versions = {i: tuple(f"prompt {i} line {n}\nsecond" for n in range(200)) for i in range(8)}
    errors: list[BaseException] = []

    def saver(i: int) -> None:
        try:
            for _ in range(25):
                history.save(path, versions[i])
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=saver, args=(i,)) for i in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert history.load(path) in versions.values()
    assert [p.name for p in path.parent.iterdir()] == ["history"]


def test_concurrent_saves_from_processes_leave_one_whole_version(tmp_path):
    path = tmp_path / "cerebrum" / "history"
    code = ("import sys; from pathlib import Path; from repl import history\n"
            "entries = tuple(f'{sys.argv[1]} {n}' for n in range(500))\n"
            "for _ in range(40): history.save(Path(sys.argv[2]), entries)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"repl{i}", str(path)], cwd=ROOT)
             for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    loaded = history.load(path)
    assert len(loaded) == 500 and len({e.split()[0] for e in loaded}) == 1
    assert [p.name for p in path.parent.iterdir()] == ["history"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_save_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "cerebrum" / "history"
    path.mkdir(parents=True)  # a directory where the file should be: the rename fails
    with pytest.raises(OSError):
        history.save(path, ("x",))
    assert [p.name for p in path.parent.iterdir()] == ["history"]
