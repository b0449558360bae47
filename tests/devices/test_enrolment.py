"""Enrolment in the store: keys, addresses from the pool, AUP acceptance, revoke, rotate, gateway peers."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from netmon.errors import ConfigError
from netmon.identity import enrolment
from netmon.identity.devices import device_for_address
from netmon.identity.enrolment import DeviceError
from netmon.identity.wireguard import (
    TunnelSettings,
    WgControl,
    WireGuardError,
    check_public_key,
    generate_keypair,
    public_key_of,
)
from netmon.store.devices import EnrolledDevice
from netmon.store.identity import AupAcceptance
from netmon.store.incidents import AuditEvent


def _enrol(engine: Engine, settings: TunnelSettings, name: str, user: str = "alice") -> enrolment.Issued:
    with Session(engine) as session, session.begin():
        return enrolment.enrol(
            session,
            settings,
            name=name,
            username=user,
            site="main",
            aup_version="2026-09",
            gateway_public=public_key_of(settings.gateway_private_key()),
        )


def test_keys_are_wireguard_keys() -> None:
    private, public = generate_keypair()
    assert public_key_of(private) == public
    assert check_public_key(public) == public
    with pytest.raises(WireGuardError):
        check_public_key("not-a-key")
    if shutil.which("wg"):  # the same derivation as wg(8)
        derived = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True)
        assert derived.stdout.strip() == public


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NETMON_WG_POOL_V4", "10.99.0.0/33", "NETMON_WG_POOL_V4"),
        ("NETMON_WG_POOL_V4", "10.99.0.0/31", "pool too small"),
        ("NETMON_WG_PORT", "70000", "NETMON_WG_PORT: must be a number 1-65535"),
        ("NETMON_WG_DNS", "resolver", "NETMON_WG_DNS: not an IP address"),
        ("NETMON_WG_INTERFACE", "a-very-long-interface", "NETMON_WG_INTERFACE"),
    ],
)
def test_settings_errors_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TunnelSettings.from_env({name: value})


def test_enrol_stores_the_peer_and_never_the_private_key(engine: Engine, settings: TunnelSettings) -> None:
    issued = _enrol(engine, settings, "lt-001")
    assert (issued.address_v4, issued.address_v6) == ("10.99.0.2", "fd99::2")  # .1 is the gateway's
    assert public_key_of(issued.private_key) == issued.public_key
    config = issued.client_config
    assert f"PrivateKey = {issued.private_key}" in config
    assert "Address = 10.99.0.2/32, fd99::2/128" in config
    assert "DNS = 10.99.0.1" in config
    assert "Endpoint = vpn.school.example:51820" in config
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in config
    assert f"PublicKey = {public_key_of(settings.gateway_private_key())}" in config
    with Session(engine) as session:
        row = session.scalars(select(EnrolledDevice)).one()
        assert (row.name, row.username, row.site, row.public_key) == (
            "lt-001",
            "alice",
            "main",
            issued.public_key,
        )
        assert row.created_at is not None and row.last_seen is None and row.revoked_at is None
        accepted = session.scalars(select(AupAcceptance)).one()
        assert (accepted.username, accepted.aup_version, accepted.ip) == ("alice", "2026-09", "10.99.0.2")
        assert "lt-001" in accepted.user_agent
        assert [e.action for e in session.scalars(select(AuditEvent))] == ["devices.enrol"]
        # the private key is nowhere in the database
        for table in inspect(session.bind).get_table_names():
            for values in session.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 - table names
                assert issued.private_key not in " ".join(str(v) for v in values), table


def test_enrol_refuses_unknown_user_taken_name_bad_name_and_no_endpoint(
    engine: Engine, settings: TunnelSettings
) -> None:
    _enrol(engine, settings, "lt-001")
    with pytest.raises(DeviceError, match="no user 'carol' in the roster"):
        _enrol(engine, settings, "lt-002", user="carol")
    with pytest.raises(DeviceError, match="already enrolled"):
        _enrol(engine, settings, "lt-001", user="bob")
    with pytest.raises(DeviceError, match="device name"):
        _enrol(engine, settings, "lt 003")
    with pytest.raises(ConfigError, match="NETMON_WG_ENDPOINT: not set"):
        _enrol(engine, replace(settings, endpoint=""), "lt-004")


def test_addresses_are_fixed_and_revoked_ones_reused_only_when_the_pool_is_full(
    engine: Engine, settings: TunnelSettings
) -> None:
    small = replace(settings, pool_v4=TunnelSettings.from_env({"NETMON_WG_POOL_V4": "10.99.0.0/29"}).pool_v4)
    addresses = [_enrol(engine, small, f"d{i}").address_v4 for i in range(5)]
    assert addresses == [f"10.99.0.{i}" for i in range(2, 7)]  # 6 hosts, the gateway has .1
    with pytest.raises(DeviceError, match="pool 10.99.0.0/29 is full"):
        _enrol(engine, small, "d5")
    with Session(engine) as session, session.begin():
        enrolment.revoke(session, name="d3", reason="lost")
    with Session(engine) as session, session.begin():
        enrolment.revoke(session, name="d1", reason="left")
    # only revoked addresses are left: the one revoked first goes first
    assert _enrol(engine, small, "d6").address_v4 == "10.99.0.5"
    assert _enrol(engine, small, "d7").address_v4 == "10.99.0.3"


def test_revoke_ends_identity_and_removes_the_peer(engine: Engine, settings: TunnelSettings) -> None:
    kept = _enrol(engine, settings, "lt-001")
    gone = _enrol(engine, settings, "lt-002", user="bob")
    with Session(engine) as session:
        assert device_for_address(session, gone.address_v4) is not None
    with Session(engine) as session, session.begin():
        enrolment.revoke(session, name="lt-002", reason="stolen")
    with Session(engine) as session:
        assert device_for_address(session, gone.address_v4) is None
        assert device_for_address(session, gone.address_v6 or "") is None
        peers = enrolment.gateway_peers(session)
        text_ = enrolment.gateway_text(session, settings)
    assert [p[1] for p in peers] == [kept.public_key]
    assert gone.public_key not in text_ and kept.public_key in text_
    assert "AllowedIPs = 10.99.0.2/32, fd99::2/128" in text_
    assert "ListenPort = 51820" in text_
    with Session(engine) as session, session.begin(), pytest.raises(DeviceError, match="no enrolled device"):
        enrolment.revoke(session, name="lt-002")
    # the name is free again: a new device, a fresh address
    assert _enrol(engine, settings, "lt-002", user="bob").address_v4 == "10.99.0.4"


def test_rotate_keeps_the_address_and_replaces_the_key(engine: Engine, settings: TunnelSettings) -> None:
    first = _enrol(engine, settings, "lt-001")
    with Session(engine) as session, session.begin():
        second, old = enrolment.rotate(
            session, settings, name="lt-001", gateway_public=public_key_of(settings.gateway_private_key())
        )
    assert old == first.public_key
    assert second.public_key != first.public_key and second.private_key != first.private_key
    assert (second.address_v4, second.address_v6) == (first.address_v4, first.address_v6)
    with Session(engine) as session:
        assert [p[1] for p in enrolment.gateway_peers(session)] == [second.public_key]
        assert device_for_address(session, first.address_v4).device == "lt-001"  # type: ignore[union-attr]


def test_gateway_key_is_created_once_private(settings: TunnelSettings) -> None:
    key = settings.gateway_private_key()
    assert settings.gateway_private_key() == key
    assert settings.gateway_key_file.stat().st_mode & 0o777 == 0o600
    settings.gateway_key_file.write_text("garbage\n")
    with pytest.raises(ConfigError, match="replace it with the output of `wg genkey`"):
        settings.gateway_private_key()


class FakeControl(WgControl):
    def __init__(self, present: bool = True, fail: bool = False) -> None:
        super().__init__("wg-test", wg="wg", runner=self._record)
        self.present = present
        self.fail = fail
        self.calls: list[list[str]] = []

    def exists(self) -> bool:
        return self.present

    def _record(self, args):  # type: ignore[no-untyped-def]
        self.calls.append(list(args))
        return subprocess.CompletedProcess(args, 1 if self.fail else 0, "", "Operation not permitted")


def test_apply_to_gateway_sets_the_running_interface_and_rewrites_the_file(
    engine: Engine, settings: TunnelSettings, tmp_path: Path
) -> None:
    issued = _enrol(engine, settings, "lt-001")
    settings = replace(settings, config_file=tmp_path / "wg" / "wg-netmon.conf")
    control = FakeControl()
    with Session(engine) as session:
        applied = enrolment.apply_to_gateway(
            session,
            settings,
            add=[(issued.public_key, "10.99.0.2/32, fd99::2/128")],
            remove=["OLD"],
            control=control,
        )
    assert applied.live and applied.problem is None
    assert control.calls == [
        ["wg", "set", "wg-test", "peer", "OLD", "remove"],
        ["wg", "set", "wg-test", "peer", issued.public_key, "allowed-ips", "10.99.0.2/32,fd99::2/128"],
    ]
    written = settings.config_file
    assert written is not None and issued.public_key in written.read_text()
    assert written.stat().st_mode & 0o777 == 0o600
    with Session(engine) as session:
        refused = enrolment.apply_to_gateway(session, settings, remove=["K"], control=FakeControl(fail=True))
        absent = enrolment.apply_to_gateway(
            session, settings, remove=["K"], control=FakeControl(present=False)
        )
    assert not refused.live and "Operation not permitted" in (refused.problem or "")
    assert not absent.live and absent.problem is None


def test_record_handshakes_moves_last_seen_forward(engine: Engine, settings: TunnelSettings) -> None:
    from datetime import UTC, datetime

    issued = _enrol(engine, settings, "lt-001")
    seen = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        assert enrolment.record_handshakes(session, {issued.public_key: seen, "other": seen}) == 1
        assert enrolment.record_handshakes(session, {issued.public_key: seen}) == 0
    with Session(engine) as session:
        assert session.scalars(select(EnrolledDevice.last_seen)).one() == seen
