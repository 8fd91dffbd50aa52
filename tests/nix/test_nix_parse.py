"""The flake's static checks that run without nixpkgs: every .nix file parses, and the Grafana
dashboard is valid JSON naming only metrics the services export.

NixOS modules cannot be evaluated here (no nixpkgs, Debian's nix 2.8); `nix flake check` on a
machine with Nix does that, builds the packages and runs the VM tests.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", "result"}
DASHBOARD = ROOT / "nix" / "grafana" / "cerebrum.json"
METRICS_MODULES = [ROOT / "vps_appliance" / "metrics.py", ROOT / "pi_appliance" / "metrics.py"]
# What Prometheus' text format adds to each kind of metric's name.
SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count")}


def nix_files() -> list[Path]:
    return sorted(
        p for p in ROOT.rglob("*.nix")
        if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
    )


def exported_metrics(source: Path) -> set[str]:
    """The sample names a metrics module exports: `Kind(PREFIX + "name", …)` calls."""
    tree = ast.parse(source.read_text())
    prefix = next(
        node.value.value for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "PREFIX" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    )
    names: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in SUFFIXES and node.args):
            continue
        arg = node.args[0]
        assert isinstance(arg, ast.BinOp) and isinstance(arg.right, ast.Constant), ast.dump(arg)
        base = prefix + arg.right.value
        names.update(base + suffix for suffix in SUFFIXES[node.func.id])
    return names


def test_nix_files_exist():
    files = {p.relative_to(ROOT).as_posix() for p in nix_files()}
    assert {"flake.nix", "nix/package.nix", "nix/modules/backend.nix",
            "nix/modules/orchestrator.nix"} <= files


@pytest.mark.parametrize("path", nix_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nix_file_parses(path: Path):
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        pytest.fail("nix-instantiate is missing: `make setup` installs Debian's nix-bin")
    proc = subprocess.run([nix_instantiate, "--parse", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_exported_metrics_are_read():
    backend, orchestrator = (exported_metrics(m) for m in METRICS_MODULES)
    assert "cerebrum_backend_requests_total" in backend
    assert "cerebrum_backend_queue_depth" in backend
    assert "cerebrum_orchestrator_breaker_state" in orchestrator
    assert "cerebrum_orchestrator_reduction_ratio_bucket" in orchestrator


def test_dashboard_is_json_and_names_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    used = {name for e in exprs for name in re.findall(r"\bcerebrum_[a-z_]+", e)}
    known = set().union(*(exported_metrics(m) for m in METRICS_MODULES))
    assert used - known == set()
    assert {n for n in used if n.startswith("cerebrum_backend_")}
    assert {n for n in used if n.startswith("cerebrum_orchestrator_")}


def test_dashboard_covers_the_issue_panels():
    text = DASHBOARD.read_text()
    for metric in ("requests_total", "shed_total", "breaker_state", "time_to_first_token",
                   "generation_tokens_per_second", "queue_depth", "reduction_ratio"):
        assert metric in text, metric
