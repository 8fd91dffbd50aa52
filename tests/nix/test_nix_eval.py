"""Cerebrum's NixOS modules evaluated by nixpkgs' module system, without nixpkgs' packages.

tests/nix/eval_stubbed.nix runs `lib.evalModules` (from a nixpkgs `lib` directory named by
NIXPKGS_LIB, e.g. a checkout of github:nix-community/nixpkgs.lib) over the modules, the VPS and
uConsole hosts and the VM test's nodes, with stub declarations for the NixOS options they set.
The configs the modules generate are then loaded by the services' own settings loaders. Without
NIXPKGS_LIB (CI has no nixpkgs), the tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pi_appliance.settings import load_settings as load_orchestrator
from vps_appliance.settings import load_settings as load_backend

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("eval_stubbed.nix")
LIB = os.environ.get("NIXPKGS_LIB", "")

pytestmark = pytest.mark.skipif(
    not (LIB and (Path(LIB) / "modules.nix").is_file() and shutil.which("nix-instantiate")),
    reason="set NIXPKGS_LIB to a nixpkgs lib/ directory (and install nix-instantiate)")


@pytest.fixture(scope="module")
def modules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Empty stand-ins for the nixpkgs modules the hosts import by modulesPath."""
    root = tmp_path_factory.mktemp("modulesPath")
    for rel in ("profiles/qemu-guest.nix", "installer/sd-card/sd-image.nix"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{ ... }: { }\n")
    return root


def evaluate(modules_path: Path, which: str, attr: str) -> Any:
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(HARNESS),
         "--arg", "libPath", LIB, "--argstr", "repo", str(ROOT),
         "--arg", "modulesPath", str(modules_path), "--argstr", "which", which, "-A", attr],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float | str):
        return json.dumps(v)
    assert isinstance(v, list), v
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def to_toml(d: dict[str, Any], prefix: str = "") -> str:
    """The subset of TOML pkgs.formats.toml writes for these configs."""
    lines, tables, arrays = [], [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    for k, v in tables:
        lines += [f"[{prefix}{k}]", to_toml(v, f"{prefix}{k}.")]
    for k, vs in arrays:
        for v in vs:
            lines += [f"[[{prefix}{k}]]", to_toml(v, f"{prefix}{k}.")]
    return "\n".join(lines)


def generated(modules_path: Path, which: str, attr: str) -> dict[str, Any]:
    """The config a module generated (the stub `formats.toml` appends it as JSON)."""
    return json.loads(evaluate(modules_path, which, attr).split("#", 1)[1])


@pytest.mark.parametrize("which", ["vps", "uconsole", "test-vps", "test-uconsole"])
def test_configuration_evaluates_without_failed_assertions(modules_path: Path, which: str):
    assert evaluate(modules_path, which, "failed") == []
    # The hosts ship without an admin key (cerebrum.access.authorizedKeys): they say so.
    expected = [] if which.startswith("test-") else [
        "cerebrum.access.authorizedKeys is empty: with no password on any account, nobody can "
        f"log in to {which}."]
    assert evaluate(modules_path, which, "warnings") == expected


def test_vps_opens_the_backend_port_on_the_tailnet_only(modules_path: Path):
    firewall = evaluate(modules_path, "vps", "firewall")
    assert firewall["interfaces"] == {"tailscale0": {"allowedTCPPorts": [9000]}}
    assert "allowedTCPPorts" not in firewall
    sockets = evaluate(modules_path, "vps", "sockets")
    assert sockets["cerebrum-backend"]["listenStreams"] == ["0.0.0.0:9000"]
    assert sockets["cerebrum-backend"]["wantedBy"] == ["sockets.target"]
    service = evaluate(modules_path, "vps", "services")["cerebrum-backend"]
    assert service["requires"] == ["cerebrum-backend.socket"]
    assert service["environment"]["CEREBRUM_BACKEND_API_KEYS_FILE"] == "%d/api-keys"
    assert service["serviceConfig"]["LoadCredential"] == [
        "api-keys:/var/lib/secrets/cerebrum/api-keys"]
    assert "--idle-exit 900" in service["serviceConfig"]["ExecStart"]


def test_vps_scrapes_the_backend_less_often_than_it_idles_out(modules_path: Path):
    jobs = {j["job_name"]: j for j in evaluate(modules_path, "vps", "prometheus")["scrapeConfigs"]}
    assert jobs["cerebrum-backend"]["scrape_interval"] == "30m"
    assert jobs["cerebrum-orchestrator"]["scrape_interval"] == "15s"
    grafana = evaluate(modules_path, "vps", "grafana")
    assert grafana["settings"]["security"]["secret_key"].startswith("$__file{")


@pytest.mark.parametrize(("which", "attr", "load", "env"), [
    ("vps", "backendConfig", load_backend, "CEREBRUM_BACKEND_API_KEYS_FILE"),
    ("test-vps", "backendConfig", load_backend, "CEREBRUM_BACKEND_API_KEYS_FILE"),
    ("uconsole", "orchestratorConfig", load_orchestrator, "CEREBRUM_ORCHESTRATOR_API_KEYS_FILE"),
    ("test-uconsole", "orchestratorConfig", load_orchestrator,
     "CEREBRUM_ORCHESTRATOR_API_KEYS_FILE"),
])
def test_generated_config_loads_in_the_service(modules_path: Path, tmp_path: Path, which: str,
                                               attr: str, load: Any, env: str):
    settings = generated(modules_path, which, attr)
    keys = tmp_path / "keys"
    keys.write_text("a-key\n")
    for backend in settings.get("backends", []):
        if "api_key_file" in backend:  # a credential path at run time
            backend["api_key_file"] = str(keys)
    config = tmp_path / "config.toml"
    config.write_text(to_toml(settings) + "\n")
    loaded = load(config, {env: str(keys)})
    assert loaded.port in (7000, 9000)
