"""What every doctor check shares: the :class:`Check` it returns and the :class:`Settings` it reads
(from the mitm config, netmon-vars.nft and the environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netmon.config import paths
from netmon.config.gateway import read_env_file as read_env_file
from netmon.config.gateway import read_nft_vars, read_options
from netmon.config.settings import DEFAULT_TLS, SmtpSettings
from netmon.config.settings import Settings as Environment
from netmon.errors import ConfigError

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
    portal_url_host: str = ""  # the host of netmon_portal_url: a portal may listen there (pupil side) only
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
    if o.get("netmon_portal_url"):
        s.portal_url_host = urlsplit(str(o["netmon_portal_url"])).hostname or ""
    vars_path = nft_vars or DEFAULT_NFT_VARS
    nft_portal_port = None
    if vars_path.exists():
        values = read_nft_vars(vars_path)
        s.interface = values.get("PUPIL_IF")
        nft_portal_port = values.get("PORTAL_PORT")
    _apply_environment(s, os.environ)
    if nft_portal_port and str(nft_portal_port).isdigit() and not os.environ.get("NETMON_PORTAL_PORT"):
        s.portal_port = int(nft_portal_port)  # the port the ruleset opens to pupils is the portal's
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
