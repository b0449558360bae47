"""The schema of ``policy/alerts.yaml``: alert rules, recipients, digest times and report recipients.

A rule fires for an incident when every condition it sets holds: ``categories``, ``min_severity``,
``groups`` (policy groups of the pupil), ``sources``, ``sites``, ``when`` (``any``, ``out_of_hours`` or
``in_hours`` against the school hours in ``school.yaml``) and ``repeat`` (the pupil's Nth matching incident
within a time window). Recipients are ``to`` plus ``to_groups``/``to_sites`` for the pupil's groups and
the incident's site; ``urgency`` is ``immediate`` or ``digest``; ``cooldown`` folds further incidents of the
same pupil under the same rule into the alert already sent.

:func:`parse_alerts` validates the file into an :class:`AlertsConfig`; the engine that turns incidents into
outbox rows is :class:`netmon.alerts.rules.RuleEngine` (config never imports alerts).

``minimal: true`` (top level, or per rule) sends e-mails without the pupil, excerpt or URL; a rule's
``escalate_after`` and ordered ``escalation`` contacts say who hears of a severity-5 alert nobody has
acknowledged in the console; ``webhook: true`` also posts the incident to ``NETMON_WEBHOOK_URL``.

Why one module: it is the schema of one file (``alerts.yaml``): every key, its aliases and its checks sit
together so that a new key is added, validated and documented in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from netmon.config.checks import Problems, canonical, parse_clock, severity, string_list
from netmon.config.values import addresses, format_duration, parse_duration
from netmon.scan.findings import SOURCES

if TYPE_CHECKING:
    from netmon.store.incidents import Incident


class SchoolClock(Protocol):
    """What a rule needs of the policy: the school's time zone, hours and digest times."""

    timezone: ZoneInfo
    digest_times: tuple[time, ...]

    def in_school_hours(self, when: datetime) -> bool: ...


URGENCIES = ("immediate", "digest")
WHEN = ("any", "out_of_hours", "in_hours")
#: Where the device was: on the school's network, or a school-owned device off site (the WireGuard tunnel).
PLACES = ("any", "on_site", "off_site")
OFF_SITE_MARK = "(off-site)"  # how an incident's device names a device that came through the tunnel
_RULE_KEYS = {
    "name",
    "description",
    "enabled",
    "categories",
    "min_severity",
    "groups",
    "sources",
    "sites",
    "when",
    "place",
    "repeat",
    "to",
    "to_groups",
    "to_sites",
    "urgency",
    "cooldown",
    "minimal",
    "escalate_after",
    "escalation",
    "webhook",
}
#: Other spellings accepted in rules (canonical names are documented and used in messages).
RULE_ALIASES = {
    "category": "categories",
    "group": "groups",
    "source": "sources",
    "site": "sites",
    "severity": "min_severity",
    "recipients": "to",
    "recipient": "to",
    "repetition": "repeat",
    "time": "when",
    "time_of_day": "when",
    "cool_down": "cooldown",
    "cool-down": "cooldown",
    "description_text": "description",
}
REPEAT_ALIASES = {
    "times": "count",
    "n": "count",
    "incidents": "count",
    "window": "within",
    "period": "within",
}
WHEN_ALIASES = {
    "out-of-hours": "out_of_hours",
    "outside_hours": "out_of_hours",
    "out_of_school_hours": "out_of_hours",
    "in-hours": "in_hours",
    "school_hours": "in_hours",
    "always": "any",
}
URGENCY_ALIASES = {
    "immediately": "immediate",
    "instant": "immediate",
    "now": "immediate",
    "daily": "digest",
    "batched": "digest",
}
_TOP_KEYS = {"recipients", "digest", "reports", "rules", "minimal"}


@dataclass(frozen=True, slots=True)
class Repeat:
    count: int
    within: timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str = ""
    enabled: bool = True
    categories: frozenset[str] | None = None
    min_severity: int = 1
    groups: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    sites: frozenset[str] | None = None
    when: str = "any"
    place: str = "any"
    repeat: Repeat | None = None
    to: tuple[str, ...] = ()
    to_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    to_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    urgency: str = "immediate"
    cooldown: timedelta = timedelta(0)
    minimal: bool = False  # e-mail without pupil, excerpt or URL: only the severity and the console link
    escalate_after: timedelta | None = None  # severity 5 not acknowledged this long: the next contact
    escalation: tuple[tuple[str, ...], ...] = ()  # ordered contacts (each an address or a named list)
    webhook: bool = False  # also post the incident to NETMON_WEBHOOK_URL

    def severity_of(self, incident: Incident) -> int | None:
        """The incident's severity as this rule sees it (its hits in the rule's categories), or None."""
        hits = [
            (str(p.get("category", "")), int(p["severity"]))
            for p in (incident.phrases or [])
            if isinstance(p, dict) and isinstance(p.get("severity"), int)
        ]
        hits.append((incident.category, incident.severity))
        if self.categories is not None:
            hits = [h for h in hits if h[0] in self.categories]
        if not hits:
            return None
        return max(s for _, s in hits)

    def matches(
        self, incident: Incident, groups: frozenset[str], policy: SchoolClock, *, with_time: bool = True
    ) -> bool:
        """Every condition except ``repeat`` holds for ``incident``."""
        sev = self.severity_of(incident)
        if sev is None or sev < self.min_severity:
            return False
        if self.groups is not None and not self.groups & groups:
            return False
        if self.sources is not None and incident.source not in self.sources:
            return False
        if self.sites is not None and (incident.site or "") not in self.sites:
            return False
        if self.place != "any" and off_site(incident) != (self.place == "off_site"):
            return False
        if with_time and self.when != "any":
            in_hours = policy.in_school_hours(incident.time)
            if in_hours != (self.when == "in_hours"):
                return False
        return True

    def recipients_for(self, groups: Iterable[str], site: str) -> tuple[str, ...]:
        found = list(self.to)
        for group in sorted(groups):
            found.extend(self.to_groups.get(group, ()))
        found.extend(self.to_sites.get(site or "", ()))
        return tuple(dict.fromkeys(a for a in found if a))

    def reasons(self, incident: Incident, groups: frozenset[str], repeat_count: int | None) -> list[str]:
        why = [f"rule '{self.name}'" + (f": {self.description}" if self.description else "")]
        sev = self.severity_of(incident)
        if self.categories is not None:
            why.append(f"category in {', '.join(sorted(self.categories))}")
        why.append(f"severity {sev} >= {self.min_severity}")
        if self.groups is not None:
            why.append(f"pupil in group {', '.join(sorted(self.groups & groups))}")
        if self.sources is not None:
            why.append(f"source {incident.source}")
        if self.sites is not None:
            why.append(f"site {incident.site}")
        if self.when == "out_of_hours":
            why.append("out of school hours")
        elif self.when == "in_hours":
            why.append("in school hours")
        if self.place != "any":
            why.append(self.place.replace("_", " "))
        if self.repeat is not None and repeat_count is not None:
            why.append(
                f"{repeat_count} matching incidents for this pupil within "
                f"{format_duration(self.repeat.within)} (threshold {self.repeat.count})"
            )
        return why


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    recipients: Mapping[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    digest_times: tuple[time, ...]
    report_to: tuple[str, ...]


def _name_set(
    raw: object, where: str, problems: Problems, allowed: Iterable[str] | None = None, what: str = "name"
) -> frozenset[str] | None:
    if raw is None:
        return None
    names = string_list(raw, where, problems)
    if allowed is not None:
        allowed = set(allowed)
        for name in names:
            if name not in allowed:
                problems.error(
                    where, f"unknown {what} {name!r} (expected one of {', '.join(sorted(allowed))})"
                )
    return frozenset(names)


def _parse_rule(
    spec: Mapping[str, Any],
    where: str,
    problems: Problems,
    env: Mapping[str, str],
    named: Mapping[str, tuple[str, ...]],
    categories: frozenset[str] | None,
    minimal_default: bool = False,
) -> Rule | None:
    spec = canonical(spec, RULE_ALIASES)
    if isinstance(spec.get("repeat"), dict):
        spec["repeat"] = canonical(spec["repeat"], REPEAT_ALIASES)
    if spec.get("out_of_hours") is True and "when" not in spec:
        spec["when"] = "out_of_hours"
        del spec["out_of_hours"]
    if isinstance(spec.get("urgency"), str):
        spec["urgency"] = URGENCY_ALIASES.get(spec["urgency"], spec["urgency"])
    if isinstance(spec.get("when"), str):
        spec["when"] = WHEN_ALIASES.get(spec["when"], spec["when"])
    for key in spec:
        if key not in _RULE_KEYS:
            problems.error(f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(_RULE_KEYS))})")
    name = str(spec.get("name", "")).strip()
    urgency = str(spec.get("urgency", "immediate"))
    if urgency not in URGENCIES:
        problems.error(f"{where}.urgency", f"must be immediate or digest (got {urgency!r})")
    when = str(spec.get("when", "any"))
    if when not in WHEN:
        problems.error(f"{where}.when", f"must be any, out_of_hours or in_hours (got {when!r})")
    place = str(spec.get("place", "any"))
    if place not in PLACES:
        problems.error(f"{where}.place", f"must be any, on_site or off_site (got {place!r})")
    repeat = None
    if spec.get("repeat") is not None:
        raw = spec["repeat"]
        if not isinstance(raw, dict):
            problems.error(f"{where}.repeat", "must be a mapping like {count: 3, within: 1h}")
        else:
            count = raw.get("count")
            within = parse_duration(raw.get("within", "1h"))
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                problems.error(f"{where}.repeat.count", f"must be a whole number >= 1 (got {count})")
            elif within is None or within.total_seconds() <= 0:
                problems.error(
                    f"{where}.repeat.within",
                    f"must be a duration like 30m, 2h, 1d (got {raw.get('within')!r})",
                )
            else:
                repeat = Repeat(count, within)
    cooldown = parse_duration(spec.get("cooldown", 0))
    if cooldown is None:
        problems.error(
            f"{where}.cooldown", f"must be a duration like 0, 30s, 10m, 1h (got {spec['cooldown']!r})"
        )
        cooldown = timedelta(0)
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.error(f"{where}.enabled", f"must be true or false (got {enabled!r})")
    to_groups: dict[str, tuple[str, ...]] = {}
    to_sites: dict[str, tuple[str, ...]] = {}
    for key, target in (("to_groups", to_groups), ("to_sites", to_sites)):
        raw = spec.get(key) or {}
        if not isinstance(raw, dict):
            problems.error(f"{where}.{key}", "must be a mapping of name to a list of addresses")
            continue
        for sub_name, addrs in raw.items():
            target[str(sub_name)] = addresses(addrs, f"{where}.{key}.{sub_name}", problems, env, named)
    flags = {}
    for key, default in (("minimal", minimal_default), ("webhook", False)):
        flags[key] = spec.get(key, default)
        if not isinstance(flags[key], bool):
            problems.error(f"{where}.{key}", f"must be true or false (got {flags[key]!r})")
    escalate_after, escalation = _parse_escalation(spec, where, problems, env, named)
    rule = Rule(
        name=name,
        description=str(spec.get("description", "")),
        enabled=bool(enabled),
        categories=_name_set(spec.get("categories"), f"{where}.categories", problems, categories, "category"),
        min_severity=severity(spec.get("min_severity"), f"{where}.min_severity", problems),
        groups=_name_set(spec.get("groups"), f"{where}.groups", problems),
        sources=_name_set(spec.get("sources"), f"{where}.sources", problems, SOURCES, "source"),
        sites=_name_set(spec.get("sites"), f"{where}.sites", problems),
        when=when,
        place=place,
        repeat=repeat,
        to=addresses(spec.get("to"), f"{where}.to", problems, env, named),
        to_groups=to_groups,
        to_sites=to_sites,
        urgency=urgency,
        cooldown=cooldown,
        minimal=flags["minimal"] is True,
        escalate_after=escalate_after,
        escalation=escalation,
        webhook=flags["webhook"] is True,
    )
    if rule.enabled and not rule.to and not any(to_groups.values()) and not any(to_sites.values()):
        problems.warn(where, "no recipients: this rule will not send anything")
    return rule


def off_site(incident: Incident) -> bool:
    """Whether the incident came from a school-owned device through the off-site tunnel."""
    return (incident.device or "").endswith(OFF_SITE_MARK)


def _parse_escalation(
    spec: Mapping[str, Any],
    where: str,
    problems: Problems,
    env: Mapping[str, str],
    named: Mapping[str, tuple[str, ...]],
) -> tuple[timedelta | None, tuple[tuple[str, ...], ...]]:
    """``escalate_after: 15m`` and ``escalation: [deputy, head@school.example]`` (one contact a step)."""
    raw_steps = spec.get("escalation")
    if raw_steps is None:
        if spec.get("escalate_after") is not None:
            problems.error(f"{where}.escalation", "escalate_after needs an escalation list of contacts")
        return None, ()
    if isinstance(raw_steps, str):
        raw_steps = [raw_steps]
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.error(f"{where}.escalation", "must be an ordered list of contacts (addresses or lists)")
        return None, ()
    steps = tuple(
        addresses([step], f"{where}.escalation[{n}]", problems, env, named)
        for n, step in enumerate(raw_steps)
    )
    after = parse_duration(spec.get("escalate_after", "15m"))
    if after is None or after.total_seconds() <= 0:
        problems.error(
            f"{where}.escalate_after", f"must be a duration like 15m (got {spec.get('escalate_after')!r})"
        )
        return None, ()
    return after, tuple(s for s in steps if s)


def parse_alerts(
    data: Mapping[str, Any],
    file: str,
    problems: Problems,
    *,
    env: Mapping[str, str] | None = None,
    groups: frozenset[str] = frozenset(),
    categories: frozenset[str] | None = None,
) -> AlertsConfig:
    """Validate the contents of ``alerts.yaml``; errors and warnings go to ``problems``."""
    env = os.environ if env is None else env
    for key in data:
        if key not in _TOP_KEYS:
            problems.error(f"{file}: {key}", f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    named: dict[str, tuple[str, ...]] = {}
    raw_named = data.get("recipients") or {}
    if not isinstance(raw_named, dict):
        problems.error(f"{file}: recipients", "must be a mapping of list name to addresses")
        raw_named = {}
    for list_name, addrs in raw_named.items():
        named[str(list_name)] = addresses(addrs, f"{file}: recipients.{list_name}", problems, env, None)
    digest = data.get("digest") or {}
    if not isinstance(digest, dict):
        problems.error(f"{file}: digest", 'must be a mapping like {at: ["16:30"]}')
        digest = {}
    times = tuple(
        sorted(
            {
                parse_clock(t, f"{file}: digest.at", problems, time(16, 0))
                for t in string_list(digest.get("at", ["16:00"]), f"{file}: digest.at", problems)
            }
        )
    )
    reports = data.get("reports") or {}
    if not isinstance(reports, dict):
        problems.error(f"{file}: reports", "must be a mapping like {to: [dsl]}")
        reports = {}
    report_to = addresses(reports.get("to", list(named) or []), f"{file}: reports.to", problems, env, named)
    minimal = data.get("minimal", False)
    if not isinstance(minimal, bool):
        problems.error(f"{file}: minimal", f"must be true or false (got {minimal!r})")
    rules: list[Rule] = []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        problems.error(f"{file}: rules", "must be a list of rules (each starting with '- name: ...')")
        raw_rules = []
    seen: set[str] = set()
    for index, spec in enumerate(raw_rules):
        where = f"{file}: rules[{index}]"
        if not isinstance(spec, dict):
            problems.error(where, "must be a mapping with at least a name")
            continue
        name = str(spec.get("name", "")).strip()
        if name:
            where = f"{file}: rules.{name}"
        if not name:
            problems.error(f"{where}.name", "every rule needs a name")
        elif name in seen:
            problems.error(f"{where}.name", "duplicate rule name")
        seen.add(name)
        rule = _parse_rule(spec, where, problems, env, named, categories, minimal is True)
        if rule is not None and rule.groups:
            for group in sorted(rule.groups - groups):
                problems.warn(
                    f"{where}.groups",
                    f"group {group!r} is not defined in school.yaml "
                    "(it can still come from the portal or roster)",
                )
        if rule is not None:
            rules.append(rule)
    return AlertsConfig(recipients=named, rules=tuple(rules), digest_times=times, report_to=report_to)


def next_digest(now: datetime, policy: SchoolClock) -> datetime:
    """The next digest time (school time zone) after ``now``, as aware UTC."""
    local = now.astimezone(policy.timezone)
    candidates = []
    for day in range(0, 3):
        date = (local + timedelta(days=day)).date()
        for at in policy.digest_times or (time(16, 0),):
            moment = datetime.combine(date, at, tzinfo=policy.timezone)
            if moment > local:
                candidates.append(moment)
    return min(candidates).astimezone(now.tzinfo)
