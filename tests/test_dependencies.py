"""Every third-party package the code imports is declared in pyproject.toml, and vice versa.

A package installed here only by chance works on this machine and fails on a fresh one; a
declared package that nothing imports is weight for nothing.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Declared but never imported by name: uvicorn picks up uvloop and httptools on its own, and
# Lightning's WandbLogger (conf/logger/wandb.yaml, built by Hydra) imports wandb.
LOADED_BY_OTHERS = {"uvloop", "httptools", "wandb"}
# Imported directly, installed as a requirement of a declared package (checked below).
VIA = {
    "starlette": "fastapi",
    "sqlalchemy": "optuna",
    "threadpoolctl": "scikit-learn",
    "safetensors": "transformers",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    return _norm(re.split(r"[<>=!~\[;( ]", requirement.strip(), maxsplit=1)[0])


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(d) for d in project["dependencies"]}


def _imported() -> dict[str, set[str]]:
    """Top-level third-party module -> the distributions that install it."""
    found = set()
    for path in (ROOT / "mangaassist").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    found -= set(sys.stdlib_module_names) | {"mangaassist", "__future__"}
    dists = packages_distributions()
    return {m: {_norm(d) for d in dists.get(m, [])} for m in sorted(found)}


def test_every_imported_package_is_declared():
    declared = _declared()
    undeclared = {}
    for module, dists in _imported().items():
        assert dists, f"{module}: imported by mangaassist but not installed"
        if dists & declared:
            continue
        parent = VIA.get(module)
        if parent in declared and _norm(module) in {_name(r) for r in requires(parent) or []}:
            continue
        undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_package_is_imported():
    used = set().union(*_imported().values())
    unused = _declared() - used - LOADED_BY_OTHERS
    assert not unused, f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"
