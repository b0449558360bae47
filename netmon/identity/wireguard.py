"""WireGuard for off-site devices: keys, the tunnel settings, both ends' configuration, and ``wg`` itself.

Keys are X25519 pairs made with ``cryptography`` (the same curve and encoding as ``wg genkey``/``wg
pubkey``: 32 raw bytes in base64). The gateway's private key lives in one file on the gateway
(``NETMON_WG_KEY_FILE``, mode 0600); devices' private keys are never stored anywhere.

The gateway's interface is driven with ``wg`` (wireguard-tools), whatever runs it: the kernel module or
``wireguard-go`` in userspace. Changes to the peer set are applied to the running interface at once
(``wg set``), and the configuration file is rewritten for the next start (``wg syncconf``/``setconf``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from netmon.config.paths import state_dir
from netmon.config.settings import TUNNEL_SETTINGS as TUNNEL_SETTINGS  # name -> (default, description)
from netmon.errors import ConfigError, NetmonError


class WireGuardError(NetmonError):
    """``wg`` failed, or a key is not a WireGuard key."""


# --- keys -----------------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw_key(key: str) -> bytes:
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireGuardError(f"not a WireGuard key (base64 of 32 bytes): {key[:8]}...") from exc
    if len(raw) != 32:
        raise WireGuardError(f"not a WireGuard key (base64 of 32 bytes): {key[:8]}...")
    return raw


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) key pair, both base64 as ``wg`` writes them."""
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _b64(raw), _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def public_key_of(private_key: str) -> str:
    private = X25519PrivateKey.from_private_bytes(_raw_key(private_key))
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def check_public_key(key: str) -> str:
    X25519PublicKey.from_public_bytes(_raw_key(key))
    return key.strip()


def load_or_create_key(path: Path) -> str:
    """The gateway's private key from ``path``; a new one written there (mode 0600) when it is missing."""
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        private, _ = generate_keypair()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(private + "\n")
        return private
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the gateway's WireGuard key: {exc.strerror}") from exc
    try:
        public_key_of(key)
    except WireGuardError as exc:
        raise ConfigError(str(path), f"{exc}; replace it with the output of `wg genkey`") from exc
    return key


# --- settings -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    """Where the tunnel's addresses come from and how devices reach the gateway."""

    interface: str = "wg-netmon"
    pool_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("10.99.0.0/20")
    pool_v6: ipaddress.IPv6Network | None = None
    endpoint: str = ""
    listen_port: int = 51820
    dns: tuple[str, ...] = ()
    key_file: Path | None = None
    config_file: Path | None = None
    keepalive: int = 25

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TunnelSettings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, TUNNEL_SETTINGS[name][0]).strip()

        def number(name: str, low: int, high: int) -> int:
            value = get(name)
            if not value.isdigit() or not low <= int(value) <= high:
                raise ConfigError(name, f"must be a number {low}-{high} (got {value!r})")
            return int(value)

        try:
            pool_v4 = ipaddress.IPv4Network(get("NETMON_WG_POOL_V4"))
            pool_v6 = ipaddress.IPv6Network(get("NETMON_WG_POOL_V6")) if get("NETMON_WG_POOL_V6") else None
        except ValueError as exc:
            raise ConfigError("NETMON_WG_POOL_V4/_V6", f"{exc} (e.g. 10.99.0.0/20, fd99::/64)") from exc
        if pool_v4.num_addresses < 4:
            raise ConfigError("NETMON_WG_POOL_V4", f"pool too small: {pool_v4}")
        interface = get("NETMON_WG_INTERFACE")
        if not interface or len(interface) > 15 or "/" in interface or " " in interface:
            raise ConfigError("NETMON_WG_INTERFACE", f"not an interface name (got {interface!r})")
        dns = tuple(part.strip() for part in get("NETMON_WG_DNS").split(",") if part.strip())
        for server in dns:
            try:
                ipaddress.ip_address(server)
            except ValueError as exc:
                raise ConfigError("NETMON_WG_DNS", f"not an IP address: {server!r}") from exc
        key_file = get("NETMON_WG_KEY_FILE")
        config_file = get("NETMON_WG_CONFIG")
        return cls(
            interface=interface,
            pool_v4=pool_v4,
            pool_v6=pool_v6,
            endpoint=get("NETMON_WG_ENDPOINT"),
            listen_port=number("NETMON_WG_PORT", 1, 65535),
            dns=dns,
            key_file=Path(key_file) if key_file else None,
            config_file=Path(config_file) if config_file else None,
            keepalive=number("NETMON_WG_KEEPALIVE", 0, 3600),
        )

    @property
    def gateway_v4(self) -> str:
        return str(self.pool_v4.network_address + 1)

    @property
    def gateway_v6(self) -> str | None:
        return str(self.pool_v6.network_address + 1) if self.pool_v6 is not None else None

    @property
    def dns_servers(self) -> tuple[str, ...]:
        return self.dns or (self.gateway_v4,)

    @property
    def gateway_key_file(self) -> Path:
        return self.key_file or state_dir() / "wireguard" / "gateway.key"

    def gateway_private_key(self) -> str:
        return load_or_create_key(self.gateway_key_file)

    def checked_endpoint(self) -> str:
        if not self.endpoint:
            raise ConfigError(
                "NETMON_WG_ENDPOINT", "not set: the gateway's public host:port, e.g. vpn.school.example:51820"
            )
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError("NETMON_WG_ENDPOINT", f"must be host:port (got {self.endpoint!r})")
        return self.endpoint


# --- configuration text ---------------------------------------------------------------------------------


def allowed_ips(address_v4: str, address_v6: str | None) -> str:
    """The peer's addresses on the gateway: exactly its own, nothing else."""
    return f"{address_v4}/32" + (f", {address_v6}/128" if address_v6 else "")


def client_config(
    settings: TunnelSettings,
    *,
    private_key: str,
    address_v4: str,
    address_v6: str | None,
    gateway_public: str,
) -> str:
    """The device's wg-quick configuration (what the WireGuard apps import): every route into the tunnel."""
    addresses = f"{address_v4}/32" + (f", {address_v6}/128" if address_v6 else "")
    lines = [
        "[Interface]",
        f"PrivateKey = {private_key}",
        f"Address = {addresses}",
        f"DNS = {', '.join(settings.dns_servers)}",
        "",
        "[Peer]",
        f"PublicKey = {gateway_public}",
        f"Endpoint = {settings.checked_endpoint()}",
        # all of IPv4 and IPv6: nothing leaves the device beside the tunnel while it is up
        "AllowedIPs = 0.0.0.0/0, ::/0",
    ]
    if settings.keepalive:
        lines.append(f"PersistentKeepalive = {settings.keepalive}")
    return "\n".join(lines) + "\n"


def gateway_config(private_key: str, listen_port: int, peers: Iterable[tuple[str, str, str]]) -> str:
    """The gateway interface in ``wg setconf``/``syncconf`` format; ``peers``: (name, public key, allowed)."""
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {listen_port}"]
    for name, public_key, allowed in peers:
        lines += ["", f"# {name}", "[Peer]", f"PublicKey = {public_key}", f"AllowedIPs = {allowed}"]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable only by its owner, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --- the running interface ------------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


class WgControl:
    """The gateway's interface through ``wg``; every call is a no-op report when the interface is absent."""

    def __init__(self, interface: str, *, wg: str | None = None, runner: Runner = _run) -> None:
        self.interface = interface
        self.wg = wg or shutil.which("wg") or "wg"
        self.runner = runner

    def exists(self) -> bool:
        return Path("/sys/class/net", self.interface).exists()

    def _wg(self, *args: str) -> str:
        try:
            done = self.runner([self.wg, *args])
        except (OSError, subprocess.SubprocessError) as exc:
            raise WireGuardError(
                f"{self.wg} {' '.join(args[:2])}: {exc} (apt-get install wireguard-tools)"
            ) from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise WireGuardError(
                f"wg {' '.join(args[:2])} failed: {detail[-1] if detail else done.returncode} "
                "(run as root, or give the service CAP_NET_ADMIN)"
            )
        return done.stdout

    def set_peer(self, public_key: str, allowed: str) -> None:
        self._wg("set", self.interface, "peer", public_key, "allowed-ips", allowed.replace(" ", ""))

    def remove_peer(self, public_key: str) -> None:
        self._wg("set", self.interface, "peer", public_key, "remove")

    def syncconf(self, path: Path) -> None:
        self._wg("syncconf", self.interface, str(path))

    def up(self, addresses: Iterable[str]) -> None:
        """Give the interface its addresses (``10.99.0.1/20``...) and bring it up; safe to repeat."""
        ip = shutil.which("ip") or "ip"
        for address in addresses:
            self._ip(ip, "address", "replace", address, "dev", self.interface)
        self._ip(ip, "link", "set", self.interface, "up")

    def _ip(self, *args: str) -> None:
        done = self.runner(list(args))
        if done.returncode != 0:
            raise WireGuardError(f"{' '.join(args[1:4])} {self.interface} failed: {done.stderr.strip()}")

    def listen_port(self) -> str:
        """The UDP port the interface listens on, as ``wg`` shows it."""
        return self._wg("show", self.interface, "listen-port").strip()

    def latest_handshakes(self) -> dict[str, datetime]:
        """Public key -> time of its latest handshake (peers that never completed one are left out)."""
        seen: dict[str, datetime] = {}
        for line in self._wg("show", self.interface, "latest-handshakes").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) > 0:
                seen[parts[0]] = datetime.fromtimestamp(int(parts[1]), UTC)
        return seen
