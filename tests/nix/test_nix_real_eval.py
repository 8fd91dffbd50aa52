"""The flake evaluated against a real nixpkgs: both hosts are safe to flash.

`../shared/tools/nix-eval.sh` (or CEREBRUM_NIX_EVAL) evaluates the flake offline with Nix >= 2.18
over git snapshots of nixpkgs and of nixos-uconsole and its inputs (its header lists them),
building nothing: both NixOS configurations, the uConsole's SD image, the option docs and
`nix flake check --no-build --all-systems`. These tests run it once, then read the settings
that make an image safe to flash from the same lock and tree: keys-only sshd, no password on
any account (root locked), mosh on the tailnet interface only, and the Prometheus jobs and rules
of deploy/prometheus/. Without the tool, the snapshots or a Nix >= 2.18 (host, or the Debian 13
chroot the tool makes, which needs root), they skip: CI has none of them. ~5 min when they run.

The pinned input URLs are checked without any of that.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("CEREBRUM_NIX_EVAL", ROOT.parent / "shared" / "tools" / "nix-eval.sh"))
MIRRORS = Path(os.environ.get("MIRRORS", ROOT.parent / ".mirror"))
TMP = Path(os.environ.get("TMPDIR", "/tmp"))
WORK = Path(os.environ.get("WORK", TMP / "nix_eval"))
TRIXIE = Path(os.environ.get("TRIXIE_ROOT", TMP / "trixie"))
SNAPSHOTS = ("neg-serg+nixpkgs-slim", "nixos-uconsole+nixos-uconsole", "nvmd+nixos-raspberrypi",
             "nvmd+argononed", "edolstra+flake-compat", "nvmd+nixos-images")
# As nix-eval.sh sets it: offline, no sandbox, no build users.
NIX_CONFIG = "\n".join([
    "experimental-features = nix-command flakes", "substituters =", "flake-registry =",
    "allow-import-from-derivation = false", "build-users-group =", "sandbox = false",
    "warn-dirty = false"])
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
REV = re.compile(r"/[0-9a-f]{40}$")


def host_nix_is_new_enough() -> bool:
    nix = shutil.which("nix")
    if nix is None:
        return False
    out = subprocess.run([nix, "--version"], capture_output=True, text=True, check=False).stdout
    version = tuple(int(x) for x in re.findall(r"\d+", out.split()[-1] if out else "0")[:2])
    return version >= (2, 18)


def why_not_real() -> str | None:
    """Why the real evaluation cannot run here (None: it can)."""
    if not os.access(TOOL, os.X_OK):
        return f"{TOOL} is not here (set CEREBRUM_NIX_EVAL)"
    absent = [s for s in SNAPSHOTS if not (MIRRORS / s / "repo").exists()]
    if absent:
        return f"no snapshot of {', '.join(absent)} under {MIRRORS} (set MIRRORS)"
    if host_nix_is_new_enough():
        return None
    if not (TRIXIE / "usr" / "bin" / "nix").exists():
        return f"Nix < 2.18 here and no Debian 13 chroot with nix at {TRIXIE} (nix-eval.sh " \
            "makes one)"
    if os.geteuid() != 0:
        return "the Nix 2.26 chroot needs root"
    return None


@contextmanager
def nix_runner() -> Iterator[list[str]]:
    """The command prefix that runs Nix >= 2.18: the host's, or the chroot's with its mounts."""
    if host_nix_is_new_enough():
        yield []
        return
    mounted: list[Path] = []
    try:
        for source, target, args in (("proc", TRIXIE / "proc", ["-t", "proc"]),
                                     ("/dev", TRIXIE / "dev", ["--bind"]),
                                     (str(WORK), TRIXIE / WORK.relative_to("/"), ["--bind"])):
            target.mkdir(parents=True, exist_ok=True)
            if not os.path.ismount(target):
                subprocess.run(["mount", *args, source, str(target)], check=True)
                mounted.append(target)
        yield ["chroot", str(TRIXIE)]
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", str(target)], check=False)


# What each host's evaluation reports: sshd, every account's passwords and keys, sudo, mosh and
# its firewall, and (VPS) Prometheus' jobs and rule files.
REPORT = """c: {
  ssh = { inherit (c.services.openssh.settings)
    PasswordAuthentication KbdInteractiveAuthentication PermitRootLogin; };
  users = builtins.mapAttrs (n: u: {
    inherit (u) password initialPassword hashedPassword initialHashedPassword hashedPasswordFile;
    keys = u.openssh.authorizedKeys.keys;
  }) c.users.users;
  admin = c.cerebrum.access.user;
  wheelNeedsPassword = c.security.sudo.wheelNeedsPassword;
  mosh = { inherit (c.programs.mosh) enable openFirewall; };
  firewall = { inherit (c.networking.firewall) allowedUDPPortRanges allowedTCPPorts interfaces; };
  prometheus = if c.services.prometheus.enable then {
    jobs = map (j: { inherit (j) job_name scrape_interval scrape_timeout metrics_path; })
      c.services.prometheus.scrapeConfigs;
    rules = map builtins.readFile c.services.prometheus.ruleFiles;
  } else null;
}"""


@pytest.fixture(scope="module")
def evaluated() -> dict[str, Any]:
    reason = why_not_real()
    if reason:
        pytest.skip(f"real NixOS evaluation: {reason}")
    proc = subprocess.run([str(TOOL)], env={**os.environ, "PROJ": str(ROOT), "WORK": str(WORK),
                                            "MIRRORS": str(MIRRORS), "TRIXIE_ROOT": str(TRIXIE)},
                          capture_output=True, text=True, timeout=3600, check=False)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, f"nix-eval.sh failed: {summary}\n{proc.stderr[-3000:]}"
    reports = {}
    with nix_runner() as run:
        for host in ("vps", "uconsole"):
            out = subprocess.run(
                [*run, "env", f"HOME={WORK}/home", f"NIX_CONFIG={NIX_CONFIG}", "nix", "eval",
                 "--json", "--reference-lock-file", f"{WORK}/flake.lock", "--no-write-lock-file",
                 f"{WORK}/proj#nixosConfigurations.{host}.config", "--apply", REPORT],
                capture_output=True, text=True, timeout=1200, check=False)
            assert out.returncode == 0, out.stderr[-3000:]
            reports[host] = json.loads(out.stdout)
    return {"summary": summary, **reports}


def test_the_tool_evaluates_both_hosts_and_the_flake_check(evaluated):
    assert re.match(r"nix eval \(nixpkgs \S+, Nix \S+\): vps ok \S+, uconsole ok \S+, "
                    r"flake check ok$", evaluated["summary"]), evaluated["summary"]


@pytest.mark.parametrize("host", ["vps", "uconsole"])
def test_sshd_takes_keys_only_and_no_root(evaluated, host):
    assert evaluated[host]["ssh"] == {"PasswordAuthentication": False,
                                      "KbdInteractiveAuthentication": False,
                                      "PermitRootLogin": "no"}


@pytest.mark.parametrize("host", ["vps", "uconsole"])
def test_no_account_has_a_password_and_root_is_locked(evaluated, host):
    users = evaluated[host]["users"]
    for name, user in users.items():
        for option in ("password", "initialPassword", "hashedPasswordFile"):
            assert user[option] is None, (name, option)
        for option in ("hashedPassword", "initialHashedPassword"):
            # null (none set: locked for a new account) or a locked hash; never "" (no password).
            assert user[option] in (None, "!", "*") or user[option].startswith("!"), (name, option)
    assert users["root"]["hashedPassword"] == "!" and users["root"]["keys"] == []
    admin = evaluated[host]["admin"]
    assert admin in users and evaluated[host]["wheelNeedsPassword"] is False


def test_mosh_is_reachable_on_the_tailnet_only(evaluated):
    uconsole = evaluated["uconsole"]
    assert uconsole["mosh"] == {"enable": True, "openFirewall": False}
    mosh = {"from": 60000, "to": 61000}
    assert mosh not in uconsole["firewall"]["allowedUDPPortRanges"]
    assert uconsole["firewall"]["interfaces"]["tailscale0"]["allowedUDPPortRanges"] == [mosh]
    for interface, rules in uconsole["firewall"]["interfaces"].items():
        assert interface == "tailscale0" or mosh not in rules["allowedUDPPortRanges"]
    assert evaluated["vps"]["mosh"]["enable"] is False


def test_the_vps_prometheus_is_deploy_prometheus(evaluated):
    prometheus = evaluated["vps"]["prometheus"]
    assert prometheus["rules"] == [(PROMETHEUS_DIR / "cerebrum-rules.yml").read_text()]
    shipped = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["scrape_configs"]
    fields = ("job_name", "scrape_interval", "scrape_timeout", "metrics_path")
    assert sorted(({f: j[f] for f in fields} for j in prometheus["jobs"]),
                  key=lambda j: j["job_name"]) == sorted(
        ({f: j[f] for f in fields} for j in shipped), key=lambda j: j["job_name"])


def flake_input_urls() -> dict[str, str]:
    """Each `<name>.url = "…"` or `url = "…"` (inside `<name> = {`) of flake.nix' inputs."""
    text = (ROOT / "flake.nix").read_text()
    inputs = text[text.index("inputs = {"):text.index("outputs =")]
    urls = dict(re.findall(r'^\s*([\w-]+)\.url = "([^"]+)";', inputs, re.M))
    urls.update(re.findall(r'^\s*([\w-]+) = \{\s*url = "([^"]+)";', inputs, re.M))
    return urls


def test_every_flake_input_names_a_revision():
    urls = flake_input_urls()
    assert set(urls) == {"nixpkgs", "nixos-uconsole"}
    for name, url in urls.items():
        assert url.startswith("github:") and REV.search(url), (name, url)
    # nixos-uconsole's own flake.lock pins this nixpkgs; nixos-raspberrypi follows it.
    assert urls["nixpkgs"].endswith("/89dbf01df72eb5ebe3b24a86334b12c27d68016a")
    assert 'inputs.nixpkgs.follows = "nixpkgs";' in (ROOT / "flake.nix").read_text()
