"""Which TLS connections pass through undecrypted: the no-decrypt list and the memory of failed handshakes.

Plain data and functions (no mitmproxy): the ``TlsPolicy`` addon asks :class:`NoDecryptList` whether a
hostname is never intercepted (banking, health, government) and :class:`PassthroughMemory` whether this
device already refused the school's certificate for this destination (no CA installed, or an app that pins
its certificates), in which case later connections pass through and only the hostname is monitored.

The name in a TLS handshake (SNI) and the Host header are whatever the device says. :class:`ResolvedNames`
answers the question the device cannot forge: is this destination address one the school's resolver gives
for that name? A no-decrypt name passes through only when it is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from netmon.errors import ConfigError
from netmon.hosts import normalise_host

#: Default time a failed handshake keeps a (device, destination) in passthrough.
DEFAULT_TTL_SECONDS = 6 * 3600
#: Bound on remembered (device, destination) pairs; the least recently used are forgotten first.
DEFAULT_MAX_ENTRIES = 100_000

_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _check_domain(domain: str) -> str | None:
    """An error message for an invalid list entry, else None."""
    if not domain:
        return "empty domain"
    try:
        ascii_name = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return f"not a valid domain name: {domain!r}"
    if not set(ascii_name) <= _ALLOWED or ".." in ascii_name or ascii_name.startswith(("-", ".")):
        return f"not a valid domain name: {domain!r} (write one domain per line, e.g. nhs.uk)"
    return None


@dataclass(frozen=True, slots=True)
class NoDecryptList:
    """Domains never intercepted; an entry covers the domain and every subdomain (``nhs.uk`` covers
    ``www.nhs.uk``). Entries may be written ``*.nhs.uk`` or ``nhs.uk``: both mean the same."""

    domains: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.domains)

    def match(self, host: str | None) -> str | None:
        """The list entry covering ``host``, or None."""
        if not host:
            return None
        name = normalise_host(host)
        while name:
            if name in self.domains:
                return name
            _, dot, name = name.partition(".")
            if not dot:
                return None
        return None

    @classmethod
    def build(cls, files: Iterable[Path] = (), extra: Iterable[str] = ()) -> NoDecryptList:
        """Load list files and add ``extra`` domains (an entry with a ``/`` is another list file);
        raises ConfigError naming the file and line."""
        domains: set[str] = set()
        for path in files:
            domains.update(load_file(path))
        for i, entry in enumerate(extra):
            if "/" in entry:  # a list file given among the domains
                domains.update(load_file(Path(entry)))
                continue
            name = normalise_host(entry)
            problem = _check_domain(name)
            if problem:
                raise ConfigError(f"netmon_no_decrypt[{i}]", problem)
            domains.add(name)
        return cls(frozenset(domains))


def load_file(path: Path) -> set[str]:
    """One domain per line; ``#`` starts a comment; blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read no-decrypt list: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "not UTF-8 text") from exc
    domains: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = normalise_host(line)
        problem = _check_domain(name) if " " not in name else f"one domain per line (got {line!r})"
        if problem:
            raise ConfigError(f"{path}:{number}", problem)
        domains.add(name)
    return domains


class PassthroughMemory:
    """(device address, destination) pairs whose client TLS handshake failed, for ``ttl`` seconds.

    Bounded: at most ``max_entries`` pairs, least recently used forgotten first. Not thread-safe: used from
    the proxy's event loop only.
    """

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(client: str, destination: str) -> tuple[str, str]:
        return client.removeprefix("::ffff:"), normalise_host(destination)

    def remember(self, client: str, destination: str, now: float | None = None) -> bool:
        """Note a failed handshake; True when the pair was not already remembered."""
        now = time.monotonic() if now is None else now
        key = self.key(client, destination)
        new = not self._live(key, now)
        self._entries[key] = now + self.ttl
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return new

    def contains(self, client: str, destination: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        key = self.key(client, destination)
        if self._live(key, now):
            self._entries.move_to_end(key)
            return True
        return False

    def forget(self, client: str, destination: str) -> None:
        self._entries.pop(self.key(client, destination), None)

    def _live(self, key: tuple[str, str], now: float) -> bool:
        expires = self._entries.get(key)
        if expires is None:
            return False
        if expires <= now:
            del self._entries[key]
            return False
        return True


Resolve = Callable[[str], Awaitable[Iterable[str]]]

#: How long a name's addresses are believed (getaddrinfo gives no TTL; CDNs rotate within minutes).
DEFAULT_RESOLVE_TTL = 120.0
#: Bound on cached names; the least recently used are forgotten first.
DEFAULT_RESOLVE_ENTRIES = 4096


def normalise_address(address: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4, no zone), or None if not one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


async def system_resolve(name: str) -> list[str]:
    """The addresses the system resolver (the school's dnsmasq) gives for ``name``, off the event loop
    (asyncio's getaddrinfo runs in the default executor); empty when the name does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return [str(info[4][0]) for info in infos]


class ResolvedNames:
    """Addresses the school's resolver gives for names, cached for ``ttl`` seconds (bounded, LRU).

    ``maps_to(name, address)`` is true when ``address`` is among them. On a miss it asks the resolver once
    more (at most once per ``retry_gap`` seconds per name) and keeps the union of the answers still within
    their ``ttl``, so a CDN that rotates its addresses is not mistaken for a forged destination. Used from
    one event loop; lookups of the same name are shared.
    """

    def __init__(
        self,
        resolve: Resolve | None = None,
        *,
        ttl: float = DEFAULT_RESOLVE_TTL,
        max_entries: int = DEFAULT_RESOLVE_ENTRIES,
        retry_gap: float = 5.0,
    ) -> None:
        self.resolve: Resolve = resolve or system_resolve
        self.ttl = ttl
        self.max_entries = max_entries
        self.retry_gap = retry_gap
        # name -> (time of the last lookup, {address: expiry})
        self._entries: OrderedDict[str, tuple[float, dict[str, float]]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, name: str, address: str, now: float | None = None) -> bool | None:
        """True/False when the cache knows, None when only a lookup can tell (no await needed for True)."""
        now = time.monotonic() if now is None else now
        key = normalise_host(name)
        entry = self._entries.get(key)
        address = normalise_address(address) or ""
        if entry is None:
            return None
        looked_up, addresses = entry
        if addresses.get(address, 0.0) > now:
            self._entries.move_to_end(key)
            return True
        return False if now - looked_up < self.retry_gap else None

    async def maps_to(self, name: str, address: str) -> bool:
        """Whether the resolver gives ``address`` for ``name`` (a lookup when the cache cannot say)."""
        known = self.cached(name, address)
        if known is not None:
            return known
        await self._lookup(normalise_host(name))
        return bool(self.cached(name, address))

    async def _lookup(self, key: str) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            await pending
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answers = await self.resolve(key) if key else []
            now = time.monotonic()
            _, previous = self._entries.pop(key, (0.0, {}))
            addresses = {a: t for a, t in previous.items() if t > now}
            for answer in answers:
                canonical = normalise_address(answer)
                if canonical:
                    addresses[canonical] = now + self.ttl
            self._entries[key] = (now, addresses)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        finally:
            del self._pending[key]
            future.set_result(None)
