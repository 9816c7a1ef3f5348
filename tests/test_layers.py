"""The layers hold: imports between mrmp's packages point one way (no cycle, hidden in a function or not), the
core never imports Ray, Optuna or MLflow, and no module outside its compatibility module reads Ray's or torch's
internals."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1] / "mrmp"
CORE = ("config", "data", "model", "methods", "train", "validation")
# package -> the packages it may import (its own modules aside); everything else is a layering error
ALLOWED = {
    "validation": set(),
    "data": {"validation"},
    "model": {"validation"},
    "methods": {"model", "validation"},
    "config": {"data", "methods", "validation"},
    "train": {"config", "data", "model", "methods", "validation"},
    "testing": {"config", "data", "model", "methods", "train", "validation"},
    "tracking": {"data", "train", "validation"},
    "sweep": {"config", "data", "methods", "train", "tracking", "validation"},
    "bench": {"config", "data", "model", "methods", "train", "sweep", "tracking", "validation"},
    "cli": {"bench", "config", "data", "methods", "sweep", "train", "tracking", "validation"},
}
TOP_MODULES = {
    "stats",
    "provenance",
    "torch_compat",
}  # leaf modules at mrmp/: importable anywhere, importing no package


def package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported(path: Path) -> set[str]:
    """The mrmp packages/modules a file imports, at any depth (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # inside its own package
                continue
            assert node.level == 0, f"{path}: import across packages by absolute name, not `from ..`"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mrmp" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_packages_import_down_the_layers_only():
    bad = []
    for path in ROOT.rglob("*.py"):
        pkg = package_of(path)
        if pkg in TOP_MODULES or pkg == "__init__":
            assert not imported(path) - TOP_MODULES, (path, imported(path))
            continue
        allowed = ALLOWED[pkg] | {pkg} | TOP_MODULES
        for other in imported(path) - allowed:
            bad.append(f"{path.relative_to(ROOT.parent)} imports mrmp.{other}")
    assert not bad, "\n".join(bad)


def test_the_allowed_graph_has_no_cycle():
    seen: dict[str, int] = {}

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"import cycle: {' -> '.join((*stack, node))}"
        for nxt in ALLOWED.get(node, ()):
            visit(nxt, (*stack, node))
        seen[node] = 1

    for pkg in ALLOWED:
        visit(pkg, ())


def test_core_never_imports_ray_mlflow_or_optuna():
    pattern = re.compile(r"^\s*(import|from)\s+(ray|mlflow|optuna)\b", re.M)
    for sub in CORE:
        for f in (ROOT / sub).rglob("*.py"):
            assert not pattern.search(f.read_text(encoding="utf-8")), f


def test_ray_internals_are_read_in_one_place():
    pattern = re.compile(r"ray\._private|ray\.experimental\.internal_kv|_experiment_analysis|_internal_kv")
    users = sorted(
        str(f.relative_to(ROOT)) for f in ROOT.rglob("*.py") if pattern.search(f.read_text(encoding="utf-8"))
    )
    assert users == ["sweep/compat.py"], users


def test_torch_internals_are_read_in_one_place():
    pattern = re.compile(r"\btorch\._[a-z]")
    users = sorted(
        str(f.relative_to(ROOT)) for f in ROOT.rglob("*.py") if pattern.search(f.read_text(encoding="utf-8"))
    )
    assert users == ["torch_compat.py"], users


def test_no_module_is_a_grab_bag():
    """Long modules are one concept each (the synthetic generator); everything else stays under ~400 lines."""
    long = {
        str(f.relative_to(ROOT)): len(f.read_text(encoding="utf-8").splitlines()) for f in ROOT.rglob("*.py")
    }
    over = {f: n for f, n in long.items() if n > 480 and f not in {"data/synthetic.py"}}
    assert not over, over
