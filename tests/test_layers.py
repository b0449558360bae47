"""Dependencies point one way: addons -> netmon -> libraries; the portal never imports the addons."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _py_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _py_files("netmon"), ids=lambda p: str(p.relative_to(REPO)))
def test_core_never_imports_mitmproxy_or_adapters(path: Path) -> None:
    forbidden = _imports(path) & {"mitmproxy", "addons", "captive_portal", "flask"}
    assert not forbidden, (
        f"{path.relative_to(REPO)} imports {sorted(forbidden)}: the core stays framework-free"
    )


@pytest.mark.parametrize("path", _py_files("captive_portal"), ids=lambda p: str(p.relative_to(REPO)))
def test_portal_never_imports_the_addons(path: Path) -> None:
    forbidden = _imports(path) & {"addons", "mitmproxy"}
    assert not forbidden, (
        f"{path.relative_to(REPO)} imports {sorted(forbidden)}: the portal shares only the store"
    )
