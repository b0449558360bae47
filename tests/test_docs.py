"""The documentation keeps up with the code.

- docs/reference.md is exactly what docs/gen_reference.py writes from the code today (options, commands,
  settings), so a new option, command or setting cannot land without its reference entry.
- Every proxy option, every command and every environment setting is also described in prose somewhere
  in README.md or docs/ (the generated reference does not count: it lists, it does not explain).
- The README is the front door: it names the two commands CI and newcomers use, and stays short.
- Relative links between the pages point at files that exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GENERATOR = DOCS / "gen_reference.py"
REFERENCE = DOCS / "reference.md"
README = REPO / "README.md"


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@cache
def _prose() -> str:
    """README and every docs page except the generated reference."""
    return "\n".join(p.read_text(encoding="utf-8") for p in _pages() if p != REFERENCE)


def test_reference_is_generated_from_the_current_code() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETMON_")}
    out = subprocess.run(
        [sys.executable, str(GENERATOR), "--stdout"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert out.stdout == current, (
        "docs/reference.md is stale: run `.venv/bin/python docs/gen_reference.py` and commit the result"
    )


@cache
def _options() -> list[str]:
    return [name for name, *_ in _generator().proxy_options()]


@cache
def _commands() -> list[str]:
    return [full for full, *_ in _generator().commands()]


@cache
def _settings() -> list[str]:
    return [name for name, *_ in _generator().settings() or []]


def test_the_code_declares_what_is_documented() -> None:
    assert "netmon_scan_workers" in _options()
    assert {"netmon run", "netmon portal", "netmon export", "netmon lists import ut1"} <= set(_commands())


@pytest.mark.parametrize("option", _options())
def test_every_option_is_described(option: str) -> None:
    assert f"`{option}`" in _prose(), f"no page in README.md or docs/ describes the option {option}"


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_described(command: str) -> None:
    assert command in _prose(), f"no page in README.md or docs/ describes `{command}`"


_NO_SETTINGS = pytest.param(None, marks=pytest.mark.skip(reason="netmon.config.settings does not exist yet"))


@pytest.mark.parametrize("setting", _settings() or [_NO_SETTINGS])
def test_every_setting_is_described(setting: str) -> None:
    assert f"`{setting}`" in _prose(), f"no page in README.md or docs/ describes {setting}"


def test_readme_names_the_two_commands_ci_uses() -> None:
    text = README.read_text(encoding="utf-8")
    assert "./dev run" in text and "./dev test" in text
    assert "./dev test" in (REPO / ".ci" / "run").read_text()


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 320, f"README.md has {lines} lines: move the detail to a page under docs/"


LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_files(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = [
        target
        for target in LINK.findall(text)
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.relative_to(REPO)} links to missing files: {broken}"
