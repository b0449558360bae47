"""The one YAML reader of netmon's configuration: a mapping, or one located error.

Every configuration file (``policy/*.yaml``, ``search_engines.yaml``, ``aup.yaml``, ``mitm_config.yaml``
for the doctor) is read here, so that every mistake reads the same way::

    policy/school.yaml: line 4, column 7: invalid YAML: mapping values are not allowed here (check ...)

The location is the file, then line and column (1-based), then what is wrong and how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netmon.config.checks import Problems, display_path
from netmon.errors import ConfigError

#: How to fix the common kinds of YAML mistake (matched against ruamel's problem text).
_FIXES = (
    ("mapping values are not allowed", "check the indentation and quote values that contain ': '"),
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("could not find expected ':'", "every key needs a ':' after it"),
    ("found undefined alias", "quote values that start with '*'"),
    ("expected <block end>", "check the indentation of this line against the one above"),
    ("found duplicate key", "each key may appear once: remove or merge the repeated one"),
)
_DEFAULT_FIX = "check the quoting and indentation on that line"


def _located(where: str, exc: Exception) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0]).strip()
    fix = next((f for text, f in _FIXES if text in problem), _DEFAULT_FIX)
    return ConfigError(where, f"{at}invalid YAML: {problem} ({fix})")


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document in ``text`` (any type); a syntax error is a :class:`ConfigError` at
    ``where``, line and column."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise _located(where, exc) from None


def load_yaml(path: Path, *, missing: str | None = None, what: str = "a mapping of keys") -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (an empty file is ``{}``).

    Raises :class:`ConfigError` naming the file (and line and column for a syntax error). A missing file
    is an error whose fix is ``missing`` (e.g. ``"copy policy/filtering.yaml from netmon"``).
    """
    where = display_path(Path(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, f"file not found{f' ({missing})' if missing else ''}") from None
    except IsADirectoryError:
        raise ConfigError(where, "is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(where, f"cannot read: {reason}") from None
    data = parse_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(where, f"must be {what} (got {type(data).__name__})")
    return data


def read_yaml(path: Path, problems: Problems, *, optional: bool = True) -> dict[str, Any] | None:
    """:func:`load_yaml` for a collector: errors go to ``problems`` (None returned); a missing
    ``optional`` file in an existing directory is a warning and ``{}`` (built-in defaults)."""
    if optional and not path.exists():
        if not path.parent.is_dir():
            problems.error(display_path(path), "no such policy directory")
            return None
        problems.warn(
            display_path(path), "file not found: using built-in defaults (see netmon's policy/ directory)"
        )
        return {}
    try:
        return load_yaml(path)
    except ConfigError as exc:
        problems.errors.append(exc)
        return None
