"""A tunnel address names its device and user (off site), straight from the store or from a snapshot."""

from __future__ import annotations

import time

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from netmon.identity import enrolment
from netmon.identity.devices import DeviceDirectory, DeviceSnapshot, device_for_address, load_device_snapshot
from netmon.identity.wireguard import TunnelSettings, public_key_of
from netmon.store.identity import UserAccount


def _enrol(engine: Engine, settings: TunnelSettings, name: str, user: str) -> enrolment.Issued:
    with Session(engine) as session, session.begin():
        return enrolment.enrol(
            session,
            settings,
            name=name,
            username=user,
            site="north",
            aup_version="v1",
            gateway_public=public_key_of(settings.gateway_private_key()),
        )


def test_device_for_address_names_device_user_groups_and_off_site(
    engine: Engine, settings: TunnelSettings
) -> None:
    issued = _enrol(engine, settings, "ipad-17", "alice")
    with Session(engine) as session:
        found = device_for_address(session, issued.address_v4)
        by_v6 = device_for_address(session, (issued.address_v6 or "").upper())
        mapped = device_for_address(session, f"::ffff:{issued.address_v4}")
        nobody = device_for_address(session, "10.99.0.200")
    assert found is not None and by_v6 is not None and mapped == found
    assert (found.device, found.user, found.year_group, found.groups) == (
        "ipad-17",
        "alice",
        "9",
        ("year9", "form9b"),
    )
    assert found.off_site is True and found.site == "north" and found.display_name == "Alice"
    assert by_v6.address == issued.address_v6
    assert nobody is None
    assert found.as_metadata() == {
        "user": "alice",
        "role": "pupil",
        "year_group": "9",
        "groups": ["year9", "form9b"],
        "mac": None,
        "device": "ipad-17",
        "site": "north",
        "off_site": True,
    }


def test_roster_changes_reach_the_identity(engine: Engine, settings: TunnelSettings) -> None:
    issued = _enrol(engine, settings, "lt-1", "bob")
    with Session(engine) as session, session.begin():
        session.query(UserAccount).filter_by(username="bob").update(
            {"groups": ["year11"], "year_group": "11"}
        )
    with Session(engine) as session:
        found = device_for_address(session, issued.address_v4)
    assert found is not None and found.groups == ("year11",) and found.year_group == "11"


def test_snapshot_and_directory_follow_enrol_and_revoke(engine: Engine, settings: TunnelSettings) -> None:
    assert DeviceSnapshot().lookup("10.99.0.2") is None and not DeviceSnapshot().ok
    a = _enrol(engine, settings, "lt-a", "alice")
    directory = DeviceDirectory(engine, poll=0.05, interval=3600)
    directory.start()
    try:
        assert directory.snapshot.ok
        assert directory.snapshot.lookup(a.address_v4).device == "lt-a"  # type: ignore[union-attr]
        b = _enrol(engine, settings, "lt-b", "bob")
        with Session(engine) as session, session.begin():
            enrolment.revoke(session, name="lt-a")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and directory.snapshot.lookup(a.address_v4) is not None:
            time.sleep(0.05)
        snap = directory.snapshot
        assert snap.lookup(a.address_v4) is None
        assert snap.lookup(b.address_v4).user == "bob"  # type: ignore[union-attr]
        assert snap.lookup(b.address_v6 or "").device == "lt-b"  # type: ignore[union-attr]
    finally:
        directory.stop()


def test_directory_keeps_the_old_snapshot_when_the_store_fails(
    engine: Engine, settings: TunnelSettings
) -> None:
    from netmon.store.db import make_engine

    a = _enrol(engine, settings, "lt-a", "alice")
    directory = DeviceDirectory(engine)
    directory.refresh()
    directory.engine = make_engine("sqlite:////nonexistent-dir-netmon/x.db")
    assert directory.refresh().lookup(a.address_v4) is not None
    with Session(engine) as session:
        assert load_device_snapshot(session).marker is not None


def test_doctor_tunnel_check(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No devices: nothing to check. Devices but no interface: the doctor fails and says how to fix."""
    from netmon.ops import doctor
    from netmon.store.db import upgrade

    url = f"sqlite:///{tmp_path / 'netmon.db'}"
    upgrade(url)
    monkeypatch.setenv("NETMON_WG_INTERFACE", "wg-doctortest")
    empty = doctor.check_tunnel(doctor.Settings(db_url=url))
    assert empty.status == doctor.OK and "no school devices enrolled" in empty.message
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from netmon.store.db import make_engine
    from netmon.store.devices import EnrolledDevice

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        session.add(
            EnrolledDevice(
                name="lt-9",
                username="alice",
                public_key="A" * 43 + "=",
                address_v4="10.99.0.9",
                aup_version="v1",
                aup_accepted_at=datetime.now(UTC),
            )  # fmt: skip
        )
    engine.dispose()
    missing = doctor.check_tunnel(doctor.Settings(db_url=url))
    assert missing.status == doctor.FAIL and "wg-doctortest is missing" in missing.message
    assert "netmon-wireguard" in missing.fix
