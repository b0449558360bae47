"""The gateway's own configuration files, as ``netmon doctor`` and ``netmon status`` read them.

- ``mitm_config.yaml``: the proxy's options (:func:`read_options`; relative paths resolved against it),
- ``/etc/netmon/netmon-vars.nft``: ``define NAME = value`` site values (:func:`read_nft_vars`),
- ``/etc/netmon/netmon.env``: the services' environment file (:func:`read_env_file`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from netmon.config.yamlfile import load_yaml
from netmon.errors import ConfigError


class OptionsFileError(ConfigError, ValueError):
    """A mitm_config.yaml that cannot be read (a ValueError as well, as the doctor expects)."""


def read_options(path: Path) -> dict[str, Any]:
    """The mapping of a mitm_config.yaml (relative paths resolved against its folder); a located
    :class:`ConfigError` (a :class:`ValueError` too, for older callers) when it cannot be read."""
    try:
        data = load_yaml(path, what="a mapping of option: value")
    except ConfigError as exc:
        raise OptionsFileError(exc.where, exc.message) from None
    base = path.resolve().parent
    for key in (
        "netmon_library",
        "netmon_library_overlay",
        "netmon_policy",
        "netmon_state_dir",
        "confdir",
        "netmon_no_decrypt_file",
    ):
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data[key] = str((base / value).resolve())
    return data


def read_nft_vars(path: Path) -> dict[str, str]:
    """``define NAME = value`` lines of netmon-vars.nft (quotes removed)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*define\s+(\w+)\s*=\s*(.+?)\s*(#.*)?$", line)
        if match:
            out[match.group(1)] = match.group(2).strip().strip('"')
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd EnvironmentFile (comments, blank lines and quotes handled)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = (part.strip() for part in line.removeprefix("export ").split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out
