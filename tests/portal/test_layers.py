"""Dependencies point one way: the portal never imports the proxy's addons, the core never imports
mitmproxy or Flask (checked on the portal and identity modules' own import statements)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = [
    "netmon/identity.py",
    "netmon/users.py",
    "netmon/aup.py",
    "netmon/probes.py",
    "netmon/store/identity.py",
    "netmon/cli/users_cmd.py",
    "netmon/cli/sessions_cmd.py",
    "netmon/cli/portal_cmd.py",
]
PORTAL = sorted(str(p.relative_to(REPO)) for p in (REPO / "captive_portal").glob("*.py"))


def imported(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE)
def test_core_knows_nothing_of_the_proxy(path: str) -> None:
    assert not imported(path) & {"mitmproxy", "addons", "flask"}, path


@pytest.mark.parametrize("path", PORTAL)
def test_portal_never_imports_the_addons(path: str) -> None:
    assert not imported(path) & {"mitmproxy", "addons"}, path
