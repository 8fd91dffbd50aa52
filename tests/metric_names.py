"""The Prometheus sample names the services export, read from their metrics modules' source
(`Kind(PREFIX + "name", …)` calls), for the checks of the dashboard and the alert rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS_MODULES = [ROOT / "vps_appliance" / "metrics.py", ROOT / "pi_appliance" / "metrics.py"]
# What Prometheus' text format adds to each kind of metric's name.
SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count")}


def exported_metrics(source: Path) -> set[str]:
    """The sample names a metrics module exports."""
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


def all_exported() -> set[str]:
    """Every sample name either service exports."""
    return set().union(*(exported_metrics(m) for m in METRICS_MODULES))


def cerebrum_names(expr: str) -> set[str]:
    """The cerebrum_* metric names a PromQL expression reads."""
    return set(re.findall(r"\bcerebrum_[a-z_]+", expr))
