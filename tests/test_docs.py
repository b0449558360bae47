"""The README is the front door: every option and every command a school can use is described there."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _netmon_options() -> list[str]:
    from netmon_proxy.launch import option_manager

    return sorted(k for k in option_manager().keys() if k.startswith("netmon_"))


@pytest.mark.parametrize("option", _netmon_options())
def test_every_option_is_documented(option: str) -> None:
    assert f"`{option}`" in README, f"README.md does not describe the option {option}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_documented(command: str) -> None:
    assert f"netmon {command}" in README, f"README.md does not describe `netmon {command}`"


def test_readme_names_the_two_commands_ci_uses() -> None:
    assert "./dev run" in README and "./dev test" in README
    assert "./dev test" in (REPO / ".ci" / "run").read_text()
