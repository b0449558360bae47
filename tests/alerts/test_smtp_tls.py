"""STARTTLS, SMTPS and authentication against a real aiosmtpd server with a test certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netmon.alerts.mail import SmtpSettings
from netmon.alerts.sender import AlertSender
from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.config.policy import load_policy

from .conftest import Handler
from .helpers import record, result, writer


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netmon test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Auth:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"netmon"
            and auth_data.password == b"s3cret"
        ):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return make_cert(tmp_path)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(params=["starttls", "ssl"])
def tls_server(
    request: pytest.FixtureRequest, tls_files: tuple[Path, Path], free_port: int
) -> Iterator[tuple[str, Handler, Auth, int, Path]]:
    cert, key = tls_files
    handler, auth = Handler(), Auth()
    context = server_context(cert, key)
    if request.param == "starttls":
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=auth,
        )
    else:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port,
            ssl_context=context,
            auth_required=True,
            authenticator=auth,
            auth_require_tls=False,
        )
    controller.start()
    yield request.param, handler, auth, free_port, cert
    controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # SMTPS is TLS from the start
async def test_tls_and_auth(store_url: str, tmp_path: Path, tls_server, debug_loop) -> None:  # type: ignore[no-untyped-def]
    mode, handler, auth, port, cert = tls_server
    settings = SmtpSettings.from_env(
        {
            "NETMON_SMTP_HOST": "127.0.0.1",
            "NETMON_SMTP_PORT": str(port),
            "NETMON_SMTP_TLS": mode,
            "NETMON_SMTP_USER": "netmon",
            "NETMON_SMTP_PASSWORD": "s3cret",
            "NETMON_SMTP_CAFILE": str(cert),
            "NETMON_MAIL_FROM": "netmon@school.example",
        }
    )
    policy = load_policy(DEFAULT_POLICY_DIR, env={"NETMON_ALERT_TO": "dsl@school.example"})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result())
    sender = AlertSender(store_url, settings, poll=0.1)
    task = asyncio.create_task(sender.run())
    deadline = time.monotonic() + 20
    while not handler.received and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    sender.stop()
    await asyncio.wait_for(task, 10)
    assert len(handler.received) == 1
    assert auth.logins == ["netmon"]


async def test_wrong_password_is_a_recorded_failure(
    store_url: str, tmp_path: Path, tls_files, free_port: int, debug_loop
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from netmon.store.alerts import Alert
    from netmon.store.db import make_engine

    cert, key = tls_files
    handler, auth = Handler(), Auth()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port,
        tls_context=server_context(cert, key),
        require_starttls=True,
        auth_required=True,
        authenticator=auth,
    )
    controller.start()
    try:
        settings = SmtpSettings.from_env(
            {
                "NETMON_SMTP_HOST": "127.0.0.1",
                "NETMON_SMTP_PORT": str(free_port),
                "NETMON_SMTP_TLS": "starttls",
                "NETMON_SMTP_USER": "netmon",
                "NETMON_SMTP_PASSWORD": "wrong",
                "NETMON_SMTP_CAFILE": str(cert),
            }
        )
        policy = load_policy(DEFAULT_POLICY_DIR, env={"NETMON_ALERT_TO": "dsl@school.example"})
        with writer(store_url, policy, tmp_path) as w:
            record(w, result())
        sender = AlertSender(store_url, settings, poll=0.1)
        await sender.run_once()
    finally:
        controller.stop()
    assert handler.received == []
    engine = make_engine(store_url)
    with Session(engine) as session:
        alert = session.scalars(select(Alert)).one()
    engine.dispose()
    assert alert.state == "pending" and alert.attempts == 1
    assert "wrong" not in (alert.last_error or "")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NETMON_SMTP_TLS": "tls"}, "NETMON_SMTP_TLS: must be none, starttls or ssl"),
        ({"NETMON_SMTP_PORT": "smtp"}, "NETMON_SMTP_PORT: must be a port number"),
        ({"NETMON_SMTP_PORT": "70000"}, "NETMON_SMTP_PORT: must be 1-65535"),
    ],
)
def test_bad_smtp_environment(env: dict[str, str], message: str) -> None:
    from netmon.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        SmtpSettings.from_env(env)


def test_default_ports() -> None:
    assert SmtpSettings.from_env({}).port == 25
    assert SmtpSettings.from_env({"NETMON_SMTP_TLS": "starttls"}).port == 587
    assert SmtpSettings.from_env({"NETMON_SMTP_TLS": "ssl"}).port == 465
