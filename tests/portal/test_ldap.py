"""Sign-in against a real OpenLDAP server (slapd started by the fixture on a free loopback port)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from netmon_portal.app import PortalConfig, create_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.identity.users import DirectoryConfig, DirectoryError, authenticate, directory_authenticate
from netmon.store.db import make_engine
from netmon.store.identity import DeviceSession, UserAccount
from tests.portal.ldap_server import LdapServer


def _direct(server: LdapServer) -> DirectoryConfig:
    return DirectoryConfig(url=server.url, user_dn=server.user_dn, year_attribute="departmentNumber")


def test_direct_bind(slapd: LdapServer) -> None:
    config = _direct(slapd)
    carol = directory_authenticate(config, "carol", "carol-ldap-1")
    assert carol is not None
    assert (carol.username, carol.display_name, carol.role, carol.year_group) == (
        "carol",
        "Carol Evans",
        "pupil",
        "Y10",
    )
    assert carol.groups == ("art club",)
    dave = directory_authenticate(config, "Dave", "dave-ldap-1")
    assert dave is not None and dave.role == "staff" and dave.username == "dave"
    assert dave.groups == ("teachers",)
    frank = directory_authenticate(config, "frank", "frank-ldap-1")  # staff by group membership
    assert frank is not None and frank.role == "staff" and frank.groups == ("staff room",)
    assert directory_authenticate(config, "carol", "wrong") is None
    assert directory_authenticate(config, "nobody", "carol-ldap-1") is None
    assert directory_authenticate(config, "carol", "") is None  # never an anonymous bind


def test_search_then_bind_escapes_the_user_name(slapd: LdapServer) -> None:
    config = DirectoryConfig(url=slapd.url, base_dn=slapd.base_dn, search_filter="(uid={username})")
    assert directory_authenticate(config, "carol", "carol-ldap-1") is not None
    assert directory_authenticate(config, "car*", "carol-ldap-1") is None
    assert directory_authenticate(config, "carol)(uid=*", "carol-ldap-1") is None


def test_directory_down_is_an_error_not_a_wrong_password() -> None:
    config = DirectoryConfig(url="ldap://127.0.0.1:9", user_dn="uid={username},dc=x", timeout=2)
    with pytest.raises(DirectoryError):
        directory_authenticate(config, "carol", "pw")


def test_roster_decides_identity_and_new_directory_users_are_added(slapd: LdapServer, portal_db: str) -> None:
    engine = make_engine(portal_db)
    with Session(engine) as session, session.begin():
        carol = authenticate(session, "carol", "carol-ldap-1", _direct(slapd))  # in the roster, no password
        assert carol is not None and carol.groups == ("10B",) and carol.source == "directory"
        dave = authenticate(session, "dave", "dave-ldap-1", _direct(slapd))  # only in the directory
        assert dave is not None and dave.role == "staff"
        assert authenticate(session, "dave", "wrong", _direct(slapd)) is None
    with Session(engine) as session:
        stored = session.scalars(select(UserAccount).where(UserAccount.username == "dave")).one()
        assert stored.source == "directory" and stored.password_hash is None
    engine.dispose()


def test_portal_sign_in_with_ldap(slapd: LdapServer, portal_config: PortalConfig, portal_db: str) -> None:
    portal_config.directory = _direct(slapd)
    client: FlaskClient = create_app(portal_config).test_client()
    env = {"REMOTE_ADDR": "10.20.0.8"}
    page = client.get("/", environ_base=env).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": token, "username": "erin", "password": "wrong", "accept": "yes"}
    assert client.post("/signin", data=form, environ_base=env).status_code == 401
    response = client.post("/signin", data={**form, "password": "erin-ldap-1"}, environ_base=env)
    assert response.status_code == 303
    welcome = client.get("/", environ_base=env).get_data(as_text=True)
    assert "Erin &lt;b&gt;Hughes&lt;/b&gt;" in welcome  # a directory name is escaped too
    engine = make_engine(portal_db)
    with Session(engine) as session:
        row = session.scalars(select(DeviceSession)).one()
        assert (row.username, row.ip, row.role, row.year_group) == ("erin", "10.20.0.8", "pupil", "Y8")
    engine.dispose()
