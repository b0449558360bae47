"""Console page timings with 100,000 incidents on SQLite (or PostgreSQL with --db), in one run.

    .venv/bin/python bench/bench_console.py [--incidents 100000] [--rounds 20] [--db URL]

Fills a fresh store (10% of incidents reviewed: in review or closed), signs a DSL and a pastoral lead in
through the real forms, then times whole requests through the Flask app (rendering, audit row and all):
the queue's first page, a page 1,000 rows deep (keyset), filtered views, counts, the incident page and its
capture. Target: under 300 ms per page. Nothing here is a test; the figures go in docs/console.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netmon_console.app import ConsoleConfig, create_app  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from netmon.identity.users import hash_password  # noqa: E402
from netmon.store.console import IncidentReview, StaffAccount  # noqa: E402
from netmon.store.db import make_engine, upgrade  # noqa: E402
from netmon.store.incidents import Incident  # noqa: E402
from tests.console.conftest import PASSWORD, STAFF, sign_in, snapshot  # noqa: E402

CATEGORIES = ("suicide", "self-harm", "bullying", "violence", "drugs", "extremism", "adult", "gambling")
YEARS = ("Y7", "Y8", "Y9", "Y10", "Y11", "Y12", "Y13")


def fill(url: str, n: int) -> None:
    rng = random.Random(13)
    engine = make_engine(url)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    page = snapshot("<html><body>" + "<p>ordinary text on a page about things</p>" * 200 + "</body></html>")
    explanation = [
        {"phrase": "kill myself", "category": "suicide", "severity": 5, "language": "en",
         "library_file": "library/en/suicide.txt", "line": 12, "matched_text": "kill myself",
         "source": "page", "label": "", "steps": ["casefold"], "rules": []},
    ] * 3  # fmt: skip
    with Session(engine) as db, db.begin():
        for account in STAFF.values():
            db.add(
                StaffAccount(
                    username=account.username, display_name="", role=account.role, scope=list(account.scope),
                    password_hash=hash_password(PASSWORD), totp_secret=account.secret, totp_last_step=0,
                    disabled=False, failed_attempts=0,
                )
            )  # fmt: skip
    batch = []
    for i in range(n):
        t = start + timedelta(seconds=i * 90 + rng.randint(0, 60))
        year = rng.choice(YEARS)
        kept = i % 50 == 0
        severity = rng.choices((1, 2, 3, 4, 5), (30, 30, 20, 15, 5))[0]
        batch.append(
            dict(
                uid=uuid.uuid4().hex, time=t, last_seen=t, count=1, site="", client_ip=f"10.0.0.{i % 200}",
                user=f"pupil{rng.randint(1, 1500)}", role="pupil", year_group=year, groups=[f"{year[1:]}A"],
                host="example.org", url="http://example.org/page", source="page",
                category=rng.choice(CATEGORIES), severity=severity,
                phrase="kill myself", phrases=[], excerpt="…[[kill myself]]…", explanation=explanation,
                evidence={}, dedup_key=uuid.uuid4().hex, capture_text="", snapshot=page if kept else None,
                snapshot_type="text/html" if kept else None, created_at=t,
            )
        )  # fmt: skip
        if len(batch) == 5000:
            with Session(engine) as db, db.begin():
                db.execute(insert(Incident), batch)
            batch = []
    if batch:
        with Session(engine) as db, db.begin():
            db.execute(insert(Incident), batch)
    with Session(engine) as db, db.begin():
        ids = list(db.scalars(select(Incident.id)))
        reviews = [
            dict(incident_id=i, status=rng.choice(("in_review", "closed")), outcome="no_concern",
                 updated_at=start, updated_by="dina")
            for i in rng.sample(ids, n // 10)
        ]  # fmt: skip
        db.execute(insert(IncidentReview), reviews)
    engine.dispose()


def timed(client, path: str, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        response = client.get(path)
        response.get_data()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db", default=None, help="an EMPTY database URL (default: a new SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='bench-console-')}/netmon.db"
    upgrade(url)
    t0 = time.perf_counter()
    fill(url, args.incidents)
    print(f"filled {args.incidents} incidents in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")
    app = create_app(ConsoleConfig(db_url=url, secret_key="bench"))  # noqa: S106
    dsl = app.test_client()
    sign_in(dsl, STAFF["dsl"])
    pastoral = app.test_client()
    sign_in(pastoral, STAFF["pastoral"])
    engine = make_engine(url)
    with Session(engine) as db:
        deep = db.execute(
            select(Incident.severity, Incident.time, Incident.id)
            .order_by(Incident.severity.desc(), Incident.time.desc(), Incident.id.desc())
            .offset(1000)
            .limit(1)
        ).one()
        with_capture = db.scalar(select(Incident.uid).where(Incident.snapshot.is_not(None)).limit(1))
    engine.dispose()
    from netmon.incidents.queries import Cursor

    cursor = Cursor(deep.severity, deep.time, deep.id).encode()
    cases = [
        ("queue, new, page 1", dsl, "/incidents"),
        ("queue, all, page 1", dsl, "/incidents?status=all"),
        ("queue, all, 1,000 rows deep", dsl, f"/incidents?status=all&after={cursor}"),
        ("queue, closed", dsl, "/incidents?status=closed"),
        ("queue, severity>=5 + category", dsl, "/incidents?severity=5&category=suicide"),
        ("queue, one pupil", dsl, "/incidents?status=all&pupil=pupil42"),
        ("queue, year group Y9", dsl, "/incidents?year=Y9"),
        ("queue, group 9A (JSON)", dsl, "/incidents?group=9A"),
        ("queue, date range", dsl, "/incidents?status=all&since=2026-10-01&until=2026-10-07"),
        ("queue, pastoral scope Y9", pastoral, "/incidents"),
        ("incident page", dsl, f"/incidents/{with_capture}"),
        ("capture (sanitised)", dsl, f"/incidents/{with_capture}/capture"),
    ]
    print(f"{'page':34} {'median ms':>10}")
    for name, client, path in cases:
        print(f"{name:34} {timed(client, path, args.rounds):10.1f}")


if __name__ == "__main__":
    main()
