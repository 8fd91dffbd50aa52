"""How the real coding agents are run against a server: Codex CLI (`codex exec`), Claude
Code (`claude -p`) and aider (`aider --message`), each non-interactively, in a clean
environment of its own (its own home, no proxy: nothing leaves this machine).

Used by the live tests (tests/test_real_agents.py) and by the recorder of their requests
(tests/data/wire/agents/record_agents.py). `make test`'s set-up installs them: Codex CLI and
Claude Code with npm into .agents/, aider into a venv of its own, .agents/aider/; CODEX,
CLAUDE and AIDER name others.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AGENTS_DIR = ROOT / ".agents"
BINARIES = {  # the variable naming another binary, and where the set-up installs it
    "codex": ("CODEX", AGENTS_DIR / "node_modules/.bin/codex"),
    "claude": ("CLAUDE", AGENTS_DIR / "node_modules/.bin/claude"),
    "aider": ("AIDER", AGENTS_DIR / "aider/bin/aider"),
}
INHERITED = ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME", "SHELL")


def find(name: str) -> str | None:
    """The agent's binary: as its variable says, where the set-up put it, or on PATH."""
    variable, default = BINARIES[name]
    found = os.environ.get(variable) or (str(default) if default.exists() else None)
    return found or shutil.which(default.name)


def version(binary: str) -> str:
    """What `binary --version` prints last."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60,
                         check=False)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[-1] if lines else "?"


def repository(root: Path, files: dict[str, str], message: str = "start") -> Path:
    """A git repository of `files` under `root`/repo, committed with `message`."""
    repo = root / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    git = ["git", "-c", "user.name=Recorder", "-c", "user.email=recorder@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", *files], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=repo, check=True)
    return repo


@dataclass
class Setup:
    """How an agent is run: its command, environment, version, and the files written for it
    (shown in a recording)."""

    argv: list[str]
    env: dict[str, str]
    version: str
    files: dict[str, str] = field(default_factory=dict)


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: the agent's own home, no proxy (nothing leaves this machine)."""
    home.mkdir(exist_ok=True)
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               NO_COLOR="1", CI="1")
    return env


def _binary(name: str) -> str:
    found = find(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed: `make test`'s set-up installs it "
                                f"into .agents/, or set {BINARIES[name][0]}")
    return found


def codex(root: Path, repo: Path, url: str, model: str, prompt: str, key: str = "test",
          *options: str) -> Setup:
    """Codex CLI's `exec` (non-interactive), on a provider of its own at `url` (the
    server's root) speaking the Responses API."""
    binary = _binary("codex")
    home = root / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f"""\
model = "{model}"
model_provider = "cerebrum"
check_for_update_on_startup = false

[model_providers.cerebrum]
name = "Cerebrum"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "CEREBRUM_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
""")
    env = base_env(root / "home") | {"CODEX_HOME": str(home), "CEREBRUM_API_KEY": key}
    argv = [binary, "exec", "--skip-git-repo-check", "--ephemeral", "--sandbox", "read-only",
            "--color", "never", *options, "-C", str(repo), prompt]
    return Setup(argv, env, version(binary),
                 {"$CODEX_HOME/config.toml": (home / "config.toml").read_text()})


def claude_code(root: Path, repo: Path, url: str, model: str, prompt: str, key: str = "test",
                *options: str) -> Setup:
    """Claude Code's print mode (`claude -p`), every model it knows of named `model`."""
    binary = _binary("claude")
    env = base_env(root / "home") | {
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_MODEL": model, "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model, "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model, "CLAUDE_CONFIG_DIR": str(root / "claude-home"),
        "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1"}
    return Setup([binary, "-p", *options, prompt], env, version(binary))


def aider(root: Path, repo: Path, url: str, model: str, prompt: str, key: str = "test",
          *files: str) -> Setup:
    """aider's one-message mode with the whole-file edit format, on `files`."""
    binary = _binary("aider")
    env = base_env(root / "home") | {
        "OPENAI_API_BASE": f"{url}/v1", "OPENAI_API_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    argv = [binary, "--model", f"openai/{model}", "--edit-format", "whole", "--no-git",
            "--yes-always", "--no-check-update", "--no-show-model-warnings",
            "--no-show-release-notes", "--analytics-disable", "--no-pretty",
            "--no-fancy-input", "--message", prompt, *files]
    return Setup(argv, env, version(binary))


@dataclass
class Ran:
    """An agent's run: its exit status (None: killed at the time limit) and its output."""

    status: int | None
    output: str


async def run(setup: Setup, cwd: Path, timeout: float) -> Ran:
    """Run the agent to its end, or kill it at `timeout` seconds."""
    process = await asyncio.create_subprocess_exec(
        *setup.argv, cwd=cwd, env=setup.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        os.killpg(process.pid, 9)
        output, _ = await process.communicate()
        return Ran(None, output.decode("utf-8", errors="replace"))
    return Ran(process.returncode, output.decode("utf-8", errors="replace"))
