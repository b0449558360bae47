"""Retention: how long each kind of record is kept (``policy/retention.yaml``), and the purge.

``load_retention(path)`` reads the periods (documented defaults when the file is absent) or raises
``ConfigError`` naming the file and key. ``purge(engine, retention, now, state_dir)`` deletes what
is past its period and returns the counts per kind; a real purge also writes one ``retention.purged``
audit event with those counts (never content), so the school can show what was deleted and when.

- incidents: per category (a duration, or a map by severity), else per severity, else the default; rows
  that reference a purged incident (alerts, and any table with a foreign key to ``incidents.id``, such
  as the console's outcome history) go with it;
- captures: the saved copy and extracted text are cleared earlier than the incident record itself;
- sessions (ended), the TLS passthrough visit log, AUP acceptances, the alert outbox and the audit log;
- spill: lines of the incident spill and rejected files in the state directory older than the period.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from netmon.errors import ConfigError
from netmon.store.alerts import Alert
from netmon.store.base import Base
from netmon.store.identity import AupAcceptance, DeviceSession
from netmon.store.incidents import AuditEvent, Incident, audit

RETENTION_FILE = "retention.yaml"
VISIT_ACTION = "tls.passthrough"
PURGE_ACTION = "retention.purged"
SPILL_FILES = ("incident-spill.jsonl", "incident-rejected.jsonl")
SPILL_LOCK = "incident-spill.jsonl.lock"  # the incident writer's lock on its spill files

_DURATION = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")
_UNITS = {"d": 1, "w": 7, "m": 30, "y": 365}
_KINDS = ("captures", "sessions", "visit_log", "aup_acceptances", "alerts", "audit", "spill")
DEFAULTS: Mapping[str, str] = {
    "captures": "90d",
    "sessions": "30d",
    "visit_log": "30d",
    "aup_acceptances": "2y",
    "alerts": "1y",
    "audit": "6y",
    "spill": "30d",
}
DEFAULT_SEVERITY: Mapping[int, str] = {1: "90d", 2: "90d", 3: "1y", 4: "6y", 5: "6y"}
DEFAULT_CATEGORY: Mapping[str, str] = {"child_sexual_exploitation": "25y"}


def parse_period(value: object, where: str) -> timedelta:
    match = _DURATION.match(str(value)) if isinstance(value, str | int) else None
    if match is None:
        raise ConfigError(where, f"must be a duration such as 90d, 12w, 6m or 7y (got {value!r})")
    return timedelta(days=int(match.group(1)) * _UNITS[match.group(2)])


def _severity_map(value: object, where: str) -> dict[int, timedelta]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, "must be a map of severity (1-5) to duration")
    out = {}
    for key, period in value.items():
        if str(key) not in {"1", "2", "3", "4", "5"}:
            raise ConfigError(f"{where}.{key}", "severity must be 1-5")
        out[int(key)] = parse_period(period, f"{where}.{key}")
    return out


@dataclass(frozen=True)
class Retention:
    incidents_default: timedelta = field(default_factory=lambda: timedelta(days=365))
    by_severity: Mapping[int, timedelta] = field(default_factory=dict)
    by_category: Mapping[str, timedelta | Mapping[int, timedelta]] = field(default_factory=dict)
    periods: Mapping[str, timedelta] = field(default_factory=dict)  # the other kinds, by name

    def incident_period(self, category: str, severity: int) -> timedelta:
        special = self.by_category.get(category)
        if isinstance(special, timedelta):
            return special
        if special is not None and severity in special:
            return special[severity]
        return self.by_severity.get(severity, self.incidents_default)


def parse_retention(data: Mapping[str, Any] | None, where: str) -> Retention:
    data = dict(data or {})
    unknown = set(data) - {"incidents", *_KINDS}
    if unknown:
        raise ConfigError(
            f"{where}: {sorted(unknown)[0]}", f"unknown key; expected incidents, {', '.join(_KINDS)}"
        )
    incidents = data.get("incidents") or {}
    if not isinstance(incidents, Mapping):
        raise ConfigError(f"{where}: incidents", "must be a map (default, by_severity, by_category)")
    extra = set(incidents) - {"default", "by_severity", "by_category"}
    if extra:
        raise ConfigError(
            f"{where}: incidents.{sorted(extra)[0]}",
            "unknown key; expected default, by_severity, by_category",
        )
    by_category: dict[str, timedelta | Mapping[int, timedelta]] = {}
    for category, value in (incidents.get("by_category", DEFAULT_CATEGORY) or {}).items():
        key = f"{where}: incidents.by_category.{category}"
        by_category[str(category)] = (
            _severity_map(value, key) if isinstance(value, Mapping) else parse_period(value, key)
        )
    severity_source = incidents.get("by_severity", DEFAULT_SEVERITY)
    return Retention(
        incidents_default=parse_period(incidents.get("default", "1y"), f"{where}: incidents.default"),
        by_severity=_severity_map(severity_source, f"{where}: incidents.by_severity"),
        by_category=by_category,
        periods={k: parse_period(data.get(k, DEFAULTS[k]), f"{where}: {k}") for k in _KINDS},
    )


def load_retention(policy_dir: Path) -> Retention:
    """The periods in ``<policy_dir>/retention.yaml``, or the documented defaults when it is absent."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = policy_dir / RETENTION_FILE
    if not path.is_file():
        return parse_retention({}, str(path))
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}", "not valid YAML") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(str(path), "must be a map of kinds to durations")
    return parse_retention(data, str(path))


def _referencing(session: Session, ids: list[int]) -> dict[str, int]:
    """Delete rows of any table with a foreign key to incidents.id that point at ``ids``."""
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "incidents" and fk.column.name == "id":
                result = session.execute(delete(table).where(fk.parent.in_(ids)))
                counts[table.name] = counts.get(table.name, 0) + (result.rowcount or 0)
    return counts


def _delete(session: Session, model: Any, condition: Any) -> int:
    return session.execute(delete(model).where(condition)).rowcount or 0


def _purge_incidents(session: Session, retention: Retention, now: datetime) -> dict[str, int]:
    counts = {"incidents": 0, "alerts": 0}
    pairs = session.execute(select(Incident.category, Incident.severity).distinct()).all()
    for category, severity in pairs:
        cutoff = now - retention.incident_period(category, severity)
        cond = and_(Incident.category == category, Incident.severity == severity, Incident.time < cutoff)
        while True:
            rows = session.execute(select(Incident.id, Incident.uid).where(cond).limit(1000)).all()
            if not rows:
                break
            ids, uids = [r[0] for r in rows], [r[1] for r in rows]
            counts["incidents"] += len(ids)
            counts["alerts"] += (
                session.execute(delete(Alert).where(Alert.incident_uid.in_(uids))).rowcount or 0
            )
            for table, n in _referencing(session, ids).items():
                counts[table] = counts.get(table, 0) + n
            session.execute(delete(Incident).where(Incident.id.in_(ids)))
    return counts


def _purge_spill(state_dir: Path, cutoff: datetime, dry_run: bool) -> int:
    """Drop spill/rejected lines older than ``cutoff``, under the writer's own lock."""
    dropped = 0
    limit = cutoff.timestamp()
    with _spill_lock(state_dir):
        for name in SPILL_FILES:
            path = state_dir / name
            if not path.is_file():
                continue
            keep: list[str] = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
                try:
                    when = float(json.loads(line)["context"]["time"])
                except (ValueError, KeyError, TypeError):
                    when = path.stat().st_mtime  # unreadable line: judged by the file's age
                if when < limit:
                    dropped += 1
                else:
                    keep.append(line)
            if not dry_run and len(keep) != sum(1 for _ in path.open(encoding="utf-8", errors="replace")):
                tmp = path.with_suffix(".purge")
                tmp.write_text("".join(keep), encoding="utf-8")
                os.chmod(tmp, 0o600)
                tmp.replace(path)
    return dropped


@contextmanager
def _spill_lock(state_dir: Path) -> Iterator[None]:
    if not state_dir.is_dir():
        yield
        return
    with open(state_dir / SPILL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def purge(
    engine: Engine, retention: Retention, now: datetime, state_dir: Path | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Delete every record past its period; the counts per kind. ``dry_run`` does the same work in a
    transaction that is rolled back (so its counts are exact) and leaves the spill files alone."""
    p = retention.periods
    with Session(engine) as session:
        session.begin()
        counts = _purge_incidents(session, retention, now)
        capture_cond = and_(
            Incident.time < now - p["captures"],
            or_(Incident.snapshot.is_not(None), Incident.capture_text != ""),
        )
        clear = (
            update(Incident).where(capture_cond).values(snapshot=None, snapshot_type=None, capture_text="")
        )
        counts["captures"] = session.execute(clear).rowcount or 0
        ended = func.coalesce(DeviceSession.ended_at, DeviceSession.expires_at)
        counts["sessions"] = _delete(session, DeviceSession, ended < now - p["sessions"])
        visits = and_(AuditEvent.action == VISIT_ACTION, AuditEvent.time < now - p["visit_log"])
        counts["visit_log"] = _delete(session, AuditEvent, visits)
        counts["aup_acceptances"] = _delete(
            session, AupAcceptance, AupAcceptance.time < now - p["aup_acceptances"]
        )
        old_alerts = and_(Alert.created_at < now - p["alerts"], Alert.state != "pending")
        counts["alerts"] += _delete(session, Alert, old_alerts)
        old_audit = and_(
            AuditEvent.time < now - p["audit"], AuditEvent.action.not_in([VISIT_ACTION, PURGE_ACTION])
        )
        counts["audit"] = _delete(session, AuditEvent, old_audit)
        counts["spill"] = _purge_spill(state_dir, now - p["spill"], dry_run) if state_dir is not None else 0
        if dry_run:
            session.rollback()
        else:
            audit(session, PURGE_ACTION, actor="system", subject="retention", counts=counts)
            session.commit()
    return counts
