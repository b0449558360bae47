"""Retention: `netmon purge` deletes exactly what is past its period, keeps the rest, and says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.ops.retention import load_retention, parse_retention, purge
from netmon.store.alerts import Alert
from netmon.store.db import make_engine
from netmon.store.identity import AupAcceptance, DeviceSession
from netmon.store.incidents import AuditEvent, Incident

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _incident(uid: str, category: str, severity: int, age_days: int) -> Incident:
    when = NOW - timedelta(days=age_days)
    return Incident(
        uid=uid,
        time=when,
        last_seen=when,
        client_ip="10.0.0.5",
        user="pupil1",
        host="example.org",
        url="http://example.org/",
        source="search",
        category=category,
        severity=severity,
        phrase="p",
        phrases=[],
        excerpt="[[p]]",
        explanation=[],
        evidence={},
        dedup_key=uid * 2,
        capture_text="WHAT THE PUPIL SAW",
        snapshot=b"snap",
        snapshot_type="text/html",
    )


def _seed(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        s.add_all(
            [
                _incident("a" * 32, "bullying", 1, 100),  # past 90d (severity 1)
                _incident("b" * 32, "bullying", 1, 10),  # kept
                _incident("c" * 32, "suicide", 5, 400),  # severity 5: 6y, kept, capture cleared (>90d)
                _incident("d" * 32, "child_sexual_exploitation", 2, 5000),  # by_category 25y: kept
                _incident("e" * 32, "drugs", 3, 366),  # past 1y
            ]
        )
        for uid, age in (("a" * 32, 100), ("c" * 32, 400)):
            s.add(
                Alert(
                    uid=uid[:30] + "al",
                    rule="r",
                    urgency="immediate",
                    state="sent",
                    incident_uid=uid,
                    pupil="pupil1",
                    recipients=[],
                    created_at=NOW - timedelta(days=age),
                )
            )
        s.add(
            DeviceSession(
                username="pupil1",
                role="pupil",
                ip="10.0.0.5",
                aup_version="1",
                idle_seconds=60,
                started_at=NOW - timedelta(days=40),
                expires_at=NOW - timedelta(days=39),
                ended_at=NOW - timedelta(days=39),
            )
        )
        s.add(
            DeviceSession(
                username="pupil2",
                role="pupil",
                ip="10.0.0.6",
                aup_version="1",
                idle_seconds=60,
                started_at=NOW - timedelta(days=1),
                expires_at=NOW + timedelta(days=1),
            )
        )
        s.add(
            AuditEvent(
                action="tls.passthrough",
                actor="10.0.0.5",
                subject="bank.example",
                time=NOW - timedelta(days=31),
                detail={},
            )
        )
        s.add(
            AuditEvent(
                action="tls.passthrough",
                actor="10.0.0.5",
                subject="bank.example",
                time=NOW - timedelta(days=1),
                detail={},
            )
        )
        s.add(
            AupAcceptance(
                username="pupil1",
                aup_version="1",
                language="en",
                ip="10.0.0.5",
                time=NOW - timedelta(days=800),
            )
        )
    engine.dispose()


@pytest.fixture
def seeded(store_url: str) -> str:
    _seed(store_url)
    return store_url


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with Session(engine) as s:
        out = {
            "incidents": s.scalar(select(func.count()).select_from(Incident)),
            "alerts": s.scalar(select(func.count()).select_from(Alert)),
            "sessions": s.scalar(select(func.count()).select_from(DeviceSession)),
            "visits": s.scalar(select(func.count()).where(AuditEvent.action == "tls.passthrough")),
            "aup": s.scalar(select(func.count()).select_from(AupAcceptance)),
            "captures": s.scalar(select(func.count()).where(Incident.snapshot.is_not(None))),
        }
    engine.dispose()
    return out  # type: ignore[return-value]


def test_purge_deletes_only_what_is_past_its_period(seeded: str, tmp_path: Path) -> None:
    retention = parse_retention(None, "defaults")
    engine = make_engine(seeded)
    dry = purge(engine, retention, NOW, tmp_path, dry_run=True)
    assert _counts(seeded)["incidents"] == 5, "a dry run deleted something"
    counts = purge(engine, retention, NOW, tmp_path)
    engine.dispose()
    assert dry == counts, "the dry run's counts differ from the purge's"
    assert counts["incidents"] == 2 and counts["alerts"] == 2 and counts["captures"] == 2
    after = _counts(seeded)
    assert after == {"incidents": 3, "alerts": 0, "sessions": 1, "visits": 1, "aup": 0, "captures": 1}
    engine = make_engine(seeded)
    with Session(engine) as s:
        kept = {i.uid[0]: i for i in s.scalars(select(Incident))}
        assert set(kept) == {"b", "c", "d"}
        assert kept["c"].snapshot is None and kept["c"].capture_text == "", "old capture kept"
        assert kept["c"].phrase == "p", "the incident record itself must stay"
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purged")).one()
        assert event.detail["counts"]["incidents"] == 2
        assert "WHAT THE PUPIL SAW" not in json.dumps(event.detail)
    engine.dispose()


def test_purge_drops_old_spill_lines_under_the_writers_lock(store_url: str, tmp_path: Path) -> None:
    spill = tmp_path / "incident-spill.jsonl"
    old, new = (NOW - timedelta(days=40)).timestamp(), (NOW - timedelta(days=1)).timestamp()
    spill.write_text(
        json.dumps({"context": {"time": old}}) + "\n" + json.dumps({"context": {"time": new}}) + "\n"
    )
    engine = make_engine(store_url)
    from netmon.store.db import upgrade  # noqa: F401  (the store fixture has the schema already)

    counts = purge(engine, parse_retention(None, "defaults"), NOW, tmp_path)
    engine.dispose()
    assert counts["spill"] == 1
    lines = spill.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["context"]["time"] == new


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("captures: soon\n", "captures"),
        ("incidents:\n  by_severity:\n    7: 1y\n", "by_severity.7"),
        ("sesions: 30d\n", "sesions"),
        ("incidents:\n  by_category:\n    bullying: forever\n", "by_category.bullying"),
        ("captures: [\n", "retention.yaml:"),
    ],
)
def test_bad_retention_file_is_one_located_error(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "retention.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_retention(tmp_path)
    assert where in str(err.value) and "\n" not in str(err.value)


def test_shipped_retention_file_loads() -> None:
    from netmon.config.paths import DEFAULT_POLICY_DIR

    retention = load_retention(DEFAULT_POLICY_DIR)
    assert retention.incident_period("child_sexual_exploitation", 1) == timedelta(days=25 * 365)
    assert retention.incident_period("bullying", 1) == timedelta(days=90)


def test_cli_dry_run_then_purge(seeded: str, tmp_path: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["purge", "--db", seeded, "--state-dir", str(tmp_path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output
    assert _counts(seeded)["visits"] == 2
    real = runner.invoke(main, ["purge", "--db", seeded, "--state-dir", str(tmp_path)])
    assert real.exit_code == 0, real.output
    assert "deleted" in real.output and _counts(seeded)["visits"] == 1
