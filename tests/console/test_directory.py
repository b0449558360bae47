"""Staff sign-in through the school directory (a real slapd) plus TOTP: `netmon staff add --auth
directory`, the bind, lockout and rate limits as for local passwords, a directory that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from netmon_console.app import ConsoleConfig, create_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.identity.users import DirectoryConfig
from netmon.store.console import StaffAccount
from netmon.store.db import make_engine
from tests.console.conftest import csrf_of
from tests.console.test_auth import audit_rows
from tests.portal import ldap_server

KEY = "q0sgvXW0kq8GQ6tOZ2lq1Yw8Q9b0d8m3cI0Xr6o2Zxw"  # a test console key (32 bytes, base64url)
PEOPLE = [
    {"uid": "ms.khan", "cn": "Amira Khan", "password": "khan-directory-1", "etype": "staff", "year": ""},
    {"uid": "mr.lee", "cn": "Tom Lee", "password": "lee-directory-1", "etype": "staff", "year": ""},
]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_server.LdapServer]:
    if not ldap_server.available():
        pytest.skip("slapd not installed (apt-get install slapd ldap-utils)")
    proc, server = ldap_server.start(tmp_path_factory.mktemp("slapd-staff"), PEOPLE)
    yield server
    proc.terminate()
    proc.wait(10)


@pytest.fixture(autouse=True)
def console_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETMON_CONSOLE_KEY", KEY)
    monkeypatch.setenv("NETMON_STATE_DIR", str(tmp_path / "state"))


def add(store_url: str, *args: str) -> str | None:
    """`netmon staff add` through click; returns the TOTP secret from the printed otpauth:// URI."""
    result = CliRunner().invoke(main, ["staff", "add", *args, "--db", store_url])
    assert result.exit_code == 0, result.output
    uri = [line for line in result.output.splitlines() if line.startswith("otpauth://")]
    return pyotp.parse_uri(uri[0]).secret if uri else None


def directory_app(store_url: str, server: ldap_server.LdapServer | None, **options: object) -> Flask:
    directory = DirectoryConfig(url=server.url, user_dn=server.user_dn) if server else None
    config = ConsoleConfig(db_url=store_url, secret_key="test-secret", directory=directory, **options)  # type: ignore[arg-type]  # noqa: S106
    app = create_app(config)
    app.config["TESTING"] = True
    return app


def password_step(client: FlaskClient, username: str, password: str) -> int:
    page = client.get("/signin")
    form = {"csrf": csrf_of(page.text), "username": username, "password": password}
    return client.post("/signin", data=form).status_code


def totp_step(client: FlaskClient, secret: str) -> int:
    page = client.get("/signin/totp")
    return client.post(
        "/signin/totp", data={"csrf": csrf_of(page.text), "code": pyotp.TOTP(secret).now()}
    ).status_code


def test_directory_password_then_totp(slapd: ldap_server.LdapServer, store_url: str) -> None:
    secret = add(store_url, "Ms.Khan", "--role", "dsl", "--auth", "directory")
    assert secret is not None
    engine = make_engine(store_url)
    with Session(engine) as db:
        account = db.scalars(select(StaffAccount).where(StaffAccount.username == "ms.khan")).one()
        assert account.uses_directory and "argon2" not in account.password_hash
    engine.dispose()
    app = directory_app(store_url, slapd)
    client = app.test_client()
    assert password_step(client, "ms.khan", "khan-directory-1") == 302
    assert client.get("/incidents").status_code == 302  # the directory's password alone is no session
    assert totp_step(client, secret) == 302
    assert client.get("/incidents").status_code == 200
    assert [e.actor for e in audit_rows(store_url, "console.signin")] == ["ms.khan"]
    other = app.test_client()
    assert password_step(other, "ms.khan", "wrong-password") == 401
    app.extensions["netmon_console"].engine.dispose()


def test_directory_failures_lock_the_account_before_the_directory_is_asked(
    slapd: ldap_server.LdapServer, store_url: str
) -> None:
    add(store_url, "mr.lee", "--role", "deputy_dsl", "--auth", "directory")
    app = directory_app(store_url, slapd)
    client = app.test_client()
    assert [password_step(client, "mr.lee", f"guess-{n}") for n in range(5)] == [401] * 5
    assert password_step(client, "mr.lee", "lee-directory-1") == 403  # locked: the right password too
    assert len(audit_rows(store_url, "console.signin.locked")) == 1
    assert len(audit_rows(store_url, "console.signin.failed")) == 5
    app.extensions["netmon_console"].engine.dispose()


def test_directory_sign_in_is_rate_limited_per_address(slapd: ldap_server.LdapServer, store_url: str) -> None:
    add(store_url, "mr.lee", "--role", "auditor", "--auth", "directory", "--no-totp")
    app = directory_app(store_url, slapd, ip_limit=(3, 60.0), lock_after=100)
    client = app.test_client()
    assert [password_step(client, "mr.lee", "nope") for _ in range(4)] == [401, 401, 401, 429]
    app.extensions["netmon_console"].engine.dispose()


def test_a_directory_that_is_down_or_missing_counts_no_failure(store_url: str, free_port: int) -> None:
    add(store_url, "ms.khan", "--role", "dsl", "--auth", "directory")
    down = ldap_server.LdapServer(
        url=f"ldap://127.0.0.1:{free_port}", user_dn="uid={username},dc=x", base_dn=""
    )
    for server in (down, None):
        app = directory_app(store_url, server)
        client = app.test_client()
        r = client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "username": "ms.khan",
                                         "password": "khan-directory-1"})  # fmt: skip
        assert r.status_code == 503 and "directory cannot check your password" in r.text
        app.extensions["netmon_console"].engine.dispose()
    assert not audit_rows(store_url, "console.signin.failed")
    assert len(audit_rows(store_url, "console.signin.error")) == 2


def test_a_directory_account_has_no_local_password(slapd: ldap_server.LdapServer, store_url: str) -> None:
    args = ["staff", "add", "x.y", "--role", "dsl", "--auth", "directory", "--password-stdin"]
    result = CliRunner().invoke(main, [*args, "--db", store_url], input="a local password here\n")
    assert result.exit_code != 0 and "no local password" in result.output
    # the marker is not a password: typing it is refused like any wrong password
    add(store_url, "ms.khan", "--role", "dsl", "--auth", "directory")
    app = directory_app(store_url, slapd)
    assert password_step(app.test_client(), "ms.khan", "!directory") == 401
    app.extensions["netmon_console"].engine.dispose()
