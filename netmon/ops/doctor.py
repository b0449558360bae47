"""``netmon doctor``: check a running gateway and say what is wrong and how to fix it.

Each check returns a :class:`Check` (``ok``, ``warn`` or ``fail``, a message and a fix). Checks read the
system (``/proc/sys``, ``nft``, sockets, files) and netmon's own configuration; none changes anything
(the database check writes inside a transaction that it rolls back).

Why one module: every check reads the same :class:`Settings` and returns the same :class:`Check`, and
``netmon doctor`` runs them as one list in one order; each check is a short function that changes only
when the part of the gateway it looks at changes. (The files it reads live in
:mod:`netmon.config.gateway`, the environment in :mod:`netmon.config.settings`.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmon.config import paths
from netmon.config.gateway import read_env_file as read_env_file
from netmon.config.gateway import read_nft_vars, read_options
from netmon.config.settings import DEFAULT_TLS, SmtpSettings
from netmon.config.settings import Settings as Environment
from netmon.errors import ConfigError
from netmon.ops import counters

OK, WARN, FAIL = "ok", "warn", "fail"
#: mitmproxy options that sign with a publicly trusted third-party key: never to be enabled.
FORBIDDEN_OPTIONS = ("emudhra", "emudhra_old")
DEFAULT_NFT_VARS = Path("/etc/netmon/netmon-vars.nft")
DEFAULT_PORTAL_PORT = 8090
STATUS_STALE_SECONDS = 30.0
ROTATION = "see 'CA rotation' in deploy/README.md"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str
    fix: str = ""


@dataclass
class Settings:
    """What the doctor checks against: the proxy's options plus the gateway's site values."""

    config_path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    interface: str | None = None
    proxy_port: int = 8080
    proxy_host: str = "127.0.0.1"
    portal_port: int = DEFAULT_PORTAL_PORT
    portal_host: str = "127.0.0.1"
    db_url: str = ""
    state_dir: Path = field(default_factory=paths.state_dir)
    confdir: Path = field(default_factory=lambda: Path("~/.mitmproxy").expanduser())
    library: Path = paths.DEFAULT_LIBRARY_DIR
    library_overlay: Path | None = None
    policy: Path = paths.DEFAULT_POLICY_DIR
    no_decrypt_file: Path | None = paths.DEFAULT_POLICY_DIR / "no-decrypt.txt"
    smtp_host: str = ""  # empty: NETMON_SMTP_HOST is not set
    smtp_port: int = 0
    smtp_tls: str = DEFAULT_TLS
    smtp: SmtpSettings | None = None  # as the alert sender reads it (netmon.config.settings)
    smtp_error: str = ""  # an invalid NETMON_SMTP_* variable
    sysctl_root: Path = Path("/proc/sys")
    mode: tuple[str, ...] = ("regular",)


# -- configuration ------------------------------------------------------------------------------------


def settings_from(config_path: Path | None, *, nft_vars: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the config file, netmon-vars.nft and the environment; ``overrides`` win when given."""
    s = Settings(config_path=config_path)
    if config_path is not None and config_path.exists():
        s.options = read_options(config_path)
    o = s.options
    s.proxy_port = int(o.get("listen_port", 8080))
    s.proxy_host = str(o.get("listen_host", "127.0.0.1") or "127.0.0.1")
    if s.proxy_host in ("0.0.0.0", "::"):  # noqa: S104 - a listen address, not a bind
        s.proxy_host = "127.0.0.1"
    mode = o.get("mode", ["regular"])
    s.mode = tuple(mode if isinstance(mode, list) else [mode])
    s.db_url = os.environ.get("NETMON_DB") or str(o.get("netmon_db") or "")
    if o.get("netmon_state_dir"):
        s.state_dir = Path(o["netmon_state_dir"])
    if not s.db_url:
        s.db_url = f"sqlite:///{s.state_dir / 'netmon.db'}"
    if o.get("confdir"):
        s.confdir = Path(str(o["confdir"])).expanduser()
    if o.get("netmon_library"):
        s.library = Path(o["netmon_library"])
    if o.get("netmon_library_overlay"):
        s.library_overlay = Path(o["netmon_library_overlay"])
    if o.get("netmon_policy"):
        s.policy = Path(o["netmon_policy"])
    if "netmon_no_decrypt_file" in o:
        s.no_decrypt_file = Path(o["netmon_no_decrypt_file"]) if o["netmon_no_decrypt_file"] else None
    vars_path = nft_vars or DEFAULT_NFT_VARS
    if vars_path.exists():
        values = read_nft_vars(vars_path)
        s.interface = values.get("PUPIL_IF")
    _apply_environment(s, os.environ)
    for key, value in overrides.items():
        if value is not None:
            setattr(s, key, value)
    return s


def _apply_environment(s: Settings, env: Mapping[str, str]) -> None:
    """The ``NETMON_*`` settings, read exactly as the proxy and the alert sender read them."""
    try:
        smtp = SmtpSettings.from_env(env)
    except ConfigError as exc:
        s.smtp_error = str(exc)
    else:
        s.smtp = smtp
        s.smtp_host = smtp.host if smtp.configured else ""
        s.smtp_port, s.smtp_tls = smtp.port, smtp.tls
    try:
        environment = Environment.from_env({k: v for k, v in env.items() if not k.startswith("NETMON_SMTP_")})
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    s.interface = environment.pupil_if or s.interface
    s.portal_port = environment.portal_port


# -- checks -------------------------------------------------------------------------------------------


def _read_sysctl(root: Path, name: str) -> str | None:
    try:
        return (root / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def check_forwarding(s: Settings) -> Check:
    fix = "install deploy/sysctl/99-netmon.conf as /etc/sysctl.d/99-netmon.conf and run 'sysctl --system'"
    values = {
        name: _read_sysctl(s.sysctl_root, name)
        for name in (
            "net.ipv4.ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.conf.all.send_redirects",
        )
    }
    if values["net.ipv4.ip_forward"] != "1":
        return Check(
            "forwarding",
            FAIL,
            "IPv4 forwarding is off: pupils' devices cannot reach the internet through the gateway",
            fix,
        )
    if values["net.ipv4.conf.all.send_redirects"] not in ("0", None):
        return Check(
            "forwarding",
            FAIL,
            "ICMP redirects are on: devices may be told to route around the gateway (and the proxy)",
            fix,
        )
    if values["net.ipv6.conf.all.forwarding"] != "1":
        return Check(
            "forwarding",
            WARN,
            "IPv4 forwarding on, IPv6 forwarding off (IPv6 is not routed: no "
            "bypass, but dual-stack devices fall back to IPv4)",
            fix,
        )
    return Check("forwarding", OK, "IPv4 and IPv6 forwarding on, ICMP redirects off")


def nft_ruleset(table: str = "netmon") -> tuple[str | None, str]:
    """(text of ``nft list table inet <table>``, error)."""
    if shutil.which("nft") is None:
        return None, "the nft command is missing (apt-get install nftables)"
    result = subprocess.run(
        ["nft", "list", "table", "inet", table], capture_output=True, text=True, timeout=10
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return None, lines[0] if lines else f"nft exited with {result.returncode}"
    return result.stdout, ""


def check_rules(s: Settings, ruleset: Callable[[], tuple[str | None, str]] = nft_ruleset) -> Check:
    fix_load = "systemctl enable --now netmon-firewall (loads /etc/netmon/netmon.nft; see deploy/README.md)"
    text, error = ruleset()
    if text is None:
        if "Operation not permitted" in error or os.geteuid() != 0:
            return Check(
                "rules", WARN, f"cannot read the firewall rules ({error})", "run netmon doctor as root"
            )
        return Check("rules", FAIL, f"the netmon nftables table is not loaded ({error})", fix_load)
    problems: list[str] = []
    if s.interface:
        if not Path(f"/sys/class/net/{s.interface}").exists() and s.sysctl_root == Path("/proc/sys"):
            problems.append(f"the pupil interface {s.interface!r} does not exist on this box")
        if f'iifname != "{s.interface}"' not in text:
            found = re.findall(r'iifname != "([^"]+)"', text)
            problems.append(
                f"the rules are for interface {sorted(set(found))} but the pupils' interface is "
                f"{s.interface!r}"
            )
    else:
        problems.append(
            "the pupils' interface is unknown (set PUPIL_IF in /etc/netmon/netmon-vars.nft or "
            "NETMON_PUPIL_IF)"
        )
    redirect = re.search(r"tcp dport \{ 80, 443 \}.*redirect to :(\d+)", text)
    if redirect is None:
        problems.append("no redirect of TCP 80/443 to the proxy")
    elif int(redirect.group(1)) != s.proxy_port:
        problems.append(
            f"web traffic is redirected to port {redirect.group(1)} but the proxy listens on {s.proxy_port}"
        )
    if not re.search(r"udp dport 443 .*reject", text):
        problems.append("UDP 443 (QUIC) is not rejected: browsers could use HTTP/3 and bypass inspection")
    if problems:
        return Check(
            "rules",
            FAIL,
            "; ".join(problems),
            "edit /etc/netmon/netmon-vars.nft (PUPIL_IF, PROXY_PORT), then systemctl reload netmon-firewall",
        )
    hits = re.search(r"counter packets (\d+) bytes \d+ redirect", text)
    quic = re.search(r"udp dport 443 counter packets (\d+) bytes \d+ reject", text)
    seen = f", {hits.group(1)} connections redirected so far" if hits else ""
    seen += f", {quic.group(1)} QUIC packets refused" if quic else ""
    return Check(
        "rules",
        OK,
        f"netmon table loaded for {s.interface}: TCP 80/443 -> :{s.proxy_port}, UDP 443 rejected{seen}",
    )


def _listening(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts TCP connections on host:port, else the error."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def check_proxy(s: Settings) -> Check:
    error = _listening(s.proxy_host, s.proxy_port)
    if error:
        return Check(
            "proxy",
            FAIL,
            f"nothing listens on {s.proxy_host}:{s.proxy_port} ({error})",
            "systemctl status netmon-proxy; journalctl -u netmon-proxy -e",
        )
    status = counters.read_status(s.state_dir / "status.json")
    if status is None:
        return Check(
            "proxy",
            WARN,
            f"listening on {s.proxy_port}, but {s.state_dir / 'status.json'} is missing",
            "check netmon_state_dir in the config and the service user's permissions",
        )
    age = time.time() - float(status.get("updated", 0))  # type: ignore[arg-type]
    if status.get("stopped") or age > STATUS_STALE_SECONDS:
        return Check(
            "proxy",
            WARN,
            f"listening on {s.proxy_port}, but its status is {age:.0f} s old "
            "(another program on that port, or the proxy is stuck)",
            "systemctl restart netmon-proxy",
        )
    modes = ", ".join(status.get("mode") or [])  # type: ignore[arg-type]
    return Check("proxy", OK, f"listening on {s.proxy_port} (pid {status.get('pid')}, mode {modes})")


def check_portal(s: Settings) -> Check:
    error = _listening(s.portal_host, s.portal_port)
    if error:
        return Check(
            "portal",
            FAIL,
            f"the captive portal does not answer on {s.portal_host}:{s.portal_port} ({error})",
            "systemctl status netmon-portal; journalctl -u netmon-portal -e",
        )
    return Check("portal", OK, f"listening on {s.portal_port}")


def check_ca(s: Settings) -> Check:
    key_file = s.confdir / "mitmproxy-ca.pem"
    cert_file = s.confdir / "mitmproxy-ca-cert.pem"
    if not key_file.exists():
        return Check(
            "ca",
            FAIL,
            f"no CA in {s.confdir} (mitmproxy-ca.pem missing)",
            "start netmon-proxy once to create the school's CA, or install yours: see 'CA rotation' "
            "in deploy/README.md",
        )
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        return Check(
            "ca",
            FAIL,
            f"{key_file} holds the CA's private key but is readable by others (mode {mode:o})",
            f"chmod 600 {key_file}",
        )
    dir_mode = stat.S_IMODE(s.confdir.stat().st_mode)
    if dir_mode & 0o002:
        return Check(
            "ca", FAIL, f"{s.confdir} is world-writable (mode {dir_mode:o})", f"chmod 700 {s.confdir}"
        )
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate((cert_file if cert_file.exists() else key_file).read_bytes())
    except (OSError, ValueError) as exc:
        return Check("ca", FAIL, f"cannot read the CA certificate: {exc}", ROTATION)
    days = (cert.not_valid_after_utc.timestamp() - time.time()) / 86400
    if days < 0:
        return Check("ca", FAIL, "the school's CA certificate has expired", ROTATION)
    if days < 90:
        return Check(
            "ca",
            WARN,
            f"the school's CA certificate expires in {days:.0f} days",
            "plan a CA rotation (deploy/README.md) before devices start failing",
        )
    return Check("ca", OK, f"{key_file} private (mode {mode:o}), valid for {days:.0f} more days")


def check_database(s: Settings) -> Check:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from netmon.errors import StoreError
    from netmon.store.db import make_engine

    try:
        shown = make_url(s.db_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any parse failure is reported as such
        return Check("database", FAIL, f"invalid database URL {s.db_url!r}", "fix netmon_db / NETMON_DB")
    try:
        engine = make_engine(s.db_url)
    except StoreError as exc:
        return Check("database", FAIL, str(exc), "fix netmon_db / NETMON_DB")
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                conn.execute(
                    text(
                        "INSERT INTO audit_events (time, action, actor, subject, detail) "
                        "VALUES (CURRENT_TIMESTAMP, 'doctor.write-test', 'doctor', NULL, '{}')"
                    )
                )
            finally:
                trans.rollback()
    except SQLAlchemyError as exc:
        reason = str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0]
        fix = (
            "netmon db upgrade --db URL"
            if "no such table" in reason or "does not exist" in reason
            else "check the database server, the URL and the service user's permissions"
        )
        return Check("database", FAIL, f"{shown}: not writable ({reason})", fix)
    finally:
        engine.dispose()
    return Check("database", OK, f"{shown} writable")


def check_smtp(s: Settings) -> Check:
    if s.smtp_error:
        return Check("smtp", FAIL, s.smtp_error, "fix that variable in /etc/netmon/netmon.env")
    if not s.smtp_host:
        return Check(
            "smtp",
            WARN,
            "NETMON_SMTP_HOST is not set: alerts stay in the outbox, unmailed",
            "set NETMON_SMTP_HOST (and port, user, password) in /etc/netmon/netmon.env",
        )
    context = (s.smtp.tls_context() if s.smtp else None) or ssl.create_default_context()
    try:
        if s.smtp_tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=5, context=context)
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=5)
        with client:
            if s.smtp_tls == "starttls":
                client.starttls(context=context)
            code, _ = client.noop()
    except (OSError, smtplib.SMTPException) as exc:
        return Check(
            "smtp",
            FAIL,
            f"cannot reach the mail server {s.smtp_host}:{s.smtp_port} ({exc})",
            "check NETMON_SMTP_HOST/NETMON_SMTP_PORT/NETMON_SMTP_TLS and the firewall to it",
        )
    if code != 250:
        return Check("smtp", WARN, f"{s.smtp_host}:{s.smtp_port} answered NOOP with {code}")
    return Check("smtp", OK, f"{s.smtp_host}:{s.smtp_port} answers")


def check_library(s: Settings) -> Check:
    from netmon.errors import ConfigError

    try:
        from netmon.scan.library import load_library
    except ImportError as exc:
        return Check("library", WARN, f"library loader not available ({exc})")
    try:
        load_library(s.library, s.library_overlay)
    except ConfigError as exc:
        return Check("library", FAIL, str(exc), "fix that line, then: netmon library check")
    return Check(
        "library",
        OK,
        f"{s.library} valid" + (f" (+ overlay {s.library_overlay})" if s.library_overlay else ""),
    )


def check_policy(s: Settings) -> Check:
    from netmon.errors import ConfigError
    from netmon.identity.passthrough import NoDecryptList

    try:
        from netmon.config.policy import load_policy
    except ImportError as exc:
        return Check("policy", WARN, f"policy loader not available ({exc})")
    try:
        load_policy(s.policy)
        extra = s.options.get("netmon_no_decrypt") or []
        NoDecryptList.build(
            [s.no_decrypt_file] if s.no_decrypt_file else [], extra if isinstance(extra, list) else [extra]
        )
    except ConfigError as exc:
        return Check("policy", FAIL, str(exc), "fix it, then: netmon policy check")
    return Check("policy", OK, f"{s.policy} valid")


def _proxy_command_line(s: Settings) -> str:
    status = counters.read_status(s.state_dir / "status.json") or {}
    pid = status.get("pid")
    if not isinstance(pid, int):
        return ""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def check_forbidden_options(s: Settings) -> Check:
    where = str(s.config_path) if s.config_path else "the config"
    enabled = [f"{name} (in {where})" for name in FORBIDDEN_OPTIONS if s.options.get(name)]
    cmdline = _proxy_command_line(s)
    enabled += [
        f"{name} (on the running proxy's command line)"
        for name in FORBIDDEN_OPTIONS
        if re.search(rf"\b{name}(?:=(?!false\b|0\b)\S*|(?=\s|$))", cmdline)
    ]
    if enabled:
        return Check(
            "interception-ca",
            FAIL,
            f"{', '.join(enabled)} enabled: that signs with a "
            "publicly trusted third-party key and intercepts devices that never consented",
            "remove the option (netmon never needs it) and restart netmon-proxy",
        )
    return Check("interception-ca", OK, "only the school's own CA signs (emudhra, emudhra_old off)")


def check_counters(s: Settings) -> Check:
    status = counters.read_status(s.state_dir / "status.json")
    if status is None:
        return Check("counters", WARN, f"no status file in {s.state_dir}", "is netmon-proxy running?")
    c = status.get("counters") or {}
    assert isinstance(c, dict)
    line = ", ".join(f"{label} {c.get(key, 0)}" for label, key in TLS_COUNTERS)
    refused, decrypted = int(c.get("tls.refused", 0)), int(c.get("tls.decrypted", 0))
    if refused > 20 and refused > decrypted:
        return Check(
            "counters",
            WARN,
            f"{line}: most devices refuse the school's certificate",
            "check that pupils are shown the CA install steps after sign-in",
        )
    return Check("counters", OK, line)


TLS_COUNTERS = (
    ("decrypted", "tls.decrypted"),
    ("passthrough", "tls.passthrough"),
    ("refused", "tls.refused"),
)

ALL_CHECKS: tuple[Callable[[Settings], Check], ...] = (
    check_forwarding,
    check_rules,
    check_proxy,
    check_portal,
    check_ca,
    check_database,
    check_smtp,
    check_library,
    check_policy,
    check_forbidden_options,
    check_counters,
)


def run_checks(s: Settings, checks: Iterable[Callable[[Settings], Check]] = ALL_CHECKS) -> list[Check]:
    results = []
    for check in checks:
        try:
            results.append(check(s))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, FAIL, f"the check itself failed: {exc.__class__.__name__}: {exc}"))
    return results


def as_json(results: Iterable[Check]) -> str:
    return json.dumps(
        [{"name": c.name, "status": c.status, "message": c.message, "fix": c.fix} for c in results], indent=1
    )
