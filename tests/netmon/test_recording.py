"""The batched incident writer against real databases: batches, de-duplication, after_batch atomicity,
a non-blocking submit() from a running loop, and the spill file when the store is down."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from netmon.incidents.writer import SPILL_NAME, IncidentWriter, result_from_json, result_to_json
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, ScanStats, TextFinding
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent, Incident, audit

T0 = 1_790_000_000.0


def make_result(
    n: int = 0,
    *,
    url: str | None = None,
    t: float = T0,
    user: str | None = "pupil1",
    phrase: str = "kms",
    severity: int = 5,
) -> ScanResult:
    text = f"page {n}: i want to {phrase} now"
    start = text.index(phrase)
    hit = Hit(
        phrase,
        "suicide",
        severity,
        "en",
        "en/suicide.txt",
        12,
        start,
        start + len(phrase),
        phrase,
        ("casefold",),
        ("with: none",),
    )
    ctx = FlowContext(
        time=t,
        client_ip="10.1.2.3",
        host="chat.example",
        user=user,
        groups=("year9",),
        url=url or f"https://chat.example/c/{n}?x=1",
        site="north",
        mac="aa:bb:cc:dd:ee:ff",
    )
    return ScanResult(
        context=ctx,
        findings=(TextFinding("chat", text, (hit,), "prompt"),),
        stats=ScanStats(bytes_scanned=len(text)),
        snapshot=b"\x28\xb5\x2f\xfd snapshot",
        snapshot_type="text/html",
        evidence={"note": "x"},
    )


def rows(url: str) -> list[Incident]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Incident).order_by(Incident.id)))
    finally:
        engine.dispose()


@pytest.fixture
def writer_factory(store_url: str, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    made: list[IncidentWriter] = []

    def make(url: str = store_url, **kw: object) -> IncidentWriter:
        kw.setdefault("spill_dir", tmp_path / "state")
        kw.setdefault("flush_interval", 0.05)
        writer = IncidentWriter(url, **kw)  # type: ignore[arg-type]
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=10)


def test_results_become_incidents_with_everything_recorded(store_url: str, writer_factory) -> None:  # type: ignore[no-untyped-def]
    writer = writer_factory()
    for n in range(25):
        writer.submit(make_result(n))
    writer.close()
    got = rows(store_url)
    assert len(got) == 25
    first = got[0]
    assert first.time.tzinfo is not None and first.time.timestamp() == T0
    assert (first.user, first.client_ip, first.host, first.source) == (
        "pupil1",
        "10.1.2.3",
        "chat.example",
        "chat",
    )
    assert (first.category, first.severity, first.phrase, first.count) == ("suicide", 5, "kms", 1)
    assert first.excerpt == "page 0: i want to [[kms]] now"
    assert first.explanation[0]["library_file"] == "en/suicide.txt" and first.explanation[0]["line"] == 12
    assert first.snapshot == b"\x28\xb5\x2f\xfd snapshot" and first.groups == ["year9"]
    assert len({r.uid for r in got}) == 25


def test_dedup_in_batch_across_batches_and_window(store_url: str, writer_factory) -> None:  # type: ignore[no-untyped-def]
    writer = writer_factory(dedup_window=timedelta(minutes=10))
    same = "https://chat.example/same"
    writer.submit(make_result(url=same, t=T0))
    writer.submit(make_result(url=same, t=T0 + 30))  # same batch
    assert writer.flush(10)
    writer.submit(make_result(url=same, t=T0 + 60))  # next batch: found in the store
    writer.submit(make_result(url=same, t=T0 + 60, user=None))  # unknown user: keyed by address
    writer.submit(make_result(url=same, t=T0 + 60, phrase="kill myself"))  # other top phrase
    assert writer.flush(10)
    writer.submit(make_result(url=same, t=T0 + 60 + 11 * 60))  # outside the window
    writer.close()
    got = rows(store_url)
    counts = sorted((r.user or "-", r.phrase, r.count) for r in got)
    assert counts == [
        ("-", "kms", 1),
        ("pupil1", "kill myself", 1),
        ("pupil1", "kms", 1),
        ("pupil1", "kms", 3),
    ]
    merged = next(r for r in got if r.count == 3)
    assert merged.time.timestamp() == T0 and merged.last_seen.timestamp() == T0 + 60


def test_hit_filter_drops_what_the_policy_does_not_record(store_url: str, writer_factory) -> None:  # type: ignore[no-untyped-def]
    writer = writer_factory(hit_filter=lambda ctx, hit: hit.severity >= 4)
    writer.submit(make_result(1, severity=3))
    writer.submit(make_result(2, severity=5))
    writer.close()
    assert [r.url for r in rows(store_url)] == ["https://chat.example/c/2?x=1"]


def test_after_batch_runs_in_the_same_transaction(store_url: str, writer_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, bool, int, int]] = []

    def outbox(session: Session, incidents: list[Incident]) -> None:
        for incident in incidents:
            assert incident.id is not None  # flushed before the callbacks
            seen.append((incident.uid, incident.batch_new, incident.batch_repeats, incident.count))
            audit(session, "alert.queued", actor="system", subject=incident.uid)

    writer = writer_factory(after_batch=[outbox])
    writer.submit(make_result(url="https://a/1"))
    writer.submit(make_result(url="https://a/1", t=T0 + 1))
    assert writer.flush(10)
    writer.submit(make_result(url="https://a/1", t=T0 + 2))
    writer.close()
    uid = rows(store_url)[0].uid
    assert seen == [(uid, True, 1, 2), (uid, False, 1, 3)]
    engine = make_engine(store_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
    engine.dispose()


def test_failing_after_batch_rolls_back_and_keeps_the_result(
    store_url: str,
    writer_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    def broken(session: Session, incidents: list[Incident]) -> None:
        audit(session, "alert.queued", actor="system")
        raise RuntimeError("rule bug")

    writer = writer_factory(after_batch=[broken])
    writer.submit(make_result(7))
    writer.close()
    assert rows(store_url) == []  # neither the incident nor the audit row: one transaction
    engine = make_engine(store_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    engine.dispose()
    rejected = (tmp_path / "state" / "incident-rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 1 and result_from_json(json.loads(rejected[0])) == make_result(7)


def test_a_failing_hit_filter_records_the_hit(store_url: str, writer_factory) -> None:  # type: ignore[no-untyped-def]
    def broken(ctx: FlowContext, hit: Hit) -> bool:
        raise KeyError("group")

    writer = writer_factory(hit_filter=broken)
    writer.submit(make_result(1))
    writer.close()
    assert len(rows(store_url)) == 1


def test_a_bad_result_is_rejected_alone(store_url: str, writer_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = make_result(99)
    bad = ScanResult(
        context=FlowContext(time=float("nan"), client_ip="x", host="h", url="u"), findings=bad.findings
    )
    writer = writer_factory()
    writer.submit(make_result(1))
    writer.submit(bad)
    writer.submit(make_result(2))
    writer.close()
    assert len(rows(store_url)) == 2
    assert len((tmp_path / "state" / "incident-rejected.jsonl").read_text().splitlines()) == 1


async def test_submit_never_blocks_the_loop_while_the_writer_is_busy(
    store_url: str,
    writer_factory,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    gc.collect()
    gc.freeze()  # a full collection over the whole pytest process is not what this test measures
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    busy = threading.Event()

    def slow(session: Session, incidents: list[Incident]) -> None:
        if not busy.is_set():
            busy.set()
            time.sleep(0.5)  # the store is slow: the writer thread is busy, the queue fills

    writer = writer_factory(after_batch=[slow], queue_size=50, batch_size=20)
    caplog.set_level(logging.WARNING, logger="asyncio")
    writer.submit(make_result(0))
    while not busy.is_set():  # the writer thread is now inside a slow transaction
        await asyncio.sleep(0.01)
    try:
        for i in range(1, 400):
            writer.submit(make_result(i))  # queue of 50: most of these overflow to the spill file
            if i % 10 == 0:
                await asyncio.sleep(0)
    finally:
        gc.unfreeze()
    assert not [r for r in caplog.records if "Executing" in r.getMessage()], caplog.text
    await asyncio.to_thread(writer.close, 60)
    assert len(rows(store_url)) == 400  # the overflow went through the spill file, nothing lost


def _hold_sqlite_write_lock(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_sqlite_locked_results_spill_then_replay_exactly_once(
    store_url: str,
    writer_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    if make_url(store_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite lock case")
    counters.reset()
    writer = writer_factory(busy_timeout=0.1, retry_interval=0.3)
    writer.submit(make_result(0))
    assert writer.flush(10)
    lock = _hold_sqlite_write_lock(make_url(store_url).database or "")
    for n in range(1, 30):
        writer.submit(make_result(n))
    assert writer.flush(10)
    spill = tmp_path / "state" / SPILL_NAME
    assert writer.store_down and not _spill_gone(spill)
    assert counters.snapshot().get("recording.spilled", 0) >= 29
    lock.execute("ROLLBACK")
    lock.close()
    deadline = time.monotonic() + 15
    while (writer.store_down or not _spill_gone(spill)) and time.monotonic() < deadline:
        time.sleep(0.1)
    writer.close()
    got = rows(store_url)
    assert sorted(r.url for r in got) == sorted(make_result(n).context.url for n in range(30))
    assert all(r.count == 1 for r in got)
    assert _spill_gone(spill)


def _spill_gone(spill: Path) -> bool:
    return not spill.exists() and not list(spill.parent.glob(SPILL_NAME + ".replay-*"))


def test_spill_is_replayed_at_next_start(store_url: str, writer_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if make_url(store_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite lock case")
    lock = _hold_sqlite_write_lock(make_url(store_url).database or "")
    first = writer_factory(busy_timeout=0.1, retry_interval=60)
    for n in range(10):
        first.submit(make_result(n))
    first.close(timeout=10)
    assert (tmp_path / "state" / SPILL_NAME).exists()
    lock.execute("ROLLBACK")
    lock.close()
    second = writer_factory()
    second.submit(make_result(10))
    second.close()
    assert sorted(r.url for r in rows(store_url)) == sorted(make_result(n).context.url for n in range(11))


def test_replay_after_a_crash_resumes_where_it_stopped(
    store_url: str, writer_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    state.mkdir()
    claimed = state / f"{SPILL_NAME}.replay-1-1"
    claimed.write_text("".join(json.dumps(result_to_json(make_result(n))) + "\n" for n in range(5)))
    (state / f"{claimed.name}.done").write_text("2")  # the first two were committed before the crash
    writer_factory().close()
    assert sorted(r.url for r in rows(store_url)) == sorted(make_result(n).context.url for n in range(2, 5))
    assert not claimed.exists()


def test_spill_roundtrip_keeps_every_field() -> None:
    result = make_result(3, user=None)
    again = result_from_json(json.loads(json.dumps(result_to_json(result))))
    assert again == result


# ---- PostgreSQL stopped mid-run: a real TCP path to the server that the test cuts and restores ----


class Relay:
    """A loopback TCP relay to the PostgreSQL server; stop() cuts every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target, self.port = target, port
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        assert self.listener is not None
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread; close() alone would not
        except OSError:
            pass
        self.listener.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.conns = []


@pytest.mark.postgres
def test_postgres_stopped_mid_run_spills_and_replays_exactly_once(
    store_url: str,
    writer_factory,  # type: ignore[no-untyped-def]
    free_port: int,
    tmp_path: Path,
) -> None:
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL case (set NETMON_TEST_PG_URL)")
    relay = Relay((url.host or "127.0.0.1", url.port or 5432), free_port)
    relay.start()
    via_relay = url.set(host="127.0.0.1", port=free_port).render_as_string(hide_password=False)
    writer = writer_factory(via_relay, retry_interval=0.3)
    for n in range(10):
        writer.submit(make_result(n))
    assert writer.flush(10)
    relay.stop()  # the server is gone mid-run
    for n in range(10, 40):
        writer.submit(make_result(n))
    assert writer.flush(30)
    assert writer.store_down and not _spill_gone(tmp_path / "state" / SPILL_NAME)
    relay.start()  # back
    deadline = time.monotonic() + 20
    while (
        writer.store_down or not _spill_gone(tmp_path / "state" / SPILL_NAME)
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    writer.close()
    relay.stop()
    got = rows(store_url)
    assert sorted(r.url for r in got) == sorted(make_result(n).context.url for n in range(40))
    assert all(r.count == 1 for r in got)


# ---- a private PostgreSQL server that the test really stops and starts again ----------------------


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory (as the postgres user when run as root)."""

    def __init__(self, port: int) -> None:
        import glob
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("PostgreSQL server binaries not installed")
        self.bindir = Path(bins[-1]).parent
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="netmon-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self._run(f"{self.bindir}/initdb -D {self.root}/data -U netmon --auth=trust")

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-c", command] if self.as_postgres else ["sh", "-c", command]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def pg_ctl(self, action: str) -> None:
        self._run(
            f"{self.bindir}/pg_ctl -D {self.root}/data -l {self.root}/log -m fast -w "
            f"-o '-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1' {action}"
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://netmon@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        try:
            self.pg_ctl("stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.postgres
def test_postgres_server_stopped_and_started_loses_nothing(free_port: int, tmp_path: Path) -> None:
    if not os.environ.get("NETMON_TEST_PG_URL"):
        pytest.skip("PostgreSQL tests need NETMON_TEST_PG_URL")
    server = PrivatePostgres(free_port)
    try:
        server.pg_ctl("start")
        subprocess.run(
            ["psql", server.url("postgres").replace("+psycopg", ""), "-qc", "CREATE DATABASE t"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        url = server.url("t")
        writer = IncidentWriter(url, spill_dir=tmp_path, retry_interval=0.5, flush_interval=0.05)
        for n in range(10):
            writer.submit(make_result(n))
        assert writer.flush(30)
        server.pg_ctl("stop")  # mid-run
        for n in range(10, 40):
            writer.submit(make_result(n))
        assert writer.flush(30)
        assert writer.store_down and not _spill_gone(tmp_path / SPILL_NAME)
        server.pg_ctl("start")
        deadline = time.monotonic() + 30
        while (writer.store_down or not _spill_gone(tmp_path / SPILL_NAME)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for n in range(40, 45):
            writer.submit(make_result(n))
        writer.close()
        got = rows(url)
        assert sorted(r.url for r in got) == sorted(make_result(n).context.url for n in range(45))
        assert all(r.count == 1 for r in got)
    finally:
        server.remove()


def test_a_result_submitted_after_close_is_kept_for_the_next_start(store_url: str, writer_factory) -> None:  # type: ignore[no-untyped-def]
    first = writer_factory()
    first.close()
    first.submit(make_result(1))  # a scan that finished during shutdown
    assert rows(store_url) == []
    writer_factory().close()
    assert [r.url for r in rows(store_url)] == [make_result(1).context.url]


def test_sqlite_file_deleted_under_a_running_writer_spills_and_replays(  # type: ignore[no-untyped-def]
    tmp_path: Path, writer_factory
) -> None:
    """The silent loss of issue 15: open connections write into a deleted file without an error."""
    from netmon.ops import counters
    from netmon.store.db import upgrade

    db = tmp_path / "store" / "netmon.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    writer = writer_factory(url, retry_interval=0.2)
    writer.submit(make_result(0))
    assert writer.flush(10)
    assert len(rows(url)) == 1
    gone_before = counters.snapshot().get("recording.store-gone", 0)

    for path in db.parent.iterdir():  # the file (and its WAL) deleted by hand, the writer still running
        path.unlink()
    for n in range(1, 6):
        writer.submit(make_result(n, t=T0 + n * 3600))
    assert writer.flush(10)
    assert writer.store_down
    assert counters.snapshot().get("recording.store-gone", 0) > gone_before
    assert not db.exists(), "the writer must not create an empty store behind the operator's back"
    spilled = (tmp_path / "state" / SPILL_NAME).read_text().splitlines()
    assert len(spilled) == 5
    assert "cannot be written" in counters.problems().get("store", ""), "status and doctor must say so"
    from netmon.ops import doctor

    counters.write_status(tmp_path / "state" / "status.json")
    check = doctor.check_counters(doctor.Settings(state_dir=tmp_path / "state"))
    assert check.status == doctor.FAIL and "store" in check.message

    upgrade(url)  # the store is back (a new, empty database)
    deadline = time.monotonic() + 15
    while (writer.store_down or len(rows(url)) < 5) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not writer.store_down
    assert "store" not in counters.problems()
    assert sorted(r.url for r in rows(url)) == sorted(make_result(n).context.url for n in range(1, 6))
    writer.submit(make_result(9, t=T0 + 9 * 3600))
    writer.close()
    assert len(rows(url)) == 6
