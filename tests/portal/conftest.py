"""Portal fixtures: a migrated store with a roster, a CA like the proxy's, the Flask app, a real slapd."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from netmon_portal.app import PortalConfig, create_app

from netmon.config.paths import DEFAULT_POLICY_DIR
from tests.portal import ldap_server

ROSTER = """\
username,display_name,role,year_group,groups,password
alice,Alice Smith,pupil,Y9,9A;art,alice-pass-1
bob,Bob Jones,staff,,teachers;pastoral,bob-pass-1
carol,Carol Evans,pupil,Y10,10B,
"""

LDAP_PEOPLE = [
    {"uid": "carol", "cn": "Carol Evans", "password": "carol-ldap-1", "etype": "pupil", "year": "Y10"},
    {"uid": "dave", "cn": "Dave Davies", "password": "dave-ldap-1", "etype": "staff", "year": "staff"},
    {"uid": "erin", "cn": "Erin <b>Hughes</b>", "password": "erin-ldap-1", "etype": "pupil", "year": "Y8"},
    {"uid": "frank", "cn": "Frank Owen", "password": "frank-ldap-1", "etype": "", "year": ""},
]


LDAP_GROUPS = {"art club": ["carol", "erin"], "teachers": ["dave"], "staff room": ["frank"]}


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    return path


@pytest.fixture
def portal_db(store_url: str, roster_file: Path) -> str:
    """A migrated store holding the roster's accounts."""
    from sqlalchemy.orm import Session

    from netmon.identity.users import import_roster
    from netmon.store.db import make_engine

    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        report = import_roster(session, roster_file)
    engine.dispose()
    assert report.created == 3 and not report.errors
    return store_url


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    """A mitmproxy confdir with a freshly generated CA, as the proxy makes on first start."""
    from mitmproxy.certs import CertStore

    confdir = tmp_path / "mitmconf"
    confdir.mkdir()
    CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir


@pytest.fixture
def aup_dir(tmp_path: Path) -> Path:
    target = tmp_path / "aup"
    shutil.copytree(DEFAULT_POLICY_DIR / "aup", target)
    return target


@pytest.fixture
def portal_config(portal_db: str, ca_dir: Path, aup_dir: Path) -> PortalConfig:
    return PortalConfig(
        db_url=portal_db,
        aup_dir=aup_dir,
        ca_cert=ca_dir / "mitmproxy-ca-cert.pem",
        public_url="http://portal.school.test:8090/",
        arp_path=None,
        organisation="Test School",
    )


@pytest.fixture
def app(portal_config: PortalConfig) -> Iterator[Flask]:
    application = create_app(portal_config)
    yield application
    application.extensions["netmon"]["engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_server.LdapServer]:
    if not ldap_server.available():
        pytest.skip("slapd not installed (apt-get install slapd ldap-utils)")
    proc, server = ldap_server.start(tmp_path_factory.mktemp("slapd"), LDAP_PEOPLE, LDAP_GROUPS)
    yield server
    proc.terminate()
    proc.wait(timeout=10)
