"""Fixtures for the devices tests: a store with two roster users and tunnel settings from a test env."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from netmon.identity.wireguard import TunnelSettings

ENV = {
    "NETMON_WG_ENDPOINT": "vpn.school.example:51820",
    "NETMON_WG_POOL_V4": "10.99.0.0/24",
    "NETMON_WG_POOL_V6": "fd99::/64",
}


@pytest.fixture
def wg_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**ENV, "NETMON_WG_KEY_FILE": str(tmp_path / "gateway.key"), "NETMON_STATE_DIR": str(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("NETMON_WG_CONFIG", "NETMON_WG_DNS", "NETMON_WG_INTERFACE", "NETMON_SITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETMON_WG_INTERFACE", "nmwgabsent0")  # never a real interface in unit tests
    return env


@pytest.fixture
def settings(wg_env: dict[str, str]) -> TunnelSettings:
    return TunnelSettings.from_env()


def add_user(engine: Engine, username: str, groups: list[str], year: str | None = "9") -> None:
    from netmon.store.identity import UserAccount

    with Session(engine) as session, session.begin():
        session.add(
            UserAccount(
                username=username,
                display_name=username.title(),
                role="pupil",
                year_group=year,
                groups=groups,
                source="roster",
            )
        )


@pytest.fixture
def engine(store_url: str) -> Engine:
    from netmon.store.db import make_engine

    engine = make_engine(store_url)
    add_user(engine, "alice", ["year9", "form9b"])
    add_user(engine, "bob", ["year10"], year="10")
    return engine
