"""The shape of the house: dependencies point one way, no import circles, small modules.

- The core (``netmon``) never imports mitmproxy, a web framework or any face: statically (every import
  statement, at module level or inside a function) and at run time (importing every core module in a
  fresh interpreter loads none of them).
- The faces (``netmon_proxy`` from addons/, ``netmon_portal`` from captive_portal/) never import each
  other; they share state only through the store.
- No import circles between the core's modules.
- A core module over ~400 lines says at its top why it is long.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACES = {"netmon_proxy": "addons", "netmon_portal": "captive_portal", "netmon_console": "console"}
FRAMEWORKS = {"mitmproxy", "flask", "werkzeug"}
LONG = 420


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    for name, folder in FACES.items():
        if parts[0] == folder:
            parts[0] = name
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in the file names (absolute, and relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _py_files(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if "migrations" not in p.parts)


def _tops(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize("path", _py_files("netmon"), ids=lambda p: str(p.relative_to(REPO)))
def test_core_never_imports_frameworks_or_faces(path: Path) -> None:
    forbidden = _tops(_imports(path)) & (FRAMEWORKS | set(FACES) | set(FACES.values()))
    assert not forbidden, f"{path.relative_to(REPO)} imports {sorted(forbidden)}: the core stays framework-free"


def test_core_loads_no_framework_or_face_at_run_time() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import netmon\n"
        "for m in pkgutil.walk_packages(netmon.__path__, 'netmon.'):\n"
        "    if '.migrations' in m.name or m.name == 'netmon.__main__':\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    loaded = set(json.loads(out.stdout))
    forbidden = loaded & (FRAMEWORKS | set(FACES) | set(FACES.values()))
    assert not forbidden, f"importing the core loads {sorted(forbidden)}"


@pytest.mark.parametrize(
    ("face", "other"), [(f, o) for f in FACES for o in FACES if o != f and (REPO / FACES[f]).is_dir()]
)
def test_faces_never_import_each_other(face: str, other: str) -> None:
    for path in _py_files(FACES[face]):
        tops = _tops(_imports(path))
        assert other not in tops and FACES[other] not in tops, (
            f"{path.relative_to(REPO)} imports {other}: faces share only the store"
        )


def test_no_generic_top_level_imports() -> None:
    for folder in ("netmon", *FACES.values(), "tests", "bench"):
        for path in _py_files(folder):
            tops = _tops(_imports(path))
            assert not tops & set(FACES.values()), (
                f"{path.relative_to(REPO)} imports a folder name; use the installed name ({', '.join(FACES)})"
            )


def _core_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _py_files("netmon")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {n for n in _imports(path) if n in modules and n != name and not name.startswith(n + ".")}
        graph[name] -= {n for n in graph[name] if modules[n].name == "__init__.py"}
    return graph


def test_no_import_circles_in_the_core() -> None:
    graph = _core_graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("path", _py_files("netmon"), ids=lambda p: str(p.relative_to(REPO)))
def test_long_modules_say_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= LONG:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert "Why one module:" in doc, (
        f"{path.relative_to(REPO)} has {text.count(chr(10))} lines: split it by what it owns, or say at its "
        "top (a 'Why one module:' paragraph in the docstring) why it stays whole"
    )
