"""The school's policy: groups, per-group recording and alert rules, loaded into an immutable snapshot.

Two files in the policy directory (``policy/`` by default):

- ``school.yaml``: time zone and school hours, the ``default`` recording, and ``groups`` (members by year
  group, role or a named list of users; each group may set its own recording: ``min_severity`` and
  ``categories``).
- ``alerts.yaml``: named ``recipients`` lists, ``digest`` times, ``reports`` recipients and alert ``rules``
  (see :mod:`netmon.alerts.rules`).

:func:`load_policy` validates both and raises :class:`~netmon.errors.ConfigError` located by file and key
(``policy/school.yaml: groups.year7.min_severity: must be 1-5 (got 7)``). :class:`PolicyWatcher` reloads
the snapshot when a file changes and keeps the old one when an edit is broken.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.errors import ConfigError

log = logging.getLogger(__name__)

SCHOOL_FILE = "school.yaml"
ALERTS_FILE = "alerts.yaml"
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


@dataclass(frozen=True, slots=True)
class Policy:
    """An immutable, validated policy snapshot. Swap the whole object to change policy."""

    directory: str
    timezone: ZoneInfo
    hours: SchoolHours
    default: Recording
    groups: Mapping[str, Group]
    recipients: Mapping[str, tuple[str, ...]]
    rules: tuple[Any, ...]  # tuple[netmon.alerts.rules.Rule, ...]
    digest_times: tuple[time, ...]
    report_to: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def groups_for(
        self, user: str | None, role: str | None, year_group: str | None, groups: Iterable[str] = ()
    ) -> frozenset[str]:
        """The policy groups of a person, plus the groups the identity already carries (portal, roster)."""
        found = {g.name for g in self.groups.values() if g.contains(user, role, year_group)}
        found.update(g for g in groups if g)
        return frozenset(found)

    def records(self, groups: Iterable[str], category: str, severity: int) -> bool:
        """Whether a hit of ``category``/``severity`` is recorded for someone in ``groups``.

        Every group that sets its own recording is asked and any yes records (the most protective
        reading); when none of the person's groups sets recording, the ``default`` applies.
        """
        deciding = [
            self.groups[g].recording
            for g in groups
            if g in self.groups and self.groups[g].recording is not None
        ]
        if not deciding:
            return self.default.allows(category, severity)
        return any(r.allows(category, severity) for r in deciding if r is not None)

    def in_school_hours(self, when: datetime) -> bool:
        return self.hours.contains(when.astimezone(self.timezone))


def normalise_year(value: object) -> str:
    """``7``, ``"7"``, ``"Y7"``, ``"Year 7"`` and ``"year7"`` are the same year group."""
    text = str(value).strip().casefold().replace(" ", "")
    for prefix in ("year", "yr", "y"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return text[len(prefix) :].lstrip("0") or "0"
    return text.lstrip("0") or text if text.isdigit() else text


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
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path, problems: Problems) -> dict[str, Any] | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    where = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not path.parent.is_dir():
            problems.error(where, "no such policy directory")
            return None
        problems.warn(where, "file not found: using built-in defaults (see netmon's policy/ directory)")
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        problems.error(where, f"cannot read: {exc}")
        return None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.error(where, f"{line}invalid YAML: {problem}")
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.error(where, "must be a mapping of keys (got a list or a value)")
        return None
    return data


def known_categories(library_dir: Path = DEFAULT_LIBRARY_DIR) -> frozenset[str] | None:
    """Category ids of the library registry, or None when there is no registry to check against."""
    try:
        lines = (library_dir / "categories.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    ids = {line.split("|", 1)[0].strip() for line in lines if line.strip() and not line.startswith("#")}
    return frozenset(i for i in ids if i)


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


def check_policy(
    directory: str | Path, env: Mapping[str, str] | None = None, library_dir: Path = DEFAULT_LIBRARY_DIR
) -> tuple[Policy | None, Problems]:
    """Validate a policy directory; return the snapshot (None when there are errors) and every problem."""
    from netmon.alerts.rules import parse_alerts

    root = Path(directory)
    problems = Problems()
    env = os.environ if env is None else env
    categories = known_categories(library_dir)
    school = read_yaml(root / SCHOOL_FILE, problems)
    alerts = read_yaml(root / ALERTS_FILE, problems)
    if school is None or alerts is None:
        return None, problems
    tz, hours, default, groups = parse_school(school, root / SCHOOL_FILE, problems, categories)
    parsed = parse_alerts(
        alerts,
        display_path(root / ALERTS_FILE),
        problems,
        env=env,
        groups=frozenset(groups),
        categories=categories,
    )
    if problems.errors:
        return None, problems
    policy = Policy(
        directory=str(root),
        timezone=tz,
        hours=hours,
        default=default,
        groups=groups,
        recipients=parsed.recipients,
        rules=parsed.rules,
        digest_times=parsed.digest_times,
        report_to=parsed.report_to,
        warnings=tuple(problems.warnings),
    )
    return policy, problems


def load_policy(
    directory: str | Path, env: Mapping[str, str] | None = None, library_dir: Path = DEFAULT_LIBRARY_DIR
) -> Policy:
    """Load and validate a policy directory; raise the first :class:`ConfigError`."""
    policy, problems = check_policy(directory, env, library_dir)
    if policy is None:
        raise problems.errors[0]
    for warning in problems.warnings:
        log.info("policy: %s", warning)
    return policy


class PolicyWatcher:
    """Holds the current :class:`Policy` and reloads it when a file in the directory changes.

    A thread polls modification times every ``interval`` seconds and reloads once a change has stayed
    the same for one interval (never a half-written file). A broken edit keeps the old snapshot
    (the error is logged and kept in :attr:`last_error`). Read :attr:`current` wherever a policy is needed.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        interval: float = 2.0,
        on_reload: Callable[[Policy], None] | None = None,
        library_dir: Path = DEFAULT_LIBRARY_DIR,
    ) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.on_reload = on_reload
        self.library_dir = library_dir
        self.current: Policy = load_policy(self.directory, library_dir=library_dir)
        self.last_error: ConfigError | None = None
        self._stamp = self._mtimes()
        self._settling: tuple[tuple[str, int, int], ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mtimes(self) -> tuple[tuple[str, int, int], ...]:
        stamps = []
        try:
            paths = sorted(p for p in self.directory.rglob("*") if p.is_file())
        except OSError:
            paths = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            stamps.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def check(self) -> bool:
        """Reload if something changed and has settled since the last call; return True when a new
        snapshot was installed."""
        stamp = self._mtimes()
        if stamp == self._stamp:
            self._settling = None
            return False
        if stamp != self._settling:
            # still being written (an editor or a copy may be half-way through a file): look again
            # next time, and load only what has stayed the same for a whole interval
            self._settling = stamp
            return False
        self._settling = None
        self._stamp = stamp
        try:
            policy = load_policy(self.directory, library_dir=self.library_dir)
        except ConfigError as exc:
            self.last_error = exc
            log.error("policy reload failed, keeping the previous policy: %s", exc)
            return False
        self.current = policy
        self.last_error = None
        log.info(
            "policy reloaded from %s (%d groups, %d rules)",
            self.directory,
            len(policy.groups),
            len(policy.rules),
        )
        if self.on_reload is not None:
            self.on_reload(policy)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def start(self) -> PolicyWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="netmon-policy-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def hit_filter(policy: Policy | Callable[[], Policy]) -> Callable[[Any, Any], bool]:
    """``hit_filter(context, hit)`` for the incident writer: is this hit recorded for this person?

    ``policy`` is a snapshot or a callable returning the current one (``lambda: watcher.current``).
    """
    current: Callable[[], Policy] = policy if callable(policy) else (lambda: policy)

    def records(context: Any, hit: Any) -> bool:
        snapshot = current()
        groups = snapshot.groups_for(context.user, context.role, context.year_group, context.groups)
        return snapshot.records(groups, hit.category, hit.severity)

    return records
