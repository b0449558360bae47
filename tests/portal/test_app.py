"""The portal through Flask's test client: AUP, sign-in, CSRF, rate limits, redirects, escaping, errors,
CA downloads and the RFC 8908 API."""

from __future__ import annotations

import plistlib
import re
import time
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from netmon_portal.app import PortalConfig, create_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.identity.sessions import SETTING_LINK_KEY, get_setting
from netmon.identity.signing import sign_client_ip, sign_link
from netmon.store.db import make_engine
from netmon.store.identity import AupAcceptance, DeviceSession
from netmon.store.incidents import AuditEvent

PUPIL_IP = "10.20.0.5"


def _env(ip: str = PUPIL_IP) -> dict[str, Any]:
    return {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"}


def _csrf(client: FlaskClient, query: str = "", ip: str = PUPIL_IP) -> str:
    page = client.get(f"/{query}", environ_base=_env(ip)).get_data(as_text=True)
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _sign_in(client: FlaskClient, username: str, password: str, ip: str = PUPIL_IP, **extra: str) -> Any:
    form = {
        "csrf": _csrf(client, ip=ip),
        "username": username,
        "password": password,
        "accept": "yes",
        **extra,
    }
    return client.post("/signin", data=form, environ_base=_env(ip))


def _link_key(url: str) -> str:
    engine = make_engine(url)
    with Session(engine) as session:
        key = get_setting(session, SETTING_LINK_KEY)
    engine.dispose()
    assert key
    return key


def _audit(url: str) -> list[AuditEvent]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
    engine.dispose()
    return rows


def test_sign_in_page_shows_aup_in_english_and_welsh(client: FlaskClient) -> None:
    page = client.get("/", environ_base=_env()).get_data(as_text=True)
    assert "School Wi-Fi Acceptable Use Policy" in page and 'id="aup-version">2026-09<' in page
    assert 'name="csrf"' in page and 'name="username"' in page and 'type="password"' in page
    welsh = client.get("/?lang=cy", environ_base=_env()).get_data(as_text=True)
    assert "Polisi Defnydd Derbyniol" in welsh and "Mewngofnodi" in welsh and 'lang="cy"' in welsh


def test_local_sign_in_records_session_acceptance_and_audit(client: FlaskClient, portal_db: str) -> None:
    response = _sign_in(client, "alice", "alice-pass-1")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    welcome = client.get("/", environ_base=_env()).get_data(as_text=True)
    assert "Alice Smith" in welcome and "signed in" in welcome
    engine = make_engine(portal_db)
    with Session(engine) as session:
        row = session.scalars(select(DeviceSession)).one()
        assert (row.username, row.ip, row.role, row.year_group, row.groups, row.aup_version) == (
            "alice",
            PUPIL_IP,
            "pupil",
            "Y9",
            ["9A", "art"],
            "2026-09",
        )
        acceptance = session.scalars(select(AupAcceptance)).one()
        assert acceptance.user_agent.startswith("Mozilla/5.0 (iPhone") and acceptance.ip == PUPIL_IP
    engine.dispose()
    events = _audit(portal_db)
    assert [(e.action, e.actor, e.subject) for e in events][-1] == ("portal.signin", "alice", PUPIL_IP)
    assert "alice-pass-1" not in repr([e.detail for e in events])


def test_bad_password_is_refused_and_audited(client: FlaskClient, portal_db: str) -> None:
    response = _sign_in(client, "alice", "not-her-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is True
    failed = [e for e in _audit(portal_db) if e.action == "portal.signin.failed"]
    assert failed and failed[0].actor == PUPIL_IP and failed[0].subject == "alice"
    assert "not-her-password" not in repr(failed[0].detail)


def test_signing_in_is_the_acceptance(client: FlaskClient, portal_db: str) -> None:
    page = client.get("/", environ_base=_env()).get_data(as_text=True)
    assert "By signing in you accept the Acceptable Use Policy above (version 2026-09)" in page
    assert "Accept the AUP and sign in" in page
    form = {"csrf": _csrf(client), "username": "alice", "password": "alice-pass-1"}  # no "accept" field
    assert client.post("/signin", data=form, environ_base=_env()).status_code == 303
    engine = make_engine(portal_db)
    with Session(engine) as session:
        assert session.scalars(select(AupAcceptance)).one().aup_version == "2026-09"
    engine.dispose()


def test_post_without_csrf_token_is_refused(client: FlaskClient, portal_db: str) -> None:
    form = {"username": "alice", "password": "alice-pass-1", "accept": "yes"}
    response = client.post("/signin", data=form, environ_base=_env())
    assert response.status_code == 400
    _csrf(client)
    response = client.post("/signin", data={**form, "csrf": "forged"}, environ_base=_env())
    assert response.status_code == 400
    other = create_app(PortalConfig(db_url=portal_db, arp_path=None)).test_client()  # token from elsewhere
    response = other.post("/signin", data={**form, "csrf": _csrf(client)}, environ_base=_env())
    assert response.status_code == 400
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is True
    assert any(e.action == "portal.csrf.refused" for e in _audit(portal_db))


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://user:pw@evil.example/",
    ],
)
def test_unsigned_continue_url_is_never_followed(client: FlaskClient, target: str) -> None:
    response = _sign_in(client, "alice", "alice-pass-1", next=target, sig="0" * 32)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    page = client.get("/", query_string={"next": target}, environ_base=_env()).get_data(as_text=True)
    assert "evil.example" not in page and "javascript:" not in page


def test_signed_continue_url_is_followed(client: FlaskClient, portal_db: str) -> None:
    target = "http://pages.test/homework?id=7&x=<y>"
    # a link signed for another device is worth nothing here
    other = sign_link(_link_key(portal_db), target, "10.20.0.250")
    page = client.get("/", query_string={"next": target, "sig": other}, environ_base=_env()).get_data(
        as_text=True
    )
    assert "pages.test" not in page
    sig = sign_link(_link_key(portal_db), target, PUPIL_IP)
    page = client.get("/", query_string={"next": target, "sig": sig}, environ_base=_env()).get_data(
        as_text=True
    )
    assert 'value="http://pages.test/homework?id=7&amp;x=&lt;y&gt;"' in page
    response = _sign_in(client, "alice", "alice-pass-1", next=target, sig=sig)
    assert response.status_code == 303 and unquote(response.headers["Location"]) == target
    tampered = _sign_in(client, "alice", "alice-pass-1", next=target + "&evil=1", sig=sig)
    assert tampered.headers["Location"] == "/"


def test_burst_of_sign_ins_from_one_address_is_refused(client: FlaskClient, portal_db: str) -> None:
    token = _csrf(client)
    codes = [
        client.post(
            "/signin",
            data={"csrf": token, "username": f"user{i}", "password": "x", "accept": "yes"},
            environ_base=_env(),
        ).status_code
        for i in range(30)
    ]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    # even the right password is refused during the burst
    assert _sign_in(client, "alice", "alice-pass-1").status_code == 429
    # another address is not affected
    assert _sign_in(client, "alice", "alice-pass-1", ip="10.20.0.99").status_code == 303
    assert any(e.action == "portal.signin.ratelimited" for e in _audit(portal_db))


def test_repeated_failures_lock_the_user_name_across_addresses(client: FlaskClient) -> None:
    for i in range(5):
        assert _sign_in(client, "bob", "guess", ip=f"10.30.0.{i}").status_code == 401
    response = _sign_in(client, "bob", "bob-pass-1", ip="10.30.0.50")
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert _sign_in(client, "alice", "alice-pass-1", ip="10.30.0.51").status_code == 303


def test_guesses_from_other_devices_never_lock_the_pupil_out_of_their_own(client: FlaskClient) -> None:
    assert _sign_in(client, "bob", "bob-pass-1", ip="10.30.1.1").status_code == 303  # bob's own phone
    for i in range(5):  # someone else types wrong passwords for bob on other devices
        assert _sign_in(client, "bob", "guess", ip=f"10.30.1.{10 + i}").status_code == 401
    assert _sign_in(client, "bob", "bob-pass-1", ip="10.30.1.1").status_code == 303  # still gets in
    assert _sign_in(client, "bob", "bob-pass-1", ip="10.30.1.99").status_code == 429  # a new device: no
    # per device: five wrong passwords on bob's own phone do lock that phone for bob
    for _ in range(5):
        _sign_in(client, "bob", "guess", ip="10.30.1.1")
    assert _sign_in(client, "bob", "bob-pass-1", ip="10.30.1.1").status_code == 429


def test_cookies_are_httponly_samesite_and_secure_over_https(client: FlaskClient) -> None:
    cookie = client.get("/", environ_base=_env()).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    cookie = client.get("/", base_url="https://portal.school.test", environ_base=_env()).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_security_headers(client: FlaskClient) -> None:
    headers = client.get("/", environ_base=_env()).headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_output_is_escaped(client: FlaskClient, aup_dir: Any) -> None:
    (aup_dir / "en.txt").write_text("Rules <script>alert(1)</script>\n\nBe <b>kind</b> & fair.\n")
    page = client.get("/", environ_base=_env()).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Be &lt;b&gt;kind&lt;/b&gt; &amp; fair." in page
    form = {
        "csrf": _csrf(client),
        "username": '"><img src=x onerror=alert(1)>',
        "password": "x",
        "accept": "yes",
    }
    page = client.post("/signin", data=form, environ_base=_env()).get_data(as_text=True)
    assert "<img src=x" not in page


def test_error_pages_are_generic(app: Flask, client: FlaskClient) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = client.get("/no/such/page", environ_base=_env())
    assert response.status_code == 404 and "Something went wrong" in response.get_data(as_text=True)
    response = client.get("/boom", environ_base=_env())
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in body and "secret internal detail" not in body and "RuntimeError" not in body
    assert client.get("/signin", environ_base=_env()).status_code == 405


def test_captive_api_rfc8908(client: FlaskClient) -> None:
    response = client.get("/api/captive", environ_base=_env())
    assert response.mimetype == "application/captive+json"
    assert response.get_json() == {"captive": True, "user-portal-url": "http://portal.school.test:8090/"}
    _sign_in(client, "alice", "alice-pass-1")
    body = client.get("/api/captive", environ_base=_env()).get_json()
    assert body["captive"] is False and 0 < body["seconds-remaining"] <= 2 * 3600
    for alias in ("/api/captive-portal", "/captive-portal/api", "/.well-known/captive-portal"):
        assert client.get(alias, environ_base=_env()).get_json()["captive"] is False


def test_ca_downloads_and_ios_profile(client: FlaskClient, portal_config: PortalConfig) -> None:
    page = client.get("/ca", environ_base=_env()).get_data(as_text=True)
    for section in ("ios", "android", "windows", "macos", "chromeos"):
        assert f'id="{section}"' in page
    assert 'id="trust"' in page and "https://mitm.it/netmon-trust-check" in page
    pem = client.get("/ca/netmon-ca.pem").data
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY" not in pem
    assert pem.strip() == portal_config.ca_cert.read_bytes().strip()
    assert client.get("/ca.pem").data == pem
    der = client.get("/ca/netmon-ca.crt")
    assert der.mimetype == "application/x-x509-ca-cert" and der.data[0] == 0x30
    profile = client.get("/ca/netmon.mobileconfig")
    assert profile.mimetype == "application/x-apple-aspen-config"
    plist = plistlib.loads(profile.data)
    payload = plist["PayloadContent"][0]
    assert payload["PayloadType"] == "com.apple.security.root" and payload["PayloadContent"] == der.data
    assert plist["PayloadOrganization"] == "Test School"


def test_certificate_steps_in_welsh(client: FlaskClient) -> None:
    page = client.get("/ca?lang=cy", environ_base=_env()).get_data(as_text=True)
    for section in ("ios", "android", "windows", "macos", "chromeos"):
        assert f'id="{section}"' in page
    assert "Lawrlwythwch y dystysgrif" in page and "Download the certificate" not in page
    english = client.get("/ca", environ_base=_env()).get_data(as_text=True)
    assert "Download the certificate" in english and "Lawrlwythwch" not in english


def test_ca_missing_is_explained(portal_db: str, tmp_path: Any) -> None:
    app = create_app(PortalConfig(db_url=portal_db, ca_cert=tmp_path / "none.pem", arp_path=None))
    client = app.test_client()
    assert "not available yet" in client.get("/ca").get_data(as_text=True)
    assert client.get("/ca/netmon-ca.pem").status_code == 404


def test_sign_out_and_sessions_cli(client: FlaskClient, portal_db: str) -> None:
    _sign_in(client, "alice", "alice-pass-1")
    _sign_in(client, "bob", "bob-pass-1", ip="10.20.0.7")
    runner = CliRunner()
    listing = runner.invoke(main, ["sessions", "--db", portal_db])
    assert listing.exit_code == 0, listing.output
    assert re.search(rf"{re.escape(PUPIL_IP)}\s+alice\s+pupil\s+Y9", listing.output)
    assert re.search(r"10\.20\.0\.7\s+bob\s+staff", listing.output)
    ended = runner.invoke(main, ["sessions", "end", "alice", "--db", portal_db])
    assert ended.exit_code == 0 and "ended 1 session" in ended.output
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is True
    ended = runner.invoke(main, ["sessions", "end", "10.20.0.7", "--db", portal_db])
    assert ended.exit_code == 0
    assert "no devices signed in" in runner.invoke(main, ["sessions", "--db", portal_db]).output
    assert runner.invoke(main, ["sessions", "end", "nobody", "--db", portal_db]).exit_code == 1
    # the device's own sign-out button
    _sign_in(client, "alice", "alice-pass-1")
    token = _csrf(client)
    assert client.post("/signout", data={"csrf": token}, environ_base=_env()).status_code == 200
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is True


def test_aup_change_requires_acceptance_again(client: FlaskClient, aup_dir: Any) -> None:
    _sign_in(client, "alice", "alice-pass-1")
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is False
    (aup_dir / "aup.yaml").write_text("version: '2027-01'\ndefault_language: en\n")
    assert client.get("/api/captive", environ_base=_env()).get_json()["captive"] is True
    page = client.get("/", environ_base=_env()).get_data(as_text=True)
    assert 'id="aup-version">2027-01<' in page


def test_pac_file_is_served_for_the_explicit_proxy_alternative(portal_db: str, tmp_path: Any) -> None:
    pac = tmp_path / "proxy.pac"
    pac.write_text('function FindProxyForURL(url, host) { return "PROXY 10.10.0.1:3128"; }\n')
    client = create_app(PortalConfig(db_url=portal_db, pac_file=pac, arp_path=None)).test_client()
    for path in ("/proxy.pac", "/wpad.dat"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/x-ns-proxy-autoconfig"
        assert b"PROXY 10.10.0.1:3128" in response.data
    missing = create_app(PortalConfig(db_url=portal_db, pac_file=tmp_path / "none.pac", arp_path=None))
    assert missing.test_client().get("/proxy.pac").status_code == 404


def test_portal_command_reports_a_bad_aup_in_one_line(portal_db: str, aup_dir: Any) -> None:
    (aup_dir / "aup.yaml").write_text("version: ''\n")
    result = CliRunner().invoke(main, ["portal", "--db", portal_db, "--aup", str(aup_dir), "--port", "1"])
    assert result.exit_code == 1
    assert "aup.yaml: version" in result.output and "Traceback" not in result.output


def test_device_address_from_the_proxy_is_believed_only_when_signed(
    client: FlaskClient, portal_db: str
) -> None:
    # through netmon's proxy: the proxy names the device, signed with the key shared through the store
    signed = sign_client_ip(_link_key(portal_db), "10.20.0.44")
    via_proxy = {**_env("127.0.0.1"), "HTTP_X_NETMON_CLIENT_IP": signed}
    token = _csrf(client, ip="127.0.0.1")
    form = {"csrf": token, "username": "alice", "password": "alice-pass-1"}
    assert client.post("/signin", data=form, environ_base=via_proxy).status_code == 303
    assert client.get("/api/captive", environ_base=_env("10.20.0.44")).get_json()["captive"] is False
    assert client.get("/api/captive", environ_base=_env("127.0.0.1")).get_json()["captive"] is True
    # a device cannot claim another's address
    forged = {**_env("10.20.0.45"), "HTTP_X_NETMON_CLIENT_IP": "10.20.0.46"}
    form = {"csrf": _csrf(client, ip="10.20.0.45"), "username": "bob", "password": "bob-pass-1"}
    assert client.post("/signin", data=form, environ_base=forged).status_code == 303
    assert client.get("/api/captive", environ_base=_env("10.20.0.46")).get_json()["captive"] is True
    assert client.get("/api/captive", environ_base=_env("10.20.0.45")).get_json()["captive"] is False
    # even from the gateway itself (another name for it, or a loopback hop): unsigned means not believed
    local_forged = {**_env("127.0.0.1"), "HTTP_X_NETMON_CLIENT_IP": "10.20.0.46"}
    assert client.get("/api/captive", environ_base=local_forged).get_json()["captive"] is True


def test_signed_in_pupil_cannot_see_or_sign_out_another_address(client: FlaskClient, portal_db: str) -> None:
    key = _link_key(portal_db)
    assert _sign_in(client, "alice", "alice-pass-1", ip="10.20.0.60").status_code == 303
    assert _sign_in(client, "bob", "bob-pass-1", ip="10.20.0.61").status_code == 303
    victim = {"REMOTE_ADDR": "10.20.0.61", "HTTP_X_NETMON_CLIENT_IP": "10.20.0.60"}  # bob claims alice's
    page = client.get("/", environ_base=victim).get_data(as_text=True)
    assert "Alice" not in page
    stale = sign_client_ip(key, "10.20.0.60", now=time.time() - 3600)  # an old signed header, replayed
    good = sign_client_ip(key, "10.20.0.60")
    tampered = good[:-1] + ("1" if good.endswith("0") else "0")  # its signature's last digit changed
    for header in ("10.20.0.60", stale, tampered, "10.20.0.60;1;x"):
        env = {**_env("10.20.0.61"), "HTTP_X_NETMON_CLIENT_IP": header}
        token = _csrf(client, ip="10.20.0.61")
        client.post("/signout", data={"csrf": token}, environ_base=env)
    assert client.get("/api/captive", environ_base=_env("10.20.0.60")).get_json()["captive"] is False
    assert client.get("/api/captive", environ_base=_env("10.20.0.61")).get_json()["captive"] is True


def test_trust_proxy_believes_forwarded_for_only_from_loopback(portal_db: str, aup_dir: Any) -> None:
    from netmon_portal.app import PortalConfig, create_app

    app = create_app(PortalConfig(db_url=portal_db, aup_dir=aup_dir, trust_proxy=True, arp_path=None))
    client = app.test_client()
    forged = {**_env("10.20.0.70"), "HTTP_X_FORWARDED_FOR": "10.20.0.71"}
    token = _csrf(client, ip="10.20.0.70")
    form = {"csrf": token, "username": "alice", "password": "alice-pass-1"}
    assert client.post("/signin", data=form, environ_base=forged).status_code == 303
    assert client.get("/api/captive", environ_base=_env("10.20.0.70")).get_json()["captive"] is False
    assert client.get("/api/captive", environ_base=_env("10.20.0.71")).get_json()["captive"] is True


def test_after_sign_in_the_welcome_page_leads_to_the_certificate_step_for_the_device(
    client: FlaskClient,
) -> None:
    assert _sign_in(client, "alice", "alice-pass-1").status_code == 303  # an iPhone (see _env)
    page = client.get("/", environ_base=_env()).get_data(as_text=True)
    if 'id="no-ca"' in page or "certificate-step" not in page:
        pytest.skip("no CA certificate in this test configuration")
    assert 'id="certificate-step"' in page
    assert '<details id="ios" class="os" open>' in page  # the device's own OS first, open
    assert '<details id="android" class="os">' in page  # the others folded
    assert "ca.mobileconfig" in page or "netmon.mobileconfig" in page
