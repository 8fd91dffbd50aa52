"""The REPL as a place to work on code, against the real services and the real
Qwen2.5-Coder-0.5B, in a real pseudo-terminal read through pyte: a follow-up carries the
first exchange, files are attached, diffed and applied after a confirmation, and pipe mode
prints a patch `git apply` takes. Asserted on structure (token counts, files, patches),
never on the model's wording."""


from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REAL_MODEL_CACHE
from harness import at_prompt, supervise
from screen import Screen

from repl import blocks
from vps_appliance import models

pytestmark = pytest.mark.slow
STATUS = re.compile(r"\[tiny · \S+ · .+ · \d+ tokens · .+\]")
APP = "def add(a, b):\n    return a + b\n\n\ndef main():\n    print(add(1, 2))\n"
RENAME = "Rename the function add to plus, everywhere in app.py."


@pytest.fixture(scope="module")
def qwen_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real backend with Qwen2.5-Coder-0.5B (128 tokens an answer) and the orchestrator."""
    model = models.resolve("qwen2.5-coder-0.5b-instruct", REAL_MODEL_CACHE)
    yield from supervise(tmp_path_factory.mktemp("qwen"), model, max_tokens=128)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository holding app.py, committed."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text(APP)
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["init", "-q"], ["add", "app.py"], ["commit", "-q", "-m", "app"]):
        subprocess.run(["git", *argv], cwd=root, check=True, env=env)
    return root


@pytest.fixture
def repl_in() -> Iterator:
    """Start the REPL in a directory, against an orchestrator, once it shows its prompt."""
    screens: list[Screen] = []

    def start(cwd: Path, url: str, *args: str) -> Screen:
        env = {**os.environ, "TERM": "xterm"}
        screen = Screen.spawn([sys.executable, "-m", "repl", "--url", url, *args],
                              cwd=str(cwd), env=env)
        screens.append(screen)
        screen.wait_for(at_prompt)
        return screen

    yield start
    for screen in screens:
        screen.close()


def ask(screen: Screen, prompt: str) -> None:
    """Send a prompt and wait for its answer's status line and the prompt after it."""
    screen.send(prompt + "\r")
    screen.wait_for(lambda s: STATUS.search(s.recent) and at_prompt(s), timeout=600)


def saved_conversations() -> list[dict]:
    directory = Path(os.environ["XDG_STATE_HOME"]) / "cerebrum" / "conversations"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


HISTORY_LINE = re.compile(r"^ +(\d+)\. (.*) · (\d+) tokens sent · (\d+) tokens answered$",
                          re.M)


def history(screen: Screen) -> list[tuple[int, str, int, int]]:
    """:history's lines, parsed: (n, prompt, tokens sent, tokens answered)."""
    screen.send(":history\r")
    screen.wait_for(lambda s: at_prompt(s) and (HISTORY_LINE.search(s.recent)
                                                or "no turns yet" in s.recent))
    return [(int(n), p, int(sent), int(got))
            for n, p, sent, got in HISTORY_LINE.findall(screen.recent)]


FIRST, FOLLOW_UP = "Write is_even(n) in Python. Only the code.", \
    "Now one pytest test for it. Only the code."


def test_a_follow_up_carries_the_first_exchange(qwen_services, repl_in, tmp_path):
    screen = repl_in(tmp_path, qwen_services[0])
    ask(screen, FIRST)
    ask(screen, FOLLOW_UP)
    turns = history(screen)
    assert [t[:2] for t in turns] == [(1, FIRST), (2, FOLLOW_UP)]
    (_, _, sent1, answered1), (_, _, sent2, _) = turns
    # The second request held the first prompt and the first answer: the backend counted
    # at least their tokens on top of the second prompt's.
    assert answered1 > 0 and sent2 > sent1 + answered1
    (saved,) = saved_conversations()
    assert [t["prompt"] for t in saved["turns"]] == [turns[0][1], turns[1][1]]
    assert saved["turns"][0]["answer"] and saved["turns"][0]["completion_tokens"] == answered1
    screen.send(":undo\r")
    screen.wait_for("1 turns left")
    assert [t[0] for t in history(screen)] == [1]
    screen.send(":new\r")
    screen.wait_for("new conversation")
    assert history(screen) == []
    screen.send(":resume\r")
    screen.wait_for(re.compile(r"  1\. \S+ \S+ · 1 turns · " + re.escape(FIRST)))
    screen.send(":resume 1\r")
    screen.wait_for(f"resumed: {FIRST} (1 turns")
    assert [t[:2] for t in history(screen)] == [(1, FIRST)]
    screen.send("\x04")
    assert screen.wait_exit() == 0


def test_add_diff_and_apply_after_a_confirmation(qwen_services, repl_in, project):
    screen = repl_in(project, qwen_services[0])
    screen.send(":add app.py missing.py\r")
    screen.wait_for("attached: app.py (6 lines)\nmissing.py: no such file")
    screen.send(":files\r")
    screen.wait_for(f"app.py · {len(APP)} bytes")
    ask(screen, RENAME)
    screen.send(":diff\r")
    screen.wait_for(lambda s: at_prompt(s) and "+++ b/app.py" in s.recent)
    assert re.search(r"^-def add\(a, b\):$", screen.recent, re.M)
    screen.send(":apply\r")
    screen.wait_for("write app.py (old kept as app.py.orig)? [y/N]")
    screen.send("n")
    screen.wait_for(lambda s: at_prompt(s) and "? [y/N] n\nnot written" in s.recent)
    assert (project / "app.py").read_text() == APP and not (project / "app.py.orig").exists()
    screen.send(":apply\r")
    screen.wait_for("? [y/N]")
    screen.send("y")
    screen.wait_for("wrote app.py (the old one is app.py.orig)")
    screen.wait_for(at_prompt)
    (saved,) = saved_conversations()
    (_, block), = blocks.pairs(saved["turns"][-1]["answer"], ["app.py"])
    assert (project / "app.py").read_text() == block.text + "\n"
    assert (project / "app.py.orig").read_text() == APP
    assert saved["turns"][-1]["files"] == ["app.py"]
    screen.send(":diff\r")  # applied: nothing left to change
    screen.wait_for("app.py: no changes")
    screen.send(":quit\r")
    assert screen.wait_exit() == 0


def test_pipe_mode_with_files_prints_a_patch_git_applies(qwen_services, project):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "repl", "--url", qwen_services[0], *args],
                              capture_output=True, text=True, timeout=600, cwd=project,
                              env={**os.environ},
                              stdin=subprocess.DEVNULL)

    done = run("-m", RENAME, "--diff", "app.py")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n")
    subprocess.run(["git", "apply", "--check"], input=done.stdout, text=True, cwd=project,
                   check=True)
    subprocess.run(["git", "apply"], input=done.stdout, text=True, cwd=project, check=True)
    assert (project / "app.py").read_text() != APP
    answer = run("-m", "What does main print? One word.", "app.py")
    assert answer.returncode == 0 and answer.stdout.strip() and answer.stderr == ""
    for args, message in [(("-m", "x", "--diff"), "--diff needs the files to diff against"),
                          (("-m", "x", "nope.py"), "nope.py: no such file"),
                          (("--diff", "app.py"), "--diff needs -m/--message")]:
        bad = run(*args)
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.startswith("cerebrum: " + message) and bad.stderr.count("\n") == 1
