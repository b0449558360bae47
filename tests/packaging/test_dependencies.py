"""Every library netmon imports is declared in pyproject.toml, not merely pulled in by another package."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("netmon", "addons", "captive_portal", "console")
OWN = {"netmon", "netmon_proxy", "netmon_portal", "netmon_console"}


def _imported_tops() -> dict[str, str]:
    """Top-level module name -> one file that imports it, for every shipped module."""
    found: dict[str, str] = {}
    for folder in SHIPPED:
        for path in sorted((REPO / folder).rglob("*.py")) if (REPO / folder).is_dir() else []:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def _declared() -> set[str]:
    names = set()
    for req in requires("netmon") or []:
        if "extra ==" in req:
            continue
        names.add(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_every_third_party_import_is_declared() -> None:
    dists = packages_distributions()
    declared = _declared()
    missing = []
    for top, where in sorted(_imported_tops().items()):
        if top in OWN or top in sys.stdlib_module_names or top == "__future__":
            continue
        owners = {d.lower().replace("_", "-") for d in dists.get(top, [])}
        if not owners:
            pytest.fail(f"{where} imports {top}, which no installed distribution provides")
        if not owners & declared:
            missing.append(f"{top} (from {sorted(owners)}, imported by {where})")
    assert not missing, "imported but not declared in pyproject.toml dependencies: " + "; ".join(missing)
