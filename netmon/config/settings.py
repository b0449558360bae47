"""The settings netmon takes from the environment: read once per process into one frozen object.

``Settings.from_env(os.environ)`` reads every ``NETMON_*`` variable below and raises
:class:`~netmon.errors.ConfigError` naming the variable when a value is invalid
(``NETMON_SMTP_PORT: must be 1-65535 (got 70000)``). :data:`SETTINGS` lists each variable with its
default and a one-line description; the reference page (docs/reference.md) is generated from it.

SMTP defaults: ``NETMON_SMTP_TLS`` is ``none`` unless set, and the port follows the TLS mode unless
``NETMON_SMTP_PORT`` is set: 25 for ``none``, 587 for ``starttls``, 465 for ``ssl``. The alert sender,
``netmon report --send`` and ``netmon doctor`` all read :class:`SmtpSettings` from here, so they agree.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmon.errors import ConfigError

TLS_MODES = ("none", "starttls", "ssl")
#: The SMTP port of each TLS mode when NETMON_SMTP_PORT is not set.
DEFAULT_SMTP_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TLS = "none"
DEFAULT_PORTAL_PORT = 8090


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, its default (as text; empty: unset) and what it does."""

    name: str
    default: str
    description: str


#: The WireGuard tunnel for school-owned devices off site (netmon.identity.wireguard reads them).
TUNNEL_SETTINGS: dict[str, tuple[str, str]] = {
    "NETMON_WG_INTERFACE": ("wg-netmon", "Name of the gateway's WireGuard interface."),
    "NETMON_WG_POOL_V4": ("10.99.0.0/20", "IPv4 pool of tunnel addresses; the first is the gateway's."),
    "NETMON_WG_POOL_V6": ("", "IPv6 pool of tunnel addresses (empty: IPv4 only; IPv6 is then refused)."),
    "NETMON_WG_ENDPOINT": ("", "host:port devices connect to (the gateway's public name); needed to enrol."),
    "NETMON_WG_PORT": ("51820", "UDP port the gateway's interface listens on."),
    "NETMON_WG_DNS": (
        "",
        "DNS server(s) given to devices, comma-separated (empty: the gateway's tunnel address).",
    ),
    "NETMON_WG_KEY_FILE": (
        "",
        "The gateway's private key file (empty: wireguard/gateway.key in the state directory).",
    ),
    "NETMON_WG_CONFIG": ("", "Gateway config file rewritten after every change (empty: not written)."),
    "NETMON_WG_KEEPALIVE": ("25", "Seconds between the devices' keepalives (0: none)."),
}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "NETMON_CONFIG",
        "",
        "The proxy's options file for `netmon run` and `netmon doctor` "
        "(empty: the shipped mitm_config.yaml).",
    ),
    Setting(
        "NETMON_DB",
        "",
        "Database URL of the incident store (empty: the SQLite file netmon.db in the state directory).",
    ),
    Setting(
        "NETMON_STATE_DIR",
        "var",
        "Directory for runtime state: the default database, status.json, spill files, imported lists.",
    ),
    Setting("NETMON_LIBRARY_OVERLAY", "", "The school's own phrase library overlay directory."),
    Setting("NETMON_SITE", "", "Name of this school or site, recorded on every incident."),
    Setting(
        "NETMON_PUPIL_IF",
        "",
        "The pupils' network interface, for `netmon doctor` (empty: PUPIL_IF "
        "in /etc/netmon/netmon-vars.nft).",
    ),
    Setting(
        "NETMON_PORTAL_PORT", str(DEFAULT_PORTAL_PORT), "Port of the captive portal, for `netmon doctor`."
    ),
    Setting(
        "NETMON_SMTP_HOST",
        "",
        "Mail server for alerts and reports (empty: localhost for the sender; "
        "`netmon doctor` warns that alerts stay unmailed).",
    ),
    Setting(
        "NETMON_SMTP_PORT", "", "Mail server port (empty: 25 for TLS none, 587 for starttls, 465 for ssl)."
    ),
    Setting("NETMON_SMTP_TLS", DEFAULT_TLS, "Encryption to the mail server: none, starttls or ssl."),
    Setting("NETMON_SMTP_USER", "", "User name for SMTP authentication (empty: none)."),
    Setting(
        "NETMON_SMTP_PASSWORD",
        "",
        "Password for SMTP authentication (secret: keep it in the environment file).",
    ),
    Setting("NETMON_SMTP_TIMEOUT", "30", "Seconds to wait for the mail server."),
    Setting(
        "NETMON_SMTP_CAFILE", "", "CA bundle that signs the mail server's certificate (empty: the system's)."
    ),
    Setting(
        "NETMON_MAIL_FROM", "", "Sender address of alerts and reports (empty: netmon@<this host's name>)."
    ),
    Setting(
        "NETMON_ALERT_TO",
        "",
        "Recipients of the shipped alert rules (policy/alerts.yaml uses "
        "${NETMON_ALERT_TO}); several separated by commas.",
    ),
    Setting(
        "NETMON_ADMIN_TO",
        "",
        "Who is mailed when netmon itself has a problem (the store cannot be written...), directly "
        "over SMTP; several separated by commas (empty: NETMON_ALERT_TO).",
    ),
    Setting(
        "NETMON_ALERT_RETRY_MAX",
        "30",
        "Longest wait, in seconds, between delivery attempts while the mail server is down.",
    ),
    Setting(
        "NETMON_CONSOLE_URL",
        "",
        "Address of the staff console as staff reach it (e.g. https://console.school.example); alert "
        "e-mails link to <URL>/incidents/<id> (empty: no link).",
    ),
    Setting(
        "NETMON_WEBHOOK_URL",
        "",
        "Endpoint of the school's safeguarding record system (CPOMS/MyConcern style) that receives "
        "incidents and outcomes as signed JSON (empty: no webhook).",
    ),
    Setting(
        "NETMON_WEBHOOK_SECRET",
        "",
        "Key of the webhook's X-Netmon-Signature (HMAC-SHA256 of the body); secret: keep it in the "
        "environment file.",
    ),
    Setting(
        "NETMON_CONSOLE_SECRET",
        "",
        "Key that signs the staff console's session cookies (empty: a random key at each start, so "
        "sessions end on restart); secret: keep it in the environment file.",
    ),
    Setting(
        "NETMON_CONSOLE_KEY",
        "",
        "32 random bytes in base64url (netmon staff key prints one) that encrypt staff TOTP secrets at "
        "rest; empty: the key file; secret: keep it in the environment file.",
    ),
    Setting(
        "NETMON_CONSOLE_KEY_FILE",
        "",
        "The key file that encrypts staff TOTP secrets when NETMON_CONSOLE_KEY is empty (default "
        "<state dir>/console.key, made with mode 0600 on first use).",
    ),
    Setting(
        "NETMON_RISK_MODEL",
        "on",
        "The learned risk model for what pupils type (docs/model-card.md): on, or off for the "
        "phrase library and grammar alone.",
    ),
    *(Setting(name, default, text) for name, (default, text) in TUNNEL_SETTINGS.items()),
)


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    try:
        port = int(raw) if raw else default
    except ValueError:
        raise ConfigError(name, f"must be a port number (got {raw!r})") from None
    if not 0 < port < 65536:
        raise ConfigError(name, f"must be 1-65535 (got {port})")
    return port


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _text(env, name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(name, f"must be seconds (got {raw!r})") from None
    if value <= 0:
        raise ConfigError(name, f"must be more than 0 seconds (got {raw!r})")
    return value


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how alerts and reports are mailed (``NETMON_SMTP_*`` and ``NETMON_MAIL_FROM``)."""

    host: str = "localhost"
    port: int = DEFAULT_SMTP_PORTS[DEFAULT_TLS]
    user: str | None = None
    password: str | None = None
    tls: str = DEFAULT_TLS
    mail_from: str = "netmon@localhost"
    timeout: float = 30.0
    cafile: str | None = None
    configured: bool = False  # NETMON_SMTP_HOST was set

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings:
        """Read ``NETMON_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_TLS`` (none|starttls|ssl),
        ``_TIMEOUT``, ``_CAFILE`` and ``NETMON_MAIL_FROM``; raise :class:`ConfigError` when invalid."""
        tls = _text(env, "NETMON_SMTP_TLS").lower() or DEFAULT_TLS
        if tls not in TLS_MODES:
            raise ConfigError("NETMON_SMTP_TLS", f"must be none, starttls or ssl (got {tls!r})")
        mail_from = _text(env, "NETMON_MAIL_FROM") or f"netmon@{_local_hostname()}"
        return cls(
            host=_text(env, "NETMON_SMTP_HOST") or "localhost",
            port=_port(env, "NETMON_SMTP_PORT", DEFAULT_SMTP_PORTS[tls]),
            user=_text(env, "NETMON_SMTP_USER") or None,
            password=env.get("NETMON_SMTP_PASSWORD") or None,
            tls=tls,
            mail_from=mail_from,
            timeout=_seconds(env, "NETMON_SMTP_TIMEOUT", 30.0),
            cafile=_text(env, "NETMON_SMTP_CAFILE") or None,
            configured=bool(_text(env, "NETMON_SMTP_HOST")),
        )

    @property
    def domain(self) -> str:
        return self.mail_from.rsplit("@", 1)[-1].strip("> ") or "netmon"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context, made once per CA file: loading the system CA store takes a noticeable
        fraction of a second, too long to repeat on an event loop for every connection."""
        if self.tls == "none":
            return None
        return _tls_context(self.cafile)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiosmtplib.SMTP``."""
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "use_tls": self.tls == "ssl",
            "start_tls": self.tls == "starttls",
        }
        kwargs["local_hostname"] = _local_hostname()  # aiosmtplib would otherwise look it up on the loop
        context = self.tls_context()
        if context is not None:
            kwargs["tls_context"] = context
        if self.user:
            kwargs["username"] = self.user
            kwargs["password"] = self.password or ""
        return kwargs


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """This host's name for EHLO (a DNS look-up: done once, and off the event loop by the sender)."""
    return socket.getfqdn() or "localhost"


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every ``NETMON_*`` setting of a process (see :data:`SETTINGS`), read once with :meth:`from_env`."""

    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    config: Path | None = None
    db: str = ""  # empty: the SQLite file in the state directory (see db_url)
    state_dir: Path = Path("var")
    library_overlay: Path | None = None
    site: str = ""
    pupil_if: str = ""
    portal_port: int = DEFAULT_PORTAL_PORT
    alert_to: str = ""
    alert_retry_max: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the environment (default ``os.environ``); :class:`ConfigError` names a bad variable."""
        env = os.environ if env is None else env
        overlay = _text(env, "NETMON_LIBRARY_OVERLAY")
        config = _text(env, "NETMON_CONFIG")
        return cls(
            smtp=SmtpSettings.from_env(env),
            config=Path(config) if config else None,
            db=_text(env, "NETMON_DB"),
            state_dir=Path(_text(env, "NETMON_STATE_DIR") or "var").resolve(),
            library_overlay=Path(overlay) if overlay else None,
            site=_text(env, "NETMON_SITE"),
            pupil_if=_text(env, "NETMON_PUPIL_IF"),
            portal_port=_port(env, "NETMON_PORTAL_PORT", DEFAULT_PORTAL_PORT),
            alert_to=_text(env, "NETMON_ALERT_TO"),
            alert_retry_max=max(1.0, _seconds(env, "NETMON_ALERT_RETRY_MAX", 30.0)),
        )

    @property
    def db_url(self) -> str:
        """The store's URL: ``NETMON_DB``, else the SQLite file in the state directory."""
        return self.db or f"sqlite:///{self.state_dir / 'netmon.db'}"
