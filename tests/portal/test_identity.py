"""Device sessions in the store and the proxy's snapshot: idle timeout, maximum length, AUP version,
a new device on the same address, refresh from a background thread."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from netmon.identity.refresher import SessionRefresher
from netmon.identity.sessions import (
    SETTING_AUP_VERSION,
    end_sessions,
    load_snapshot,
    read_neighbours,
    session_for_ip,
    set_setting,
    start_session,
)
from netmon.identity.users import Account
from netmon.store.base import utcnow
from netmon.store.db import make_engine
from netmon.store.identity import AupAcceptance, DeviceSession

ALICE = Account("alice", "Alice Smith", "pupil", "Y9", ("9A", "art"), "local")
BOB = Account("bob", "Bob Jones", "staff", None, ("teachers",), "local")

ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.20.0.5        0x1         0x2         aa:bb:cc:00:00:05     *        wlan0
10.20.0.6        0x1         0x0         00:00:00:00:00:00     *        wlan0
"""


def _sign_in(session: Session, account: Account, ip: str, **kwargs: object) -> DeviceSession:
    defaults: dict[str, object] = {"mac": None, "user_agent": "UA", "aup_version": "v1", "language": "en"}
    defaults.update(kwargs)
    return start_session(session, account, ip=ip, **defaults)  # type: ignore[arg-type]


def test_sign_in_records_acceptance_and_replaces_previous_device(store_url: str) -> None:
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
        _sign_in(session, ALICE, "10.20.0.5", mac="aa:bb:cc:00:00:05")
    with Session(engine) as session, session.begin():
        _sign_in(session, BOB, "::ffff:10.20.0.5")
    with Session(engine) as session:
        live = session_for_ip(session, "10.20.0.5", "v1")
        assert live is not None and live.username == "bob"
        acceptances = session.query(AupAcceptance).order_by(AupAcceptance.id).all()
        assert [(a.username, a.aup_version, a.ip) for a in acceptances] == [
            ("alice", "v1", "10.20.0.5"),
            ("bob", "v1", "10.20.0.5"),
        ]
        assert acceptances[0].mac == "aa:bb:cc:00:00:05"
        old = session.query(DeviceSession).filter_by(username="alice").one()
        assert old.end_reason == "replaced"
    engine.dispose()


def test_snapshot_idle_max_and_aup_version(store_url: str) -> None:
    engine = make_engine(store_url)
    now = utcnow()
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
        _sign_in(session, ALICE, "10.0.0.1", idle=timedelta(minutes=10), max_length=timedelta(hours=1))
        _sign_in(session, BOB, "10.0.0.2", idle=timedelta(minutes=10), now=now - timedelta(minutes=11))
        _sign_in(session, ALICE, "10.0.0.3", max_length=timedelta(hours=1), now=now - timedelta(hours=2))
    with Session(engine) as session:
        snapshot, _ = load_snapshot(session)
    assert set(snapshot.sessions) == {"10.0.0.1"}  # .2 idle too long, .3 past its maximum length
    info = snapshot.lookup("10.0.0.1")
    assert info is not None and info.as_metadata() == {
        "user": "alice",
        "role": "pupil",
        "year_group": "Y9",
        "groups": ["9A", "art"],
        "mac": None,
    }
    t = time.time()
    assert snapshot.lookup("10.0.0.1", now=t + 11 * 60) is None  # idle in the proxy's own clock
    assert snapshot.lookup("10.0.0.1", now=t + 11 * 60, last_active=t + 10 * 60) is not None
    assert snapshot.lookup("10.0.0.1", now=t + 2 * 3600, last_active=t + 2 * 3600) is None  # max length

    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v2")  # the school changed the AUP
    with Session(engine) as session:
        snapshot, _ = load_snapshot(session)
        assert snapshot.sessions == {}
        assert session_for_ip(session, "10.0.0.1", "v2") is None
    engine.dispose()


def test_new_device_on_same_address_never_inherits(store_url: str, tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text(ARP)
    assert read_neighbours(arp) == {"10.20.0.5": "aa:bb:cc:00:00:05"}
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
        _sign_in(session, ALICE, "10.20.0.5", mac="aa:bb:cc:00:00:05")
    refresher = SessionRefresher(engine, arp_path=arp)
    snapshot = refresher.refresh()
    info = snapshot.lookup("10.20.0.5")
    assert info is not None and info.as_metadata(snapshot.mac_of("10.20.0.5"))["mac"] == "aa:bb:cc:00:00:05"
    # another device takes the address (DHCP re-use): the MAC differs
    assert snapshot.lookup("10.20.0.5", mac="de:ad:be:ef:00:01") is None
    arp.write_text(ARP.replace("aa:bb:cc:00:00:05", "de:ad:be:ef:00:01"))
    snapshot = refresher.refresh()
    assert snapshot.lookup("10.20.0.5") is None
    with Session(engine) as session:
        row = session.query(DeviceSession).one()
        assert row.ended_at is not None and row.end_reason == "new-device"
    engine.dispose()


def test_refresher_thread_writes_activity_and_keeps_snapshot_on_store_failure(
    store_url: str, tmp_path: Path
) -> None:
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
        _sign_in(session, ALICE, "10.0.0.1", now=utcnow() - timedelta(minutes=5))
    refresher = SessionRefresher(engine, interval=0.1, arp_path=None)
    refresher.start()
    try:
        assert refresher.snapshot.ok and "10.0.0.1" in refresher.snapshot.sessions
        refresher.touch("10.0.0.1")
        time.sleep(0.5)
        with Session(engine) as session:
            row = session.query(DeviceSession).one()
            assert utcnow() - row.last_seen < timedelta(seconds=5)
            end_sessions(session, username="alice", reason="ended-by-admin")
            session.commit()
        deadline = time.monotonic() + 5
        while refresher.snapshot.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refresher.snapshot.sessions == {}
    finally:
        refresher.stop()

    # a store without the tables (never migrated): nothing loads, the gate treats everyone as signed out
    broken = SessionRefresher(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"), arp_path=None)
    assert broken.refresh().ok is False
    assert broken.failures == 1
    engine.dispose()


def test_quick_refresh_reloads_only_after_a_change(store_url: str) -> None:
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
    refresher = SessionRefresher(engine, arp_path=None)
    first = refresher.refresh()
    assert refresher.refresh_if_changed() is first  # nothing changed: no full reload
    with Session(engine) as session, session.begin():
        _sign_in(session, ALICE, "10.0.0.9")
    second = refresher.refresh_if_changed()
    assert second is not first and "10.0.0.9" in second.sessions
    assert refresher.refresh_if_changed() is second
    with Session(engine) as session, session.begin():
        end_sessions(session, ip="10.0.0.9", reason="signed-out")
    assert refresher.refresh_if_changed().sessions == {}
    engine.dispose()
