"""``policy/school.yaml``: time zone, school hours, the default recording and the groups.

Groups gather people by year group, role or a named list of users; each group may set its own recording
(``min_severity`` and ``categories``). :func:`parse_school` validates the file's mapping and reports every
problem, located by file and key, to a :class:`~netmon.config.checks.Problems` collector.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from netmon.config.checks import Problems, canonical, display_path, parse_clock, severity, string_list
from netmon.config.paths import DEFAULT_LIBRARY_DIR

SCHOOL_FILE = "school.yaml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP_KEYS = {"description", "year_groups", "roles", "users", "users_file", "min_severity", "categories"}
#: Other spellings accepted for group keys (the canonical name is documented and shown in messages).
GROUP_ALIASES = {
    "year_group": "year_groups",
    "years": "year_groups",
    "role": "roles",
    "user": "users",
    "members": "users",
    "category": "categories",
    "severity": "min_severity",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Recording:
    """What is recorded: hits of at least ``min_severity``, in ``categories`` (None: every category).
    ``per_category`` overrides the minimum severity for single categories."""

    min_severity: int = 1
    categories: frozenset[str] | None = None
    per_category: Mapping[str, int] = field(default_factory=dict)

    def allows(self, category: str, severity: int) -> bool:
        if category in self.per_category:
            return severity >= self.per_category[category]
        if self.categories is not None and category not in self.categories:
            return False
        return severity >= self.min_severity


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str = ""
    year_groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    recording: Recording | None = None  # None: this group does not decide what is recorded

    def contains(self, user: str | None, role: str | None, year_group: str | None) -> bool:
        if user and user.casefold() in self.users:
            return True
        if role and role.casefold() in self.roles:
            return True
        return bool(year_group) and normalise_year(year_group) in self.year_groups


@dataclass(frozen=True, slots=True)
class SchoolHours:
    days: frozenset[int] = frozenset(range(5))  # Monday = 0
    start: time = time(8, 0)
    end: time = time(17, 0)

    def contains(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end


def normalise_year(value: object) -> str:
    """``7``, ``"7"``, ``"Y7"``, ``"Year 7"`` and ``"year7"`` are the same year group."""
    text = str(value).strip().casefold().replace(" ", "")
    for prefix in ("year", "yr", "y"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return text[len(prefix) :].lstrip("0") or "0"
    return text.lstrip("0") or text if text.isdigit() else text


def known_categories(library_dir: Path = DEFAULT_LIBRARY_DIR) -> frozenset[str] | None:
    """Category ids of the library registry, or None when there is no registry to check against."""
    try:
        lines = (library_dir / "categories.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    ids = {line.split("|", 1)[0].strip() for line in lines if line.strip() and not line.startswith("#")}
    return frozenset(i for i in ids if i)


def parse_recording(
    data: Mapping[str, Any], where: str, problems: Problems, categories: frozenset[str] | None
) -> Recording:
    min_sev = severity(data.get("min_severity"), f"{where}.min_severity", problems)
    raw = data.get("categories", "all")
    cats: frozenset[str] | None = None
    per: dict[str, int] = {}
    if raw == "all" or raw is None:
        cats = None
    elif isinstance(raw, dict):
        for name, sev in raw.items():
            per[str(name)] = severity(sev, f"{where}.categories.{name}", problems)
        cats = frozenset(per)
    else:
        cats = frozenset(string_list(raw, f"{where}.categories", problems))
    for name in sorted((cats or frozenset()) | set(per)):
        if categories is not None and name not in categories:
            problems.error(f"{where}.categories", f"unknown category {name!r} (see library/categories.txt)")
    return Recording(min_severity=min_sev, categories=cats, per_category=per)


def parse_school(
    data: Mapping[str, Any], path: Path, problems: Problems, categories: frozenset[str] | None
) -> tuple[ZoneInfo, SchoolHours, Recording, dict[str, Group]]:
    file = display_path(path)
    tz_name = str(data.get("timezone", "Europe/London"))
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.error(f"{file}: timezone", f"unknown time zone {tz_name!r} (e.g. Europe/London)")
        tz = ZoneInfo("Europe/London")
    for key in data:
        if key not in {"timezone", "school_hours", "default", "groups"}:
            problems.error(f"{file}: {key}", "unknown key (expected timezone, school_hours, default, groups)")
    hours = SchoolHours()
    raw_hours = data.get("school_hours")
    if raw_hours is not None:
        if not isinstance(raw_hours, dict):
            problems.error(f"{file}: school_hours", "must be a mapping with days, start, end")
        else:
            days = string_list(raw_hours.get("days", list(DAYS[:5])), f"{file}: school_hours.days", problems)
            day_set = set()
            for day in days:
                short = day.strip().casefold()[:3]
                if short not in DAYS:
                    problems.error(f"{file}: school_hours.days", f"unknown day {day!r} (use mon..sun)")
                else:
                    day_set.add(DAYS.index(short))
            start = parse_clock(raw_hours.get("start"), f"{file}: school_hours.start", problems, time(8, 0))
            end = parse_clock(raw_hours.get("end"), f"{file}: school_hours.end", problems, time(17, 0))
            if end <= start:
                problems.error(f"{file}: school_hours.end", "must be after school_hours.start")
            hours = SchoolHours(frozenset(day_set), start, end)
    raw_default = data.get("default") or {}
    if not isinstance(raw_default, dict):
        problems.error(f"{file}: default", "must be a mapping with min_severity and categories")
        raw_default = {}
    default = parse_recording(raw_default, f"{file}: default", problems, categories)
    groups: dict[str, Group] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        problems.error(f"{file}: groups", "must be a mapping of group name to its members and recording")
        raw_groups = {}
    for name, spec in raw_groups.items():
        name = str(name)
        where = f"{file}: groups.{name}"
        if not _NAME.match(name):
            problems.error(where, "group names use letters, digits, '-', '_' and '.'")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            problems.error(where, "must be a mapping (year_groups, roles, users, min_severity, categories)")
            continue
        spec = canonical(spec, GROUP_ALIASES, nested=("recording", "record"))
        for key in spec:
            if key not in _GROUP_KEYS:
                problems.error(
                    f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(_GROUP_KEYS))})"
                )
        users = {u.casefold() for u in string_list(spec.get("users"), f"{where}.users", problems)}
        if spec.get("users_file"):
            list_path = path.parent / str(spec["users_file"])
            try:
                for line in list_path.read_text(encoding="utf-8").splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line:
                        users.add(line.casefold())
            except OSError as exc:
                problems.error(f"{where}.users_file", f"cannot read {list_path}: {exc.strerror or exc}")
        recording = None
        if "min_severity" in spec or "categories" in spec:
            recording = parse_recording(spec, where, problems, categories)
        groups[name] = Group(
            name=name,
            description=str(spec.get("description", "")),
            year_groups=frozenset(
                normalise_year(y)
                for y in string_list(spec.get("year_groups"), f"{where}.year_groups", problems)
            ),
            roles=frozenset(r.casefold() for r in string_list(spec.get("roles"), f"{where}.roles", problems)),
            users=frozenset(users),
            recording=recording,
        )
    return tz, hours, default, groups
