"""The docs (README.md and docs/*.md): every code sample checked, every relative link resolved.

A fence's info string says how its sample is checked: its first word is the language, the
words after it are marks (GitHub highlights by the first word only).

- `toml backend` / `toml orchestrator`: loaded by that service's own settings loader
  (`vps_appliance.settings.load_settings`, `pi_appliance.settings.load_settings`), with each
  `*_file` path pointed at a key file in tmp_path (the documented paths are systemd's);
  `toml fragment`: valid TOML. A `toml` sample without one of these marks fails.
- `json`: parses.
- `sh`: each command is a `curl`, run (the real curl) against a real backend serving
  SmolLM2-135M and a real orchestrator in front of it, on ephemeral loopback ports: the
  documented `:9000` (backend) and `:7000` (orchestrator) become theirs, `YOUR-KEY` the test's
  key; it must answer 2xx (a mark `status=NNN` documents another status), and an SSE answer
  must end with `data: [DONE]`. `sh no-test` marks commands a test cannot run: `make demo` /
  `make test` themselves, Nix builds, installing into /etc and systemctl.
- Not checked, by language (`UNCHECKED` says why): `ini` (systemd units), `vim`, `yaml`, and
  unlabelled fences (output and transcripts, not input). A fence of any other language fails
  `test_every_sample_language_is_checked_or_named`, so a new kind of sample gets a checker.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REAL_MODEL_CACHE, base_url, orchestrator_settings, spec

from pi_appliance.settings import load_settings as load_orchestrator_settings
from vps_appliance import models
from vps_appliance.settings import load_settings as load_backend_settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
CHECKED = {"toml", "json", "sh"}
UNCHECKED = {
    "ini": "systemd units, two to a sample; verifying them needs systemd's own tools and the "
           "installed binaries (deploy/systemd's units are tested in tests/deploy)",
    "vim": "Vim script; its requests are tested in tests/pi_appliance/test_editor_configs.py",
    "yaml": "Continue's config; no YAML parser among the test dependencies; its requests are "
            "tested in tests/pi_appliance/test_editor_configs.py",
    "": "output and transcripts, not input",
}
KEY = "docs-test-key-0123456789abcdef"
MODEL = "smollm2-135m-instruct"
FENCE = re.compile(r"^(`{3,})(.*)$")
LINK = re.compile(r"\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int
    lang: str
    marks: tuple[str, ...]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def samples(page: Path) -> list[Sample]:
    """The top-level fenced blocks of a page (a fence inside a longer fence is its text)."""
    found, lines = [], page.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        ticks, words = opened.group(1), opened.group(2).split()
        end = next(j for j in range(i + 1, len(lines))
                   if lines[j].strip().startswith(ticks) and not lines[j].strip().strip("`"))
        found.append(Sample(page, i + 1, words[0] if words else "", tuple(words[1:]),
                            "\n".join(lines[i + 1:end])))
        i = end + 1
    return found


def prose(page: Path) -> str:
    """A page without its fenced blocks and inline code spans (where links live)."""
    text = page.read_text(encoding="utf-8")
    for sample in samples(page):
        text = text.replace(sample.text, "")
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces as '-'."""
    fenced = {line for s in samples(page) for line in s.text.split("\n")}
    seen: dict[str, int] = {}
    for line in page.read_text(encoding="utf-8").split("\n"):
        if line.startswith("#") and line not in fenced:
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
    return {slug if n == 0 else f"{slug}-{k}" for slug, n in seen.items()
            for k in range(n + 1)} | set(seen)


ALL = [s for page in PAGES for s in samples(page)]


def of(lang: str) -> list[Sample]:
    return [s for s in ALL if s.lang == lang]


def ids(items: list[Sample]) -> list[str]:
    return [s.where for s in items]


def test_the_docs_are_found():
    assert len(PAGES) > 5 and of("toml") and of("sh") and of("json")


def test_every_sample_language_is_checked_or_named():
    unknown = [(s.where, s.lang) for s in ALL if s.lang not in CHECKED | set(UNCHECKED)]
    assert not unknown, f"no checker for these samples' languages: {unknown}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / m.split("#")[0]).resolve() for m in LINK.findall(prose(README))}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_points_at_a_file_and_anchor(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no such anchor")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def with_key_files(text: str, tmp_path: Path) -> str:
    """The sample with every `*_file = "…"` pointed at a key file in tmp_path."""
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    return re.sub(r'^(\w+_file\s*=\s*)"[^"]*"', rf'\g<1>"{keys}"', text, flags=re.M)


@pytest.mark.parametrize("sample", of("toml"), ids=ids(of("toml")))
def test_toml_samples_load_in_their_settings_loader(sample, tmp_path):
    kind = sample.marks[0] if sample.marks else None
    assert kind in ("backend", "orchestrator", "fragment"), (
        f"{sample.where}: mark the fence `toml backend`, `toml orchestrator` or `toml fragment`")
    data = tomllib.loads(sample.text)
    if kind == "fragment":
        return
    path = tmp_path / "config.toml"
    path.write_text(with_key_files(sample.text, tmp_path), encoding="utf-8")
    if kind == "backend":
        settings = load_backend_settings(path, environ={})
        assert [m.name for m in settings.models] == [m["name"] for m in data["models"]]
    else:
        settings = load_orchestrator_settings(path, environ={})
        assert [r.name for r in settings.routes] == [r["name"] for r in data["routes"]]
        assert [b.name for b in settings.backends] == [b["name"] for b in data["backends"]]
    if "api_keys_file" in data:
        assert settings.api_keys == (KEY,)


@pytest.mark.parametrize("sample", of("json"), ids=ids(of("json")))
def test_json_samples_parse(sample):
    json.loads(sample.text)


def commands(text: str) -> list[list[str]]:
    """A shell sample's commands (a quoted string may span lines), split as sh would."""
    found, pending = [], ""
    for line in text.split("\n"):
        pending += line + "\n"
        if pending.rstrip().endswith("\\"):
            continue
        try:
            argv = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if argv:
            found.append(argv)
        pending = ""
    assert not pending.strip(), f"unterminated command: {pending!r}"
    return found


RUN = [s for s in of("sh") if "no-test" not in s.marks]


@pytest.fixture
async def services(start_backend, start_orchestrator):
    """{documented port: real base URL}: a SmolLM2 backend and an orchestrator in front."""
    backend = base_url(await start_backend(spec(MODEL, models.resolve(MODEL, REAL_MODEL_CACHE))))
    orchestrator = await start_orchestrator(orchestrator_settings(("vps", backend), model=MODEL))
    return {"9000": backend, "7000": orchestrator}


def localized(argv: list[str], services: dict[str, str]) -> list[str]:
    """The documented command pointed at the test's services, with the test's key."""
    url = re.compile(r"https?://[^/\s:]+:(\d+)")
    out = []
    for arg in argv:
        match = url.match(arg)
        if match:
            assert match.group(1) in services, f"{arg}: neither :9000 nor :7000"
            arg = services[match.group(1)] + arg[match.end():]
        out.append(arg.replace("YOUR-KEY", KEY))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sample", RUN, ids=ids(RUN))
async def test_curl_samples_run_against_the_real_services(sample, services, tmp_path):
    status = next((int(m[7:]) for m in sample.marks if m.startswith("status=")), None)
    for argv in commands(sample.text):
        assert argv[0] == "curl", (
            f"{sample.where}: only curl runs here; mark other commands' fence `sh no-test`")
        body = tmp_path / "body"
        proc = await asyncio.create_subprocess_exec(
            *localized(argv, services), "--silent", "--show-error", "--max-time", "300",
            "--output", str(body), "--write-out", "%{http_code}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 330)
        assert proc.returncode == 0, err.decode()
        code, text = int(out), body.read_text(encoding="utf-8")
        if status is None:
            assert 200 <= code < 300, f"{sample.where}: {code} {text[:500]}"
        else:
            assert code == status, f"{sample.where}: {code} {text[:500]}"
        if text.startswith("data:"):
            assert text.rstrip().split("\n")[-1] == "data: [DONE]", text[-500:]
