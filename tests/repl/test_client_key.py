"""The client's key: CEREBRUM_CLIENT_KEY or --key-file, sent to a real orchestrator that
demands one; the services' look-alike variables get a hint and are never sent."""

# ruff: noqa: F811  (pytest fixtures imported from harness are test arguments)
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from harness import (  # fixtures, used by name as arguments
    KEY,
    PROMPT,
    ROOT,
    at_prompt,
    keyed_services,  # noqa: F401
    launch,  # noqa: F401
    spawn,  # noqa: F401
)

from repl import key
from repl.errors import BadSetting

STATUS = re.compile(r"\[tiny · \S+ · .+ · \d+ tokens · .+\]")
REFUSED = "orchestrator error 401: missing or invalid API key"


def pipe(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repl", "--url", url, "-m", "x = 1", *args],
                          input="", capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **env})


def test_the_key_comes_from_the_key_file_or_the_client_variable(tmp_path):
    path = tmp_path / "key"
    path.write_text("# mine\n\n  k1  \nk2\n")
    assert key.client_key({key.VARIABLE: "env"}, path) == "k1"
    assert key.client_key({key.VARIABLE: " env "}, None) == "env"
    assert key.client_key({"CEREBRUM_API_KEYS": "a,b", "CEREBRUM_API_KEY": "c"}, None) is None
    with pytest.raises(BadSetting, match="--key-file: cannot read"):
        key.client_key({}, tmp_path / "missing")
    (tmp_path / "empty").write_text("# none\n")
    with pytest.raises(BadSetting, match="--key-file: no key in"):
        key.client_key({}, tmp_path / "empty")


def test_a_look_alike_variable_gets_a_hint_only_when_no_key_is_set():
    assert key.hint({}, None) is None
    assert key.hint({"CEREBRUM_API_KEYS": "a"}, "mine") is None
    for name in ("CEREBRUM_API_KEYS", "CEREBRUM_API_KEY"):
        line = key.hint({name: "a"}, None)
        assert line is not None and "\n" not in line
        assert line.startswith(f"cerebrum: {name} ") and "CEREBRUM_CLIENT_KEY=" in line


def test_pipe_mode_sends_the_client_key(keyed_services, tmp_path):
    url = keyed_services[0]
    assert pipe(url, CEREBRUM_CLIENT_KEY=KEY).returncode == 0
    (tmp_path / "key").write_text(f"{KEY}\n")
    done = pipe(url, "--key-file", str(tmp_path / "key"))
    assert done.returncode == 0 and done.stdout and done.stderr == ""
    refused = pipe(url, CEREBRUM_CLIENT_KEY="wrong")
    assert refused.returncode == 1 and refused.stderr.startswith(f"cerebrum: {REFUSED}")
    assert refused.stderr.count("\n") == 1


@pytest.mark.parametrize("name", ["CEREBRUM_API_KEYS", "CEREBRUM_API_KEY"])
def test_pipe_mode_hints_at_the_right_variable_and_sends_no_key(keyed_services, name):
    done = pipe(keyed_services[0], **{name: KEY})
    assert done.returncode == 1 and done.stdout == ""
    hint, error = done.stderr.splitlines()
    assert hint.startswith(f"cerebrum: {name} ") and "set CEREBRUM_CLIENT_KEY=" in hint
    assert error.startswith(f"cerebrum: {REFUSED}")


def test_an_unreadable_key_file_is_one_line_and_exit_2(keyed_services, tmp_path):
    done = pipe(keyed_services[0], "--key-file", str(tmp_path / "missing"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("cerebrum: --key-file: cannot read ")
    assert done.stderr.count("\n") == 1


def test_the_repl_hints_and_then_works_with_the_client_key(keyed_services, spawn):
    screen = spawn(keyed_services[0], CEREBRUM_API_KEYS=KEY)
    assert "CEREBRUM_API_KEYS" in screen.lines[0] and "CEREBRUM_CLIENT_KEY" in screen.lines[0]
    screen.send("x = 1\r")
    screen.wait_for(f"{PROMPT} x = 1\nerror: {REFUSED}")
    screen.wait_for(at_prompt)
    screen = spawn(keyed_services[0], CEREBRUM_CLIENT_KEY=KEY)
    screen.send("x = 1\r")
    screen.wait_for(STATUS)
    assert "CEREBRUM_API_KEYS" not in screen.text and "error" not in screen.text
