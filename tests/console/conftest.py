"""Console fixtures: a migrated store with incidents and staff accounts, the Flask app and its client, and a
helper that signs a member of staff in (password, then a TOTP code) through the real forms."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import zstandard
from flask import Flask
from flask.testing import FlaskClient
from netmon_console.app import ConsoleConfig, create_app
from sqlalchemy.orm import Session

from netmon.identity.users import hash_password
from netmon.store.console import StaffAccount
from netmon.store.db import make_engine
from netmon.store.incidents import Incident

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HOSTILE = (
    "<html><head><style>body{background:url(http://{evil}/css-style)}</style>"
    '<link rel="stylesheet" href="http://{evil}/css-link"><meta http-equiv="refresh" content="0;url=http://{evil}/meta">'
    "<script>fetch('http://{evil}/script');top.location='http://{evil}/top'</script></head><body>"
    '<h1 id="x">i want to kill myself</h1><img src="http://{evil}/img" onerror="fetch(\'http://{evil}/onerror\')">'
    '<div style="background-image:url(http://{evil}/css-attr)">styled</div>'
    '<iframe src="http://{evil}/frame"></iframe><object data="http://{evil}/object"></object>'
    '<svg><image href="http://{evil}/svg"/></svg><a href="javascript:fetch(\'http://{evil}/js\')">link</a>'
    '<form action="http://{evil}/form"><input name=q></form><video poster="http://{evil}/poster"></video>'
    "</body></html>"
)


@pytest.fixture(autouse=True)
def _console_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Console tests seal TOTP secrets with a key from the environment, never a key file in ./var."""
    monkeypatch.setenv("NETMON_CONSOLE_KEY", "a2V5LWZvci10aGUtY29uc29sZS10ZXN0cy0zMmJ5dGU")


@dataclass
class Member:
    username: str
    role: str
    secret: str | None
    scope: tuple[str, ...] = ()

    def code(self, offset: int = 0) -> str:
        assert self.secret is not None
        totp = pyotp.TOTP(self.secret)
        return totp.generate_otp(int(time.time()) // totp.interval + offset)


# Fixed secrets: pytest may import this module twice (as a conftest and from the tests), so nothing here
# may be random.
STAFF = {
    "dsl": Member("dina", "dsl", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
    "deputy": Member("dan", "deputy_dsl", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"),
    "pastoral": Member("pat", "pastoral", "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK", ("Y9",)),
    "netadmin": Member("nick", "network_admin", None),
    "auditor": Member("audrey", "auditor", None),
}


def add_staff(url: str, members: dict[str, Member] = STAFF) -> None:
    engine = make_engine(url)
    with Session(engine) as db, db.begin():
        password_hash = hash_password(PASSWORD)
        for m in members.values():
            db.add(
                StaffAccount(
                    username=m.username, display_name=m.username.title(), role=m.role, scope=list(m.scope),
                    password_hash=password_hash, totp_secret=m.secret, totp_last_step=0, disabled=False,
                    failed_attempts=0,
                )
            )  # fmt: skip
    engine.dispose()


def make_incident(**values: Any) -> Incident:
    t = values.pop("time", T0)
    explanation = [
        {"phrase": "kill myself", "category": "suicide", "severity": 5, "language": "en",
         "library_file": "library/en/suicide.txt", "line": 12, "matched_text": "kill myself",
         "source": "page", "label": "", "steps": ["casefold"], "rules": []},
    ] * 3 + [
        {"phrase": "self harm", "category": "self-harm", "severity": 4, "language": "en",
         "library_file": "library/en/self-harm.txt", "line": 3, "matched_text": "self-harm",
         "source": "page", "label": "", "steps": ["hyphen"], "rules": ["not negated"]},
    ]  # fmt: skip
    base: dict[str, Any] = dict(
        uid=uuid.uuid4().hex, time=t, last_seen=t, count=1, site="", client_ip="10.0.0.5", user="alice",
        role="pupil", year_group="Y9", groups=["9A", "art"], host="pages.test", url="http://pages.test/p?q=1",
        source="page", category="suicide", severity=5, phrase="kill myself",
        phrases=[{"phrase": "kill myself", "category": "suicide", "severity": 5, "matches": 3}],
        excerpt="…i want to [[kill myself]] now…", explanation=explanation, evidence={},
        dedup_key=uuid.uuid4().hex, capture_text="[page]\ni want to kill myself now", snapshot=None,
        snapshot_type=None,
    )  # fmt: skip
    base.update(values)
    return Incident(**base)


def snapshot(html: str) -> bytes:
    return zstandard.ZstdCompressor().compress(html.encode())


def add_incidents(url: str, incidents: list[Incident]) -> list[str]:
    engine = make_engine(url)
    with Session(engine) as db, db.begin():
        db.add_all(incidents)
        uids = [i.uid for i in incidents]
    engine.dispose()
    return uids


@pytest.fixture
def console_db(store_url: str) -> str:
    add_staff(store_url)
    return store_url


@pytest.fixture
def app(console_db: str) -> Iterator[Flask]:
    application = create_app(ConsoleConfig(db_url=console_db, secret_key="test-secret"))  # noqa: S106
    application.config["TESTING"] = True
    yield application
    application.extensions["netmon_console"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def sign_in(client: FlaskClient, member: Member, code: str | None = None) -> Any:
    """Sign in through the forms; returns the final response (after redirects)."""
    page = client.get("/signin")
    response = client.post(
        "/signin", data={"csrf": csrf_of(page.text), "username": member.username, "password": PASSWORD}
    )
    if member.secret is None:
        return client.get(response.headers["Location"]) if response.status_code == 302 else response
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/totp")
    page = client.get("/signin/totp")
    response = client.post("/signin/totp", data={"csrf": csrf_of(page.text), "code": code or member.code()})
    return response


def when(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)
