"""`netmon doctor` checks and `netmon status` against real files, sockets, a real SQLite store and a real
SMTP server (aiosmtpd). The firewall checks against a live kernel run in tests/gateway/test_netns.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from netmon.ops import counters, doctor
from netmon.ops.doctor import FAIL, OK, WARN, Settings
from netmon.store.db import upgrade

REPO = Path(__file__).resolve().parents[2]

RULES = """table inet netmon {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname != "pupil0" return
		fib daddr type local counter packets 3 bytes 180 return
		tcp dport { 80, 443 } counter packets 12 bytes 720 redirect to :8080 comment "netmon"
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname != "pupil0" return
		udp dport 443 counter packets 0 bytes 0 reject
	}
}
"""


def netmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netmon", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def sysctl_tree(root: Path, values: dict[str, str]) -> Path:
    for name, value in values.items():
        path = root / name.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


GOOD_SYSCTL = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv4.conf.all.send_redirects": "0",
}


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({}, OK, "forwarding on"),
        ({"net.ipv4.ip_forward": "0"}, FAIL, "IPv4 forwarding is off"),
        ({"net.ipv4.conf.all.send_redirects": "1"}, FAIL, "ICMP redirects are on"),
        ({"net.ipv6.conf.all.forwarding": "0"}, WARN, "IPv6 forwarding off"),
    ],
)
def test_forwarding(tmp_path: Path, changes: dict[str, str], status: str, words: str) -> None:
    s = Settings(sysctl_root=sysctl_tree(tmp_path, {**GOOD_SYSCTL, **changes}))
    check = doctor.check_forwarding(s)
    assert check.status == status
    assert words in check.message
    if status != OK:
        assert "99-netmon.conf" in check.fix


@pytest.mark.parametrize(
    ("interface", "port", "rules", "status", "words"),
    [
        ("pupil0", 8080, RULES, OK, "12 connections redirected so far, 0 QUIC packets refused"),
        ("wlan0", 8080, RULES, FAIL, "the pupils' interface is 'wlan0'"),
        ("pupil0", 3128, RULES, FAIL, "redirected to port 8080 but the proxy listens on 3128"),
        ("pupil0", 8080, RULES.replace("udp dport 443", "udp dport 9999"), FAIL, "QUIC"),
        (None, 8080, RULES, FAIL, "interface is unknown"),
    ],
)
def test_rules_match_the_configured_interface_and_port(
    tmp_path: Path, interface: str | None, port: int, rules: str, status: str, words: str
) -> None:
    s = Settings(interface=interface, proxy_port=port, sysctl_root=tmp_path)  # not /proc: no /sys lookup
    check = doctor.check_rules(s, ruleset=lambda: (rules, ""))
    assert check.status == status, check
    assert words in check.message


def test_rules_not_loaded(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("as non-root the doctor only warns that it cannot read the rules")
    check = doctor.check_rules(
        Settings(interface="pupil0", sysctl_root=tmp_path),
        ruleset=lambda: (None, "No such file or directory"),
    )
    assert check.status == FAIL
    assert "netmon-firewall" in check.fix


def test_nft_vars_give_the_interface(tmp_path: Path) -> None:
    vars_file = tmp_path / "netmon-vars.nft"
    shipped = (REPO / "deploy/nftables/netmon-vars.nft").read_text()
    vars_file.write_text(shipped.replace('"wlan0"', '"br-pupils"'))
    s = doctor.settings_from(None, nft_vars=vars_file)
    assert s.interface == "br-pupils"


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_proxy_and_portal_listening(tmp_path: Path) -> None:
    sock, port = _listener()
    with sock:
        counters.write_status(tmp_path / "status.json", {"mode": ["transparent"]})
        s = Settings(proxy_port=port, portal_port=port, state_dir=tmp_path)
        assert doctor.check_proxy(s).status == OK
        assert doctor.check_portal(s).status == OK
    closed = doctor.check_proxy(s)
    assert closed.status == FAIL and "nothing listens" in closed.message
    assert "journalctl -u netmon-proxy" in closed.fix
    assert doctor.check_portal(s).status == FAIL


def _make_ca(confdir: Path) -> None:
    from tests.gateway.certs import make_site_ca

    ca, _, _ = make_site_ca(confdir, ["x.example"], [])
    key = confdir / "site-key.pem"
    (confdir / "mitmproxy-ca.pem").write_bytes(key.read_bytes() + ca.read_bytes())
    (confdir / "mitmproxy-ca-cert.pem").write_bytes(ca.read_bytes())


def test_ca_present_with_safe_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    confdir = tmp_path / "conf"
    confdir.mkdir(mode=0o700)
    missing = doctor.check_ca(Settings(confdir=confdir))
    assert missing.status == FAIL and "missing" in missing.message
    _make_ca(confdir)
    key = confdir / "mitmproxy-ca.pem"
    key.chmod(0o644)
    loose = doctor.check_ca(Settings(confdir=confdir))
    assert loose.status == FAIL
    assert loose.fix == f"chmod 600 {key}"
    key.chmod(0o600)
    good = doctor.check_ca(Settings(confdir=confdir))
    assert good.status == OK and "valid for" in good.message
    # a month before the CA expires the doctor warns
    import types

    from cryptography import x509

    from netmon.ops.doctor import services

    ca = x509.load_pem_x509_certificate((confdir / "mitmproxy-ca-cert.pem").read_bytes())
    soon = ca.not_valid_after_utc.timestamp() - 30 * 86400
    monkeypatch.setattr(services, "time", types.SimpleNamespace(time=lambda: soon))
    warned = doctor.check_ca(Settings(confdir=confdir))
    assert warned.status == WARN and "expires in 30 days" in warned.message


def test_database_writable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'netmon.db'}"
    empty = doctor.check_database(Settings(db_url=url))
    assert empty.status == FAIL and empty.fix.startswith("netmon db upgrade")
    upgrade(url)
    assert doctor.check_database(Settings(db_url=url)).status == OK
    (tmp_path / "netmon.db").chmod(0o444)
    if os.geteuid() != 0:  # root writes through file modes
        assert doctor.check_database(Settings(db_url=url)).status == FAIL


@pytest.fixture
def smtp_server() -> Iterator[Controller]:
    sock, port = _listener()
    sock.close()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def test_smtp_reachable(smtp_server: Controller) -> None:
    port = smtp_server.port
    ok = doctor.check_smtp(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"))
    assert ok.status == OK, ok
    sock, dead = _listener()
    sock.close()
    down = doctor.check_smtp(Settings(smtp_host="127.0.0.1", smtp_port=dead, smtp_tls="none"))
    assert down.status == FAIL and "cannot reach the mail server" in down.message
    assert doctor.check_smtp(Settings(smtp_host="")).status == WARN


def test_emudhra_options_fail(tmp_path: Path) -> None:
    config = tmp_path / "mitm_config.yaml"
    config.write_text("listen_port: 8080\nemudhra_old: true\n")
    check = doctor.check_forbidden_options(doctor.settings_from(config, state_dir=tmp_path))
    assert check.status == FAIL
    assert "emudhra_old" in check.message and "third-party key" in check.message
    config.write_text("listen_port: 8080\nemudhra: false\n")
    assert doctor.check_forbidden_options(doctor.settings_from(config, state_dir=tmp_path)).status == OK


def test_emudhra_on_the_running_proxys_command_line_fails(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--set", "emudhra"])
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        for _ in range(100):  # wait until the child has exec'd
            if b"emudhra" in cmdline.read_bytes():
                break
            time.sleep(0.02)
        (tmp_path / "status.json").write_text(json.dumps({"pid": proc.pid, "updated": 0, "counters": {}}))
        check = doctor.check_forbidden_options(Settings(state_dir=tmp_path))
        assert check.status == FAIL and "running proxy's command line" in check.message
    finally:
        proc.kill()
        proc.wait()


def test_doctor_command_reports_and_exits_1_on_failure(tmp_path: Path) -> None:
    config = tmp_path / "mitm_config.yaml"
    config.write_text("listen_port: 1\nemudhra: true\n")
    result = netmon(
        "doctor",
        "--config",
        str(config),
        "--state-dir",
        str(tmp_path),
        "--confdir",
        str(tmp_path / "conf"),
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "--json",
        env={"NETMON_SMTP_HOST": ""},
    )
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["interception-ca"]["status"] == FAIL
    assert checks["proxy"]["status"] == FAIL
    assert checks["ca"]["status"] == FAIL
    assert all(c["fix"] for c in checks.values() if c["status"] == FAIL)
    text = netmon("doctor", "--config", str(config), "--state-dir", str(tmp_path))
    assert "FAIL" in text.stdout and "fix:" in text.stdout
    assert "check(s) failed" in text.stderr


def test_status_command(tmp_path: Path) -> None:
    missing = netmon("status", "--state-dir", str(tmp_path))
    assert missing.returncode == 1 and "no status" in missing.stderr
    (tmp_path / "status.json").write_text(
        json.dumps(
            {
                "pid": 1,
                "updated": 0,
                "mode": ["transparent"],
                "listen_port": 8080,
                "counters": {
                    "tls.decrypted": 41,
                    "tls.passthrough": 7,
                    "tls.passthrough.no-decrypt": 5,
                    "tls.passthrough.refused-before": 2,
                    "tls.refused": 2,
                    "scan.skipped.body-cap": 3,
                },
            }
        )
    )
    result = netmon("status", "--state-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for label, value in (
        ("decrypted", "41"),
        ("passthrough", "7"),
        ("refused", "2"),
        ("scan.skipped.body-cap", "3"),
    ):
        assert any(line.split()[:2] == [label, value] for line in lines), (label, result.stdout)
    as_json = json.loads(netmon("status", "--state-dir", str(tmp_path), "--json").stdout)
    assert as_json["counters"]["tls.decrypted"] == 41


def test_env_file_supplies_smtp_settings(tmp_path: Path, smtp_server: Controller) -> None:
    env = tmp_path / "netmon.env"
    env.write_text(
        "# secrets\nNETMON_SMTP_HOST=127.0.0.1\n"
        f"NETMON_SMTP_PORT=\"{smtp_server.port}\"\nNETMON_SMTP_TLS=none\nNETMON_SITE='Main site'\n"
    )
    assert doctor.read_env_file(env)["NETMON_SITE"] == "Main site"
    result = netmon(
        "doctor",
        "--env-file",
        str(env),
        "--state-dir",
        str(tmp_path),
        "--json",
        env={"NETMON_SMTP_HOST": "", "NETMON_SMTP_PORT": "", "NETMON_SMTP_TLS": ""},
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["smtp"]["status"] == OK, checks["smtp"]


@pytest.mark.parametrize(
    "env",
    [
        {"NETMON_SMTP_HOST": "mail.school.example"},
        {"NETMON_SMTP_HOST": "mail.school.example", "NETMON_SMTP_TLS": "starttls"},
        {"NETMON_SMTP_HOST": "mail.school.example", "NETMON_SMTP_TLS": "ssl"},
        {"NETMON_SMTP_HOST": "mail.school.example", "NETMON_SMTP_TLS": "none", "NETMON_SMTP_PORT": "2525"},
        {"NETMON_SMTP_HOST": "mail.school.example", "NETMON_SMTP_TLS": "STARTTLS", "NETMON_SMTP_PORT": "26"},
    ],
)
def test_sender_and_doctor_agree_on_smtp(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from netmon.alerts.mail import SmtpSettings

    for name in [n for n in os.environ if n.startswith("NETMON_SMTP_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sender = SmtpSettings.from_env(os.environ).client_kwargs()
    s = doctor.settings_from(None, nft_vars=Path("/nonexistent"))
    assert (s.smtp_host, s.smtp_port) == (sender["hostname"], sender["port"])
    assert s.smtp_tls == ("ssl" if sender["use_tls"] else "starttls" if sender["start_tls"] else "none")


def test_documented_smtp_defaults() -> None:
    from netmon.config.settings import SETTINGS, SmtpSettings

    assert SmtpSettings.from_env({"NETMON_SMTP_HOST": "m"}).port == 25  # TLS none unless set
    assert {s.name for s in SETTINGS} >= {"NETMON_SMTP_HOST", "NETMON_SMTP_PORT", "NETMON_SMTP_TLS"}
    assert all(s.description and "\n" not in s.description for s in SETTINGS)


def test_doctor_names_a_bad_smtp_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_SMTP_HOST", "m")
    monkeypatch.setenv("NETMON_SMTP_PORT", "70000")
    check = doctor.check_smtp(doctor.settings_from(None, nft_vars=Path("/nonexistent")))
    assert check.status == FAIL and check.message.startswith("NETMON_SMTP_PORT: must be 1-65535")


WORKER_RULES = """table inet netmon {
	map proxy_workers {
		typeof numgen inc mod 16 : tcp dport
		flags interval
		elements = { 0-7 : 8080, 8-15 : 8081 }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname != "pupil0" return
		meta nfproto ipv4 tcp dport { 80, 443 } counter packets 4 bytes 240 REDIRECT
	}
	chain forward {
		udp dport 443 counter packets 0 bytes 0 reject
	}
}
""".replace("REDIRECT", "redirect to :jhash ip saddr mod 16 map @proxy_workers")


@pytest.mark.parametrize(("port", "status"), [(8080, OK), (8081, OK), (9000, FAIL)])
def test_rules_with_proxy_workers(tmp_path: Path, port: int, status: str) -> None:
    s = Settings(interface="pupil0", proxy_port=port, sysctl_root=tmp_path)
    check = doctor.check_rules(s, ruleset=lambda: (WORKER_RULES, ""))
    assert check.status == status, check


def test_a_portal_listening_only_on_the_pupil_side_address_is_fine(tmp_path: Path) -> None:
    """The portal often listens on the gateway's pupil-side address, not on loopback."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))  # stands in for the pupil-side address: not 127.0.0.1
    sock.listen()
    port = sock.getsockname()[1]
    with sock:
        alone = doctor.check_portal(Settings(portal_port=port, state_dir=tmp_path))
        assert alone.status == FAIL  # loopback only: nothing there
        config = tmp_path / "mitm.yaml"
        config.write_text(f"netmon_portal_url: http://127.0.0.2:{port}/\n")
        s = doctor.settings_from(config, nft_vars=tmp_path / "none.nft")
        s.portal_port = port
        check = doctor.check_portal(s)
        assert check.status == OK and "127.0.0.2" in check.message, check
