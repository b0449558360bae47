"""Console page timings with 100,000 incidents on SQLite and on PostgreSQL, in one run, against baselines.

    .venv/bin/python bench/bench_console.py [--incidents 100000] [--rounds 20] [--db URL] [--sqlite-only]

For each store (a new SQLite file; then PostgreSQL when ``--db URL`` or ``NETMON_TEST_PG_URL`` names a
server: the bench creates its own database there and drops it at the end) it fills 100,000 incidents (10%
reviewed: in review or closed), signs a DSL and a pastoral lead in through the real forms, then times whole
requests through the Flask app (rendering, audit row and all): the queue's first page, a page 1,000 rows
deep (keyset), filtered views, counts, the incident page and its capture. Two baselines are measured in
the same run on the same store: the static stylesheet through the same app (the floor of any request)
and a bare SELECT of one queue page (50 rows, the keyset order) on the store's own engine (the floor of
any queue page). Target: under 300 ms per page. Nothing here is a test; the figures go in docs/console.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netmon_console.app import ConsoleConfig, create_app  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from netmon.identity.users import hash_password  # noqa: E402
from netmon.incidents.queries import PAGE_SIZE, Cursor  # noqa: E402
from netmon.store.console import IncidentReview, StaffAccount  # noqa: E402
from netmon.store.db import make_engine, upgrade  # noqa: E402
from netmon.store.incidents import Incident  # noqa: E402
from tests.console.conftest import PASSWORD, STAFF, sign_in, snapshot  # noqa: E402

CATEGORIES = ("suicide", "self-harm", "bullying", "violence", "drugs", "extremism", "adult", "gambling")
YEARS = ("Y7", "Y8", "Y9", "Y10", "Y11", "Y12", "Y13")
BASELINES = ("static stylesheet (app floor)", "bare SELECT of one page")


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
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does soon after a bulk load
    engine.dispose()


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()  # warm: the first request compiles templates and fills caches
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def getter(client, path: str) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    def get() -> object:
        response = client.get(path)
        response.get_data()
        assert response.status_code == 200, (path, response.status_code)
        return response

    return get


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``server_url``, dropped afterwards."""
    name = f"netmon_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(url: str, n: int, rounds: int) -> dict[str, float]:
    """Fill the empty store at ``url`` and time every page and both baselines; returns name -> median ms."""
    upgrade(url)
    t0 = time.perf_counter()
    fill(url, n)
    print(f"  filled {n} incidents in {time.perf_counter() - t0:.1f} s", flush=True)
    app = create_app(ConsoleConfig(db_url=url, secret_key="bench"))  # noqa: S106
    dsl = app.test_client()
    sign_in(dsl, STAFF["dsl"])
    pastoral = app.test_client()
    sign_in(pastoral, STAFF["pastoral"])
    engine = make_engine(url)
    order = (Incident.severity.desc(), Incident.time.desc(), Incident.id.desc())
    with Session(engine) as db:
        deep = db.execute(
            select(Incident.severity, Incident.time, Incident.id).order_by(*order).offset(1000).limit(1)
        ).one()
        with_capture = db.scalar(select(Incident.uid).where(Incident.snapshot.is_not(None)).limit(1))

    def bare_page() -> object:
        with Session(engine) as db:
            return db.execute(select(Incident).order_by(*order).limit(PAGE_SIZE)).all()

    cursor = Cursor(deep.severity, deep.time, deep.id).encode()
    cases: list[tuple[str, Callable[[], object]]] = [
        (BASELINES[0], getter(dsl, "/static/console.css")),
        (BASELINES[1], bare_page),
        ("queue, new, page 1 (with counts)", getter(dsl, "/incidents")),
        ("queue, all, page 1", getter(dsl, "/incidents?status=all")),
        ("queue, all, 1,000 rows deep", getter(dsl, f"/incidents?status=all&after={cursor}")),
        ("queue, closed", getter(dsl, "/incidents?status=closed")),
        ("queue, severity 5 + category", getter(dsl, "/incidents?severity=5&category=suicide")),
        ("queue, one pupil", getter(dsl, "/incidents?status=all&pupil=pupil42")),
        ("queue, year group", getter(dsl, "/incidents?year=Y9")),
        ("queue, a group (JSON column)", getter(dsl, "/incidents?group=9A")),
        ("queue, one week", getter(dsl, "/incidents?status=all&since=2026-10-01&until=2026-10-07")),
        ("queue, pastoral lead's scope", getter(pastoral, "/incidents")),
        ("incident page", getter(dsl, f"/incidents/{with_capture}")),
        ("capture (decompress + sanitise)", getter(dsl, f"/incidents/{with_capture}/capture")),
        ("dashboard, 8 weeks", getter(dsl, "/dashboard")),
    ]
    figures = {name: median_ms(call, rounds) for name, call in cases}
    app.extensions["netmon_console"].engine.dispose()
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--db", default=os.environ.get("NETMON_TEST_PG_URL"),
        help="a PostgreSQL server URL whose user may CREATE DATABASE (default: NETMON_TEST_PG_URL)",
    )  # fmt: skip
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL even when a URL is set")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    print(f"SQLite ({args.incidents} incidents, median of {args.rounds})", flush=True)
    results["SQLite"] = measure(
        f"sqlite:///{tempfile.mkdtemp(prefix='bench-console-')}/netmon.db", args.incidents, args.rounds
    )
    if args.db and not args.sqlite_only:
        print(f"PostgreSQL ({args.incidents} incidents, median of {args.rounds})", flush=True)
        with postgres_database(args.db) as url:
            results["PostgreSQL"] = measure(url, args.incidents, args.rounds)
    else:
        print("PostgreSQL skipped: pass --db URL or set NETMON_TEST_PG_URL")
    stores = list(results)
    head = "".join(f"{s + ' ms':>15}{'x static':>9}{'x SELECT':>9}" for s in stores)
    print(f"\n{'page':36}{head}")
    for name in results[stores[0]]:
        line = ""
        for s in stores:
            ms = results[s][name]
            line += f"{ms:15.1f}{ms / results[s][BASELINES[0]]:9.1f}{ms / results[s][BASELINES[1]]:9.1f}"
        print(f"{name:36}{line}")
    worst = {s: max(v for k, v in results[s].items() if k not in BASELINES) for s in stores}
    print(
        "\nslowest page: " + ", ".join(f"{s} {ms:.0f} ms" for s, ms in worst.items()) + " (target < 300 ms)"
    )


if __name__ == "__main__":
    main()
