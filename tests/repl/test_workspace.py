"""Answers back to disk: an implicit path never leaves the working directory, the old file
is kept as PATH.orig, the write is atomic and keeps the mode; the workbench's commands."""

from __future__ import annotations

import os
import stat

import pytest

from repl import workspace
from repl.client import Answer
from repl.errors import ReplError
from repl.workbench import Workbench, paths, write


def test_an_implicit_path_stays_inside_the_working_directory(tmp_path):
    cwd = tmp_path / "project"
    (cwd / "sub").mkdir(parents=True)
    assert workspace.target(cwd, "sub/a.py", explicit=False) == cwd / "sub" / "a.py"
    for name in ("../x.py", str(tmp_path / "x.py"), "sub/../../x.py"):
        with pytest.raises(workspace.NotWritten, match="outside the working directory"):
            workspace.target(cwd, name, explicit=False)
        assert workspace.target(cwd, name, explicit=True) == tmp_path / "x.py"
    (cwd / "link").symlink_to(tmp_path)  # a link out of it is out of it
    with pytest.raises(workspace.NotWritten):
        workspace.target(cwd, "link/x.py", explicit=False)


def test_write_keeps_a_backup_and_the_mode(tmp_path):
    path = tmp_path / "run.sh"
    path.write_text("old\n")
    path.chmod(0o750)
    assert workspace.write(path, "new\n") == tmp_path / "run.sh.orig"
    assert path.read_text() == "new\n" and (tmp_path / "run.sh.orig").read_text() == "old\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert workspace.write(path, "newer\n") == tmp_path / "run.sh.orig"
    assert (tmp_path / "run.sh.orig").read_text() == "new\n"  # the version before this write
    umask = os.umask(0o022)
    try:
        assert workspace.write(tmp_path / "fresh.py", "x\n") is None
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "fresh.py").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.py", "run.sh", "run.sh.orig"]


def answered(work: Workbench, prompt: str, text: str) -> None:
    work.finish(prompt, Answer(text=text, tokens=5, prompt_tokens=50))


def test_workbench_attach_ask_diff_apply_undo(tmp_path):
    cwd, saved = tmp_path / "p", tmp_path / "state"
    cwd.mkdir()
    (cwd / "app.py").write_text("def f():\n    return 1\n")
    work = Workbench(cwd, saved)
    assert work.attach(["app.py", "nope.py", "app.py"]) == [
        "attached: app.py (2 lines)", "nope.py: no such file", "still attached: app.py (2 lines)"]
    sent = work.messages("make f async")
    assert sent[-1]["content"] == ("make f async\n\n```py app.py\ndef f():\n    return 1\n```")
    answered(work, "make f async", "```python app.py\nasync def f():\n    return 1\n```")
    (change,) = work.changes("", writing=True)
    assert change.diff.endswith("-def f():\n+async def f():\n     return 1\n")
    assert write([change]) == ["wrote app.py (the old one is app.py.orig)"]
    assert (cwd / "app.py").read_text() == "async def f():\n    return 1\n"
    assert work.changes("", writing=False)[0].diff == ""  # applied: nothing left to change
    answered(work, "now g", "```python\ndef g():\n```")
    assert [m["role"] for m in work.messages("x")] == ["system"] + ["user", "assistant"] * 2 \
        + ["user"]
    assert work.undo().startswith("dropped the last exchange (now g); 1 turns left")
    assert work.conv.last_answer.startswith("```python app.py")
    assert work.drop([]) == "dropped: app.py" and work.files_text().startswith("no files")
    with pytest.raises(ReplError, match="no file attached"):
        work.changes("", writing=False)
    assert write(work.changes("copy.py", writing=True)) == ["wrote copy.py"]


def test_workbench_resume_reopens_a_saved_conversation_with_its_files(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = Workbench(tmp_path, tmp_path / "state")
    first.attach(["a.py"])
    answered(first, "explain", "it sets x")
    second = Workbench(tmp_path, tmp_path / "state")
    assert second.resume("").startswith("  1. ")
    assert second.resume("1") == ("resumed: explain (1 turns; :history lists them)\n"
                                  "attached: a.py (1 lines)")
    assert second.conv == first.conv
    with pytest.raises(ReplError, match="no conversation 2: :resume lists 1"):
        second.resume("2")


def test_a_cut_off_block_is_not_written(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    work = Workbench(tmp_path, tmp_path / "state")
    work.attach(["a.py"])
    answered(work, "change it", "```python\nx = 2\n")
    assert write(work.changes("", writing=True)) == [
        "a.py: not written: the answer's code block is cut off (no closing fence)"]
    assert (tmp_path / "a.py").read_text() == "x = 1\n"


def test_paths_are_split_as_a_shell_would():
    assert paths("a.py 'my file.py' b\\ c.py") == ["a.py", "my file.py", "b c.py"]
    with pytest.raises(ReplError, match="cannot read the paths: No closing quotation"):
        paths("'a.py")
