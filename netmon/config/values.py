"""Values of configuration files that are more than a name: durations and e-mail addresses.

``parse_duration("10m")``, ``format_duration(timedelta(hours=2))`` and ``addresses(...)`` (``${VAR}``
from the environment, named recipient lists, every address checked) for :mod:`netmon.config.alert_rules`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from netmon.config.checks import Problems, string_list

__all__ = ["addresses", "expand_addresses", "format_duration", "parse_duration"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta | None:
    """``90``, ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1w"``; None when invalid."""
    if isinstance(value, bool):
        return None
    match = _DURATION.match(str(value))
    if not match:
        return None
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def expand_addresses(value: str, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Replace ``${VAR}`` from ``env`` and split on commas; return (addresses, unset variable names)."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        if not env.get(match[1], "").strip():
            missing.append(match[1])
        return env.get(match[1], "")

    text = _ENV.sub(sub, value)
    return [a.strip() for a in re.split(r"[,;\s]+", text) if a.strip()], missing


def addresses(
    raw: object,
    where: str,
    problems: Problems,
    env: Mapping[str, str],
    named: Mapping[str, tuple[str, ...]] | None,
) -> tuple[str, ...]:
    found: list[str] = []
    for item in string_list(raw, where, problems):
        if named is not None and item in named:
            found.extend(named[item])
            continue
        addresses, missing = expand_addresses(item, env)
        for name in missing:
            problems.warn(where, f"environment variable {name} is not set: no recipient from it")
        for address in addresses:
            if not _ADDRESS.match(address):
                known = f" or one of the recipients lists ({', '.join(named)})" if named else ""
                source = ", ".join(f"${{{v}}}" for v in _ENV.findall(item))
                origin = f" (from {source})" if source else ""
                problems.error(where, f"{address!r}{origin} is not an e-mail address{known}")
            else:
                found.append(address)
    return tuple(dict.fromkeys(found))
