"""Small validation helpers shared by every configuration parser (policy, alert rules, filtering).

:class:`Problems` collects every error and warning of a file so that a check command can list them all;
the helpers read one value each and report a located message (``file: key: what is wrong (got ...)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any

from netmon.errors import ConfigError


class Problems:
    """Collects every error of a policy directory so that ``netmon policy check`` can list them all."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(ConfigError(where, message))

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")


def canonical(
    spec: Mapping[str, Any], aliases: Mapping[str, str], nested: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``spec`` with alias keys renamed (``year_group`` -> ``year_groups``) and ``nested`` mappings (e.g.
    ``recording: {min_severity: 2}``) merged in; the canonical key wins when both are given."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in nested and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                out.setdefault(aliases.get(str(sub_key), str(sub_key)), sub_value)
            continue
        name = aliases.get(str(key), str(key))
        if name not in out or name == key:
            out[name] = value
    return out


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def severity(value: object, where: str, problems: Problems, default: int = 1) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        problems.error(where, f"must be 1-5 (got {value})")
        return default
    return value


def string_list(value: object, where: str, problems: Problems) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        problems.error(where, "must be a list of names")
        return []
    return [str(v) for v in value]


def parse_clock(value: object, where: str, problems: Problems, default: time) -> time:
    if value is None:
        return default
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        problems.error(where, f'must be a time of day like "08:30" (got {value!r})')
        return default
    return time(int(match[1]), int(match[2]))
