"""Alert rules (``policy/alerts.yaml``) and the engine that turns new incidents into outbox rows.

A rule fires for an incident when every condition it sets holds: ``categories``, ``min_severity``,
``groups`` (policy groups of the pupil), ``sources``, ``sites``, ``when`` (``any``, ``out_of_hours`` or
``in_hours`` against the school hours in ``school.yaml``) and ``repeat`` (the pupil's Nth matching incident
within a time window). Recipients are ``to`` plus ``to_groups``/``to_sites`` for the pupil's groups and
the incident's site; ``urgency`` is ``immediate`` or ``digest``; ``cooldown`` folds further incidents of the
same pupil under the same rule into the alert already sent.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from netmon.ops import counters
from netmon.scan.findings import SOURCES
from netmon.store.alerts import SUPPRESSED, Alert
from netmon.store.base import utcnow
from netmon.store.incidents import Incident, audit

if TYPE_CHECKING:
    from netmon.config.policy import Policy, Problems

log = logging.getLogger(__name__)

URGENCIES = ("immediate", "digest")
WHEN = ("any", "out_of_hours", "in_hours")
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
    "repeat",
    "to",
    "to_groups",
    "to_sites",
    "urgency",
    "cooldown",
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
_TOP_KEYS = {"recipients", "digest", "reports", "rules"}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
    repeat: Repeat | None = None
    to: tuple[str, ...] = ()
    to_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    to_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    urgency: str = "immediate"
    cooldown: timedelta = timedelta(0)

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
        self, incident: Incident, groups: frozenset[str], policy: Policy, *, with_time: bool = True
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


def _addresses(
    raw: object,
    where: str,
    problems: Problems,
    env: Mapping[str, str],
    named: Mapping[str, tuple[str, ...]] | None,
) -> tuple[str, ...]:
    from netmon.config.policy import string_list

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


def _name_set(
    raw: object, where: str, problems: Problems, allowed: Iterable[str] | None = None, what: str = "name"
) -> frozenset[str] | None:
    from netmon.config.policy import string_list

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
) -> Rule | None:
    from netmon.config.policy import canonical, severity

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
            target[str(sub_name)] = _addresses(addrs, f"{where}.{key}.{sub_name}", problems, env, named)
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
        repeat=repeat,
        to=_addresses(spec.get("to"), f"{where}.to", problems, env, named),
        to_groups=to_groups,
        to_sites=to_sites,
        urgency=urgency,
        cooldown=cooldown,
    )
    if rule.enabled and not rule.to and not any(to_groups.values()) and not any(to_sites.values()):
        problems.warn(where, "no recipients: this rule will not send anything")
    return rule


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
    from netmon.config.policy import parse_clock, string_list

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
        named[str(list_name)] = _addresses(addrs, f"{file}: recipients.{list_name}", problems, env, None)
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
    report_to = _addresses(reports.get("to", list(named) or []), f"{file}: reports.to", problems, env, named)
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
        rule = _parse_rule(spec, where, problems, env, named, categories)
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


def next_digest(now: datetime, policy: Policy) -> datetime:
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


def _same_pupil(incident: Incident) -> Any:
    if incident.user:
        return Incident.user == incident.user
    return and_(Incident.user.is_(None), Incident.client_ip == incident.client_ip)


class RuleEngine:
    """Evaluates the rules for a batch of incidents and writes outbox rows in the same transaction.

    Give it to the incident writer as an ``after_batch`` callable: ``IncidentWriter(url,
    after_batch=(RuleEngine(lambda: watcher.current),))``. It never commits.
    """

    def __init__(self, policy: Policy | Callable[[], Policy]) -> None:
        self._policy = policy if callable(policy) else (lambda: policy)

    def __call__(self, session: Any, incidents: Sequence[Incident]) -> list[Alert]:
        policy = self._policy()
        if not policy.rules or not incidents:
            return []
        session.flush()
        created: list[Alert] = []
        now = utcnow()
        for incident in sorted(incidents, key=lambda i: (i.time, i.id)):
            try:
                created.extend(self._evaluate(session, policy, incident, now))
            except SQLAlchemyError:
                raise  # the store is at fault: the writer keeps the whole batch and retries
            except Exception as exc:  # noqa: BLE001 - a rule fault must never lose the incident it is about
                counters.incr("alerts.rule-errors")
                log.exception(
                    "alert rules failed for incident %s; it is recorded without an alert", incident.uid
                )
                audit(
                    session, "alert.error", actor="system", subject=incident.uid, error=exc.__class__.__name__
                )
        return created

    def _evaluate(self, session: Any, policy: Policy, incident: Incident, now: datetime) -> list[Alert]:
        from netmon.alerts.outbox import add_alert

        created: list[Alert] = []
        groups = policy.groups_for(incident.user, incident.role, incident.year_group, incident.groups or ())
        for rule in policy.rules:
            if not rule.enabled or not rule.matches(incident, groups, policy):
                continue
            done = session.scalar(
                select(Alert.id).where(Alert.rule == rule.name, Alert.incident_uid == incident.uid)
            )
            if done is not None:
                continue
            pupil = incident.user or incident.client_ip
            repeat_count = None
            if rule.repeat is not None:
                repeat_count = self._repeat_count(session, rule, incident, groups, policy, pupil)
                if repeat_count < rule.repeat.count:
                    continue
            recipients = rule.recipients_for(groups, incident.site)
            if not recipients:
                log.debug("rule %s fired for incident %s but has no recipients", rule.name, incident.uid)
                continue
            parent = None
            if rule.cooldown > timedelta(0):
                parent = session.scalar(
                    select(Alert)
                    .where(
                        Alert.rule == rule.name,
                        Alert.pupil == pupil,
                        Alert.state != SUPPRESSED,
                        Alert.created_at >= now - rule.cooldown,
                    )
                    .order_by(Alert.id.desc())
                    .limit(1)
                )
            reason = "; ".join(rule.reasons(incident, groups, repeat_count))
            alert = add_alert(
                session,
                rule=rule,
                incident=incident,
                pupil=pupil,
                recipients=recipients,
                reason=reason,
                policy=policy,
                parent=parent,
                now=now,
            )
            created.append(alert)
        return created

    @staticmethod
    def _repeat_count(
        session: Any, rule: Rule, incident: Incident, groups: frozenset[str], policy: Policy, pupil: str
    ) -> int:
        assert rule.repeat is not None
        since = incident.time - rule.repeat.within
        last = session.execute(
            select(Incident.time, Incident.id)
            .join(Alert, Alert.incident_uid == Incident.uid)
            .where(Alert.rule == rule.name, Alert.pupil == pupil, Alert.state != SUPPRESSED)
            .order_by(Incident.time.desc(), Incident.id.desc())
            .limit(1)
        ).first()
        query = select(Incident).where(
            _same_pupil(incident),
            Incident.time >= since,
            or_(
                Incident.time < incident.time,
                and_(Incident.time == incident.time, Incident.id <= incident.id),
            ),
        )
        if last is not None:
            query = query.where(
                or_(Incident.time > last.time, and_(Incident.time == last.time, Incident.id > last.id))
            )
        rows = session.scalars(query.order_by(Incident.time).limit(10_000)).all()
        return sum(1 for row in rows if rule.matches(row, groups, policy))
