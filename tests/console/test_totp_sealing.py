"""TOTP secrets at rest: sealed with the console key, so the database alone does not give the seeds; plain
secrets from before keep working and are sealed at their next code or by `netmon staff seal`; the key
file is made 0600 once; a secret sealed with another key is refused with a message."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from netmon_console.app import ConsoleConfig, create_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.identity import totp
from netmon.store.console import StaffAccount
from netmon.store.db import make_engine
from tests.console.conftest import STAFF, sign_in

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - a test seed


@pytest.fixture(autouse=True)
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("NETMON_CONSOLE_KEY", raising=False)
    monkeypatch.delenv("NETMON_CONSOLE_KEY_FILE", raising=False)
    monkeypatch.setenv("NETMON_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def stored_secret(url: str, username: str) -> str | None:
    engine = make_engine(url)
    with Session(engine) as db:
        value = db.scalars(select(StaffAccount.totp_secret).where(StaffAccount.username == username)).one()
    engine.dispose()
    return value


def test_seal_round_trip_and_binding() -> None:
    key, other = totp.load_key(), base64.urlsafe_b64decode(totp.new_key_text() + "=")
    sealed = totp.seal(SECRET, "dina", key)
    assert sealed.startswith("t1:") and len(sealed) <= 64 and SECRET not in sealed
    assert totp.open_secret(sealed, "dina", key) == SECRET
    assert totp.seal(SECRET, "dina", key) != sealed  # a fresh nonce each time
    with pytest.raises(totp.SealError):
        totp.open_secret(sealed, "dan", key)  # bound to its account: cannot be moved to another
    with pytest.raises(totp.SealError):
        totp.open_secret(sealed, "dina", other)
    assert totp.open_secret(SECRET, "dina", key) == SECRET  # plain, from before sealing


def test_key_file_is_made_once_owner_only(state: Path) -> None:
    first = totp.load_key()
    path = state / "console.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert totp.load_key() == first and len(first) == 32
    assert [p.name for p in state.iterdir()] == ["console.key"]  # no temporary file left


def test_key_from_the_environment_and_bad_keys(monkeypatch: pytest.MonkeyPatch, state: Path) -> None:
    text = totp.new_key_text()
    monkeypatch.setenv("NETMON_CONSOLE_KEY", text)
    assert totp.load_key() == base64.urlsafe_b64decode(text + "=") and not state.exists()
    monkeypatch.setenv("NETMON_CONSOLE_KEY", "too-short")
    with pytest.raises(ConfigError, match="NETMON_CONSOLE_KEY: must be 32 bytes"):
        totp.load_key()
    monkeypatch.delenv("NETMON_CONSOLE_KEY")
    state.mkdir()
    (state / "console.key").write_text("not a key\n")
    with pytest.raises(ConfigError, match="console.key: must be 32 bytes"):
        totp.load_key()


def test_cli_enrols_sealed_and_the_database_alone_gives_no_seed(store_url: str, state: Path) -> None:
    result = CliRunner().invoke(
        main, ["staff", "add", "dina", "--role", "dsl", "--password-stdin", "--db", store_url],
        input="correct horse battery staple\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    uri = next(line for line in result.output.splitlines() if line.startswith("otpauth://"))
    seed = pyotp.parse_uri(uri).secret
    stored = stored_secret(store_url, "dina")
    assert stored is not None and totp.is_sealed(stored) and seed not in stored
    if store_url.startswith("sqlite:///"):  # the database file holds no seed, in any form
        raw = Path(store_url.removeprefix("sqlite:///")).read_bytes()
        assert seed.encode() not in raw and base64.b32decode(seed) not in raw
    listing = CliRunner().invoke(main, ["staff", "list", "--db", store_url]).output
    assert "dina" in listing and " yes " in listing


def _app(url: str, **options: object) -> Flask:
    app = create_app(ConsoleConfig(db_url=url, secret_key="test-secret", **options))  # type: ignore[arg-type]  # noqa: S106
    app.config["TESTING"] = True
    return app


def test_plain_secret_still_works_and_is_sealed_on_use(console_db: str) -> None:
    assert stored_secret(console_db, "dina") == STAFF["dsl"].secret  # the fixture stores it plain
    app = _app(console_db)
    assert sign_in(app.test_client(), STAFF["dsl"]).status_code == 302
    stored = stored_secret(console_db, "dina")
    assert stored is not None and totp.is_sealed(stored)
    assert totp.open_secret(stored, "dina", totp.load_key()) == STAFF["dsl"].secret
    # the next sign-in reads the sealed secret (a later code: each is accepted once)
    assert sign_in(app.test_client(), STAFF["dsl"], code=STAFF["dsl"].code(1)).status_code == 302
    app.extensions["netmon_console"].engine.dispose()


def test_staff_seal_seals_every_plain_secret(console_db: str) -> None:
    result = CliRunner().invoke(main, ["staff", "seal", "--db", console_db])
    assert result.exit_code == 0 and "sealed 3 TOTP secrets" in result.output
    for member in STAFF.values():
        stored = stored_secret(console_db, member.username)
        assert stored is None if member.secret is None else totp.is_sealed(stored)
    assert "sealed 0 TOTP secrets" in CliRunner().invoke(main, ["staff", "seal", "--db", console_db]).output
    app = _app(console_db)
    assert sign_in(app.test_client(), STAFF["pastoral"]).status_code == 302
    app.extensions["netmon_console"].engine.dispose()


def test_a_secret_sealed_with_another_key_is_refused_with_a_message(console_db: str) -> None:
    CliRunner().invoke(main, ["staff", "seal", "--db", console_db])
    other_key = os.urandom(32)
    app = _app(console_db, totp_key=other_key)
    client = app.test_client()
    response = sign_in(client, STAFF["dsl"])
    assert response.status_code == 500 and "cannot be read on this console" in response.text
    assert client.get("/incidents").status_code == 302
    app.extensions["netmon_console"].engine.dispose()


def test_console_refuses_to_start_without_a_readable_key(store_url: str, state: Path) -> None:
    state.mkdir()
    (state / "console.key").write_text("x")
    result = CliRunner().invoke(main, ["console", "--db", store_url, "--port", "1"])
    assert result.exit_code != 0 and "console.key: must be 32 bytes" in result.output
