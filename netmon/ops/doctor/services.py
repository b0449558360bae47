"""Doctor checks of netmon's own parts: the CA, the store, SMTP, the library, the policy, forbidden
mitmproxy options and the proxy's counters."""

from __future__ import annotations

import re
import smtplib
import ssl
import stat
import time
from pathlib import Path

from netmon.config.gateway import read_env_file as read_env_file
from netmon.errors import ConfigError
from netmon.ops import counters
from netmon.ops.doctor.base import (
    FAIL,
    FORBIDDEN_OPTIONS,
    OK,
    ROTATION,
    WARN,
    Check,
    Settings,
)


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
    wrong = status.get("problems") or {}
    if isinstance(wrong, dict) and wrong and not status.get("stopped"):
        return Check(
            "counters",
            FAIL,
            "; ".join(f"{part}: {message}" for part, message in sorted(wrong.items())),
            "netmon status; check the database (disk space, permissions, the server), then the proxy log",
        )
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
