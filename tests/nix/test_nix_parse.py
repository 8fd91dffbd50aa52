"""The flake's static checks that run without nixpkgs: every .nix file parses, and the Grafana
dashboard is valid JSON naming only metrics the services export.

NixOS modules cannot be evaluated here (no nixpkgs, Debian's nix 2.8); `nix flake check` on a
machine with Nix does that, builds the packages and runs the VM tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from metric_names import METRICS_MODULES, all_exported, cerebrum_names, exported_metrics

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", "result"}
DASHBOARD = ROOT / "nix" / "grafana" / "cerebrum.json"


def nix_files() -> list[Path]:
    return sorted(
        p for p in ROOT.rglob("*.nix")
        if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
    )


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
    used = set().union(*(cerebrum_names(e) for e in exprs))
    assert used - all_exported() == set()
    assert {n for n in used if n.startswith("cerebrum_backend_")}
    assert {n for n in used if n.startswith("cerebrum_orchestrator_")}


def test_dashboard_covers_the_issue_panels():
    text = DASHBOARD.read_text()
    for metric in ("requests_total", "shed_total", "breaker_state", "time_to_first_token",
                   "generation_tokens_per_second", "queue_depth", "reduction_ratio"):
        assert metric in text, metric


# The pinned files the issue names: repository, revision, file, sha256.
PINNED = {
    "qwen2.5-coder-7b-instruct": (
        "Qwen/Qwen2.5-Coder-7B-Instruct-GGUF", "13fb94bfda8c8cf22497dc57b78f391a9acb426a",
        "qwen2.5-coder-7b-instruct-q4_k_m.gguf",
        "509287f78cb4d4cf6b3843734733b914b2c158e43e22a7f4bf5e963800894d3c"),
    "codellama-7b-instruct": (
        "TheBloke/CodeLlama-7B-Instruct-GGUF", "2f064ee0c6ae3f025ec4e392c6ba5dd049c77969",
        "codellama-7b-instruct.Q4_K_M.gguf",
        "0701500c591c2c1b910516658e58044cdfa07b2e8b5a2e3b6808d983441daf1a"),
    "qwen2.5-coder-1.5b-instruct": (
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "f86cb2c1fa58255f8052cc32aeede1b7482d4361",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


def test_pinned_models_evaluate_to_the_issue_files():
    """nix/models.nix needs no nixpkgs, so Nix 2.8 evaluates it."""
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        pytest.fail("nix-instantiate is missing: `make setup` installs Debian's nix-bin")
    proc = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(ROOT / "nix" / "models.nix")],
        capture_output=True, text=True, timeout=60, check=True)
    models = json.loads(proc.stdout)
    assert set(models) == set(PINNED)
    for name, (repo, rev, file, sha256) in PINNED.items():
        m = models[name]
        assert m["url"] == f"https://huggingface.co/{repo}/resolve/{rev}/{file}"
        assert m["sha256"] == sha256
        assert set(m) == {"url", "sha256", "nCtx", "threads", "chatFormat"}
