"""Per-site policy overlays for a trust of schools: the trust-wide policy, with this site's files over it.

::

    policy/                   the trust-wide policy: school.yaml, alerts.yaml, filtering.yaml
    policy/sites/north/       the overlay of the site "north" (NETMON_SITE=north): any of the same files

Each file of the overlay is merged over the trust-wide file of the same name, then validated as one file:

- a top-level key replaces the trust's value as a whole (``timezone``, ``school_hours``, ``default``,
  ``digest``, ``allow``, ``url_lists`` ...);
- in ``groups`` (school.yaml, filtering.yaml) and ``recipients`` (alerts.yaml) each entry is merged by
  name: a group's keys given by the site replace the trust's keys of that group (its other keys stay), and a
  group the trust does not have is added;
- ``rules`` (alerts.yaml) are merged by rule name the same way (a rule's keys replaced, new rules added).

Paths in an overlay (``users_file``, ``url_lists``, ``hash_lists``, ``ut1``) are relative to the overlay's
own directory. :class:`Merged` keeps, for every key, the file it came from: errors name that file (the
overlay's when the site gave the value), and ``netmon policy show`` prints it beside each value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmon.config.checks import Problems, display_path
from netmon.config.yamlfile import read_yaml
from netmon.errors import ConfigError

SITES_DIR = "sites"
#: Mappings merged entry by entry (then key by key inside an entry), per file.
BY_NAME = {"school.yaml": ("groups",), "filtering.yaml": ("groups",), "alerts.yaml": ("recipients",)}
#: Lists of mappings merged by their ``name``, per file.
NAMED_LISTS = {"alerts.yaml": ("rules",)}
# a school's name as it is written ("Main site", "St Mary's"), but never a path: no separators, no leading dot
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,'&()-]*$")


@dataclass(frozen=True, slots=True)
class Merged:
    """One policy file after the site's overlay: the data, and the file each key path came from."""

    data: dict[str, Any]
    origins: Mapping[str, str] = field(default_factory=dict)  # "groups.year7.min_severity" -> file
    files: tuple[str, ...] = ()  # the files read, trust-wide first

    def origin(self, key_path: str) -> str:
        """The file that gave ``key_path`` (its longest known prefix), else the trust-wide file."""
        best = ""
        for known in self.origins:
            if (key_path == known or key_path.startswith(known + ".")) and len(known) > len(best):
                best = known
        return self.origins[best] if best else (self.files[0] if self.files else "")

    def relocate(self, error: ConfigError) -> ConfigError:
        """``error`` (located in the trust-wide file) named after the file that gave the value."""
        if len(self.files) < 2:
            return error
        file, sep, key_path = error.where.partition(": ")
        if not sep or file != self.files[0]:
            return error
        origin = self.origin(key_path)
        return error if origin == file else ConfigError(f"{origin}: {key_path}", error.message)

    def relocate_text(self, warning: str) -> str:
        """A ``file: key: message`` warning named after the file that gave the value."""
        if len(self.files) < 2 or not warning.startswith(self.files[0] + ": "):
            return warning
        rest = warning[len(self.files[0]) + 2 :]
        key_path, sep, message = rest.partition(": ")
        if not sep:
            return warning
        relocated = self.relocate(ConfigError(f"{self.files[0]}: {key_path}", message))
        return f"{relocated.where}: {relocated.message}"

    def leaves(self) -> Iterator[tuple[str, Any, str]]:
        """(key path, value, file) of every value, in file order: what ``netmon policy show`` prints."""
        yield from _leaves(self.data, "", self)


def _leaves(value: Any, prefix: str, merged: Merged) -> Iterator[tuple[str, Any, str]]:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            yield from _leaves(sub, f"{prefix}.{key}" if prefix else str(key), merged)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for item in value:
            yield from _leaves(
                {k: v for k, v in item.items() if k != "name"} or {"name": item["name"]},
                f"{prefix}.{item['name']}",
                merged,
            )
    else:
        yield prefix, value, merged.origin(prefix)


def site_directory(root: Path, site: str) -> Path | None:
    """``<root>/sites/<site>`` when ``site`` is set and can name a directory, else None (the directory need
    not exist; :func:`check_site` reports a bad name)."""
    return root / SITES_DIR / site if site and _SITE_NAME.match(site) and site == site.strip() else None


def check_site(root: Path, site: str, problems: Problems) -> None:
    """A site name that cannot be a directory is an error; a trust with overlays but none for this site is
    a warning (the trust-wide policy applies as it is)."""
    if not site:
        return
    where = display_path(root / SITES_DIR)
    if not _SITE_NAME.match(site) or site != site.strip():
        if (root / SITES_DIR).is_dir():  # overlays are in use, and this site could never have one
            problems.error(
                f"{where}: NETMON_SITE",
                f"{site!r} cannot name a directory (letters, digits, spaces and -_.,'&(); no / or leading dot)",
            )
        return
    overlay = root / SITES_DIR / site
    if (root / SITES_DIR).is_dir() and not overlay.is_dir():
        others = sorted(p.name for p in (root / SITES_DIR).iterdir() if p.is_dir())
        problems.warn(
            where,
            f"no overlay for site {site!r} (sites here: {', '.join(others) or 'none'}): trust-wide only",
        )
    elif overlay.is_dir():
        for extra in sorted(p.name for p in overlay.iterdir() if p.is_file() and p.suffix == ".yaml"):
            if extra not in BY_NAME:
                problems.warn(
                    display_path(overlay / extra),
                    f"not a policy file ({', '.join(sorted(BY_NAME))}): ignored",
                )


def read_merged(
    root: Path, name: str, site: str, problems: Problems, *, optional: bool = True
) -> Merged | None:
    """``<root>/<name>`` with ``<root>/sites/<site>/<name>`` merged over it (when it exists); errors and
    warnings go to ``problems`` (None returned on an error)."""
    base_path = root / name
    base = read_yaml(base_path, problems, optional=optional)
    if base is None:
        return None
    base_file = display_path(base_path)
    overlay = site_directory(root, site)
    over_path = overlay / name if overlay is not None else None
    if over_path is None or not over_path.is_file():
        return Merged(base, _origins(base, name, base_file), (base_file,))
    over = read_yaml(over_path, problems, optional=False)
    if over is None:
        return None
    return merge(base, over, name, base_file, display_path(over_path), over_path.parent)


def merged_file(path: Path, site: str, *, missing: str) -> Merged:
    """:func:`read_merged` for a single file (``filtering.yaml``): raises the first :class:`ConfigError`."""
    problems = Problems()
    if not path.is_file():
        raise ConfigError(display_path(path), f"file not found ({missing})")
    merged = read_merged(path.parent, path.name, site, problems, optional=False)
    if merged is None:
        raise problems.errors[0]
    return merged


def _origins(data: Mapping[str, Any], name: str, file: str) -> dict[str, str]:
    return {path: file for path, _value in _paths(data, name)}


def _paths(data: Mapping[str, Any], name: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict):
            yield from _paths(value, name, path + ".")
        elif not prefix and key in NAMED_LISTS.get(name, ()) and isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and item.get("name"):
                    yield from _paths({str(item["name"]): item}, name, path + ".")


def merge(
    base: Mapping[str, Any],
    over: Mapping[str, Any],
    name: str,
    base_file: str,
    over_file: str,
    over_dir: Path,
) -> Merged:
    """``over`` merged over ``base`` by the rules in the module docstring, with each key's origin."""
    over = _absolute_paths(over, name, over_dir)
    origins = _origins(base, name, base_file)
    out: dict[str, Any] = dict(base)

    def give(path: str, value: Any) -> None:
        """``path`` (and everything under it) now comes from the overlay."""
        for known in [k for k in origins if k == path or k.startswith(path + ".")]:
            del origins[known]
        origins[path] = over_file
        if isinstance(value, dict):
            origins.update((sub, over_file) for sub, _v in _paths(value, name, path + "."))

    for key, value in over.items():
        current = out.get(key)
        if value is None and (key in BY_NAME.get(name, ()) or key in NAMED_LISTS.get(name, ())):
            continue  # an empty "groups:" in an overlay changes nothing (it never wipes the trust's)
        if key in BY_NAME.get(name, ()) and isinstance(value, dict) and isinstance(current, dict):
            merged = dict(current)
            for entry, spec in value.items():
                if spec is None and entry in merged:
                    continue  # "year7:" with nothing under it keeps the trust's year7
                if isinstance(spec, dict) and isinstance(merged.get(entry), dict):
                    merged[entry] = {**merged[entry], **spec}
                    for sub, sub_value in spec.items():
                        give(f"{key}.{entry}.{sub}", sub_value)
                else:
                    merged[entry] = spec
                    give(f"{key}.{entry}", spec)
            out[key] = merged
        elif key in NAMED_LISTS.get(name, ()) and isinstance(value, list) and isinstance(current, list):
            items = list(current)
            index = {
                str(r.get("name")): i for i, r in enumerate(items) if isinstance(r, dict) and r.get("name")
            }
            for rule in value:
                rule_name = str(rule.get("name")) if isinstance(rule, dict) and rule.get("name") else ""
                if rule_name in index:
                    items[index[rule_name]] = {**items[index[rule_name]], **rule}
                    for sub, sub_value in rule.items():
                        give(f"{key}.{rule_name}.{sub}", sub_value)
                else:
                    items.append(rule)
                    if rule_name:
                        give(f"{key}.{rule_name}", rule)
            out[key] = items
        else:
            out[key] = value
            give(key, value)
    return Merged(out, origins, (base_file, over_file))


def _absolute_paths(data: Mapping[str, Any], name: str, directory: Path) -> dict[str, Any]:
    """The overlay's relative paths made absolute against its own directory."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            return str(directory / value)
        return value

    out = dict(data)
    if name == "filtering.yaml":
        for key in ("hash_lists", "url_lists"):
            if isinstance(out.get(key), list):
                out[key] = [fix(v) for v in out[key]]
        if isinstance(out.get("ut1"), str) and out["ut1"] not in ("auto", "off"):
            out["ut1"] = fix(out["ut1"])
    if name == "school.yaml" and isinstance(out.get("groups"), dict):
        out["groups"] = {
            g: (
                {**spec, "users_file": fix(spec["users_file"])}
                if isinstance(spec, dict) and "users_file" in spec
                else spec
            )
            for g, spec in out["groups"].items()
        }
    return out
