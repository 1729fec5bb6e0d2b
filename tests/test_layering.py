"""Imports point one way (DESIGN.md §2): config -> model/data -> graph -> pruning -> cost models -> problem ->
env/agent -> search methods -> delivery -> API/CLI. A module may import its own layer and those below, never
one above; lazy imports inside functions count too. Extra rules: no search baseline imports the env, and
`amc compare` loads no RL or Bayesian-optimisation library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hwmodel",),
    ("amc.config", "amc.device", "amc.errors", "amc.io", "amc.locks", "amc.optional", "amc.resume"),
    ("amc.data", "amc.models", "amc.graph"),
    ("amc.pruning", "amc.quantize", "amc.schedule", "amc.report"),
    ("amc.training", "amc.costs", "amc.lottery"),
    ("amc.problem",),
    ("envs", "amc.agents"),
    ("amc.search",),
    ("amc.deliver",),
    ("amc.api", "amc", "amc.cli"),
)
"""Packages from the bottom up; `amc` itself is the lazy facade over amc.api."""


def layer_of(module: str) -> int:
    best = None
    for level, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (level, name)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("amc", "envs", "hwmodel"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in ("amc", "envs", "hwmodel")}


def test_every_import_points_down() -> None:
    upward = []
    for module, path in modules():
        own = layer_of(module)
        for target in imports_of(path):
            if layer_of(target) > own:
                upward.append(f"{module} imports {target}")
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def test_the_layering_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from amc.search.methods import METHODS\n")
    assert layer_of("amc.problem.channel") < min(layer_of(target) for target in imports_of(bad))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("amc/search/baselines", "envs"), ("amc/search/netadapt.py", "envs"), ("hwmodel", "amc")],
)
def test_no_forbidden_import(package: str, forbidden: str) -> None:
    paths = [ROOT / package] if package.endswith(".py") else sorted((ROOT / package).rglob("*.py"))
    for path in paths:
        assert not any(name.split(".")[0] == forbidden for name in imports_of(path)), path


def test_compare_loads_no_agent_or_study_code() -> None:
    code = (
        "import sys; from amc.cli import compare_cmd; import amc.deliver.compare; "
        "print(sorted(m for m in ('stable_baselines3', 'optuna', 'gymnasium', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
