"""The school's policy: groups, per-group recording and alert rules, loaded into an immutable snapshot.

Two files in the policy directory (``policy/`` by default):

- ``school.yaml``: time zone and school hours, the ``default`` recording, and ``groups`` (members by year
  group, role or a named list of users; each group may set its own recording: ``min_severity`` and
  ``categories``). Schema: :mod:`netmon.config.school`.
- ``alerts.yaml``: named ``recipients`` lists, ``digest`` times, ``reports`` recipients and alert ``rules``.
  Schema: :mod:`netmon.config.alert_rules`.

For a trust of schools the directory is the trust-wide policy and ``sites/<site>/`` (the site is
``NETMON_SITE``) holds this site's overlay, merged over it file by file (:mod:`netmon.config.overlay`):
an error names the file that gave the value.

:func:`load_policy` validates both and raises :class:`~netmon.errors.ConfigError` located by file and key
(``policy/school.yaml: groups.year7.min_severity: must be 1-5 (got 7)``). :class:`PolicySource` holds the
one current snapshot of a process and reloads it (netmon's one file watcher) when a file changes, keeping
the old one when an edit is broken; every part of a process that needs the policy reads
``source.current``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from netmon.config.alert_rules import Rule, parse_alerts
from netmon.config.checks import (
    Problems,
    canonical,
    display_path,
    parse_clock,
    severity,
    string_list,
)
from netmon.config.overlay import Merged, check_site, read_merged
from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.config.school import (
    DAYS,
    GROUP_ALIASES,
    SCHOOL_FILE,
    Group,
    Recording,
    SchoolHours,
    known_categories,
    normalise_year,
    parse_recording,
    parse_school,
)
from netmon.config.watch import FileWatcher, stamps
from netmon.config.yamlfile import read_yaml
from netmon.errors import ConfigError

__all__ = [
    "ALERTS_FILE",
    "DAYS",
    "GROUP_ALIASES",
    "SCHOOL_FILE",
    "Group",
    "Policy",
    "PolicySource",
    "PolicyWatcher",
    "Problems",
    "Recording",
    "SchoolHours",
    "canonical",
    "check_policy",
    "display_path",
    "hit_filter",
    "known_categories",
    "load_policy",
    "normalise_year",
    "parse_clock",
    "parse_recording",
    "parse_school",
    "read_yaml",
    "severity",
    "string_list",
]

log = logging.getLogger(__name__)

ALERTS_FILE = "alerts.yaml"
_MEMBERS_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Policy:
    """An immutable, validated policy snapshot. Swap the whole object to change policy."""

    directory: str
    timezone: ZoneInfo
    hours: SchoolHours
    default: Recording
    groups: Mapping[str, Group]
    recipients: Mapping[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    digest_times: tuple[time, ...]
    report_to: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    site: str = ""  # the site whose overlay (sites/<site>/) was merged over the directory, if any
    files: tuple[str, ...] = ()  # every file read, trust-wide first
    # (user, role, year group) -> the policy groups containing them: a pure function of this snapshot,
    # asked for every recorded hit and alert rule, so remembered (bounded; a new snapshot starts empty)
    _members: dict[tuple[str | None, str | None, str | None], frozenset[str]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def groups_for(
        self, user: str | None, role: str | None, year_group: str | None, groups: Iterable[str] = ()
    ) -> frozenset[str]:
        """The policy groups of a person, plus the groups the identity already carries (portal, roster)."""
        key = (user, role, year_group)
        member = self._members.get(key)
        if member is None:
            if len(self._members) >= _MEMBERS_LIMIT:
                self._members.clear()
            member = frozenset(g.name for g in self.groups.values() if g.contains(user, role, year_group))
            self._members[key] = member
        extra = [g for g in groups if g]
        return member.union(extra) if extra else member

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


def check_policy(
    directory: str | Path,
    env: Mapping[str, str] | None = None,
    library_dir: Path = DEFAULT_LIBRARY_DIR,
    site: str | None = None,
) -> tuple[Policy | None, Problems]:
    """Validate a policy directory, with the overlay of ``site`` (default: ``NETMON_SITE`` of ``env``)
    merged over it; return the snapshot (None when there are errors) and every problem."""
    root = Path(directory)
    problems = Problems()
    env = os.environ if env is None else env
    site = env.get("NETMON_SITE", "") if site is None else site
    categories = known_categories(library_dir)
    check_site(root, site, problems)
    school = read_merged(root, SCHOOL_FILE, site, problems)
    alerts = read_merged(root, ALERTS_FILE, site, problems)
    if school is None or alerts is None:
        return None, problems
    tz, hours, default, groups = parse_school(school.data, root / SCHOOL_FILE, problems, categories)
    parsed = parse_alerts(
        alerts.data,
        display_path(root / ALERTS_FILE),
        problems,
        env=env,
        groups=frozenset(groups),
        categories=categories,
    )
    _relocate(problems, (school, alerts))
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
        site=site if len(school.files) + len(alerts.files) > 2 else "",
        files=(*school.files, *alerts.files),
    )
    return policy, problems


def _relocate(problems: Problems, merged: Iterable[Merged]) -> None:
    """Errors and warnings named after the file that gave the value (a site's overlay or the trust's)."""
    for m in merged:
        problems.errors = [m.relocate(e) for e in problems.errors]
        problems.warnings = [m.relocate_text(w) for w in problems.warnings]


def load_policy(
    directory: str | Path,
    env: Mapping[str, str] | None = None,
    library_dir: Path = DEFAULT_LIBRARY_DIR,
    site: str | None = None,
) -> Policy:
    """Load and validate a policy directory (with ``site``'s overlay, default ``NETMON_SITE``); raise the
    first :class:`ConfigError`."""
    policy, problems = check_policy(directory, env, library_dir, site=site)
    if policy is None:
        raise problems.errors[0]
    for warning in problems.warnings:
        log.info("policy: %s", warning)
    return policy


class PolicySource:
    """The one current :class:`Policy` of a process, reloaded when a file in the directory changes.

    Create it once (the proxy's composition root does) and hand it to every part that needs the policy:
    they read :attr:`current` each time, so an edit reaches all of them together. ``start()`` runs
    netmon's one file watcher (:class:`netmon.config.watch.FileWatcher`): a change is loaded once it has
    held still for one ``interval``; a broken edit keeps the old snapshot (logged, and kept in
    :attr:`last_error`). ``on_reload`` callbacks run in the watcher's thread after each new snapshot.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        interval: float = 2.0,
        on_reload: Callable[[Policy], None] | None = None,
        library_dir: Path = DEFAULT_LIBRARY_DIR,
        site: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.library_dir = library_dir
        self.site = site  # None: NETMON_SITE
        self.listeners: list[Callable[[Policy], None]] = [on_reload] if on_reload is not None else []
        self.current: Policy = load_policy(self.directory, library_dir=library_dir, site=site)
        self._watcher: FileWatcher[Policy] = FileWatcher(
            lambda: stamps([self.directory]),
            lambda: load_policy(self.directory, library_dir=self.library_dir, site=self.site),
            on_change=self._install,
            interval=interval,
            name="netmon-policy-watcher",
        )

    @property
    def interval(self) -> float:
        return self._watcher.interval

    @property
    def last_error(self) -> ConfigError | None:
        error = self._watcher.last_error
        return error if isinstance(error, ConfigError) else None

    def _install(self, policy: Policy) -> None:
        self.current = policy
        log.info(
            "policy reloaded from %s (%d groups, %d rules)",
            self.directory,
            len(policy.groups),
            len(policy.rules),
        )
        for listener in list(self.listeners):
            listener(policy)

    def groups_for(
        self, user: str | None, role: str | None, year_group: str | None, groups: Iterable[str] = ()
    ) -> frozenset[str]:
        """:meth:`Policy.groups_for` on the current snapshot."""
        return self.current.groups_for(user, role, year_group, groups)

    def check(self) -> bool:
        """Reload if something changed and has settled since the last call; True when a new snapshot
        was installed."""
        return self._watcher.check()

    @property
    def running(self) -> bool:
        return self._watcher.running

    def start(self) -> PolicySource:
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._watcher.stop()


#: The name of :class:`PolicySource` before it became the one holder of a process.
PolicyWatcher = PolicySource


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
