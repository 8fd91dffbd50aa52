"""Imports point down: the contracts in pyproject.toml hold, and no import circle, lazy ones too."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cerebrum", "vps_appliance", "pi_appliance", "repl")
# A module named in a string (`importlib.import_module("vps_appliance.engine.slots")`).
NAMED = re.compile(rf"(?:{'|'.join(PACKAGES)})(?:\.\w+)+")


def test_lint_imports_keeps_every_contract():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The first-party modules `name` imports: at the top, in functions, under TYPE_CHECKING,
    and named in strings (what `importlib` imports lazily, which lint-imports cannot see)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                         for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in prose:
            found.update(NAMED.findall(node.value))
    resolved = set()
    for target in found:
        while target and target not in modules:  # a name imported from a module: the module
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def test_no_import_circles_lazy_imports_included():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError("an import circle (each imports the next): "
                             + " -> ".join(reversed(exc.args[1]))) from None
    assert len(order) == len(modules)


def test_no_folder_of_a_tier_holds_more_than_16_modules():
    """A newcomer reads a folder's names at a glance (`__init__` is the package itself)."""
    crowded = {str(folder.relative_to(ROOT)): n for package in ("vps_appliance", "pi_appliance")
               for folder in [ROOT / package, *(ROOT / package).rglob("*/")]
               if folder.is_dir() and (n := len([p for p in folder.glob("*.py")
                                                 if p.name != "__init__.py"])) > 16}
    assert not crowded, crowded
    assert len(list((ROOT / "vps_appliance" / "engine").glob("*.py"))) > 1  # it looked
