"""TlsPolicy: decide per TLS connection whether to intercept it or pass it through untouched.

- A destination on the no-decrypt list (banking, health, government) is never intercepted, but only
  when it is that destination: the device names the site in its handshake (SNI) and could name a bank
  while connecting anywhere. A no-decrypt name passes through only when the address the device connects
  to is one the school's resolver gives for that name (looked up off the event loop, cached briefly);
  otherwise the connection is intercepted and scanned like any other (``tls.no-decrypt.mismatch``).
- When a device fails the TLS handshake with the school's certificate for a destination (it has no CA
  installed, or the app pins its certificates), later connections from that device to that destination
  pass through without interception, so the pupil's app keeps working. With the captive portal on, only
  signed-in devices get this passthrough (the portal gate fails closed).
- A passed-through visit is still monitored at hostname level: the SNI is checked against the URL lists
  (a hit is an incident with source "sni") and the visit is recorded once per device, host and reason as an
  audit event ``tls.passthrough`` (host, address and reason, never content) by the core's
  ``netmon.identity.visits.VisitLog``.

Fails open: a fault here never breaks a connection (it is then intercepted as usual, and counted).
Counters: ``tls.decrypted``, ``tls.refused`` (a device refused the school's certificate),
``tls.passthrough`` (with ``tls.passthrough.no-decrypt`` / ``tls.passthrough.refused-before``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from mitmproxy import connection, ctx, exceptions, tls

from netmon.config import paths
from netmon.errors import ConfigError
from netmon.identity.passthrough import NoDecryptList, PassthroughMemory, ResolvedNames, normalise_address
from netmon.identity.probes import TRUST_CHECK_HOST
from netmon.identity.visits import Visit, VisitLog
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding

log = logging.getLogger(__name__)

DEFAULT_NO_DECRYPT_FILE = paths.DEFAULT_POLICY_DIR / "no-decrypt.txt"

HostHits = Callable[[str], Sequence[Hit]]
Identify = Callable[[str], dict[str, Any] | None]

REASON_NO_DECRYPT = "no-decrypt"
REASON_REFUSED = "refused-before"


def _client_ip(client: connection.Client) -> str:
    peer = client.peername
    return str(peer[0]).removeprefix("::ffff:") if peer else ""


def _destination(conn: connection.Client, server: connection.Server) -> str:
    """The name the device asked for (SNI), else the original destination address."""
    if conn.sni:
        return conn.sni.lower()
    return _address(server)


def _address(server: connection.Server) -> str:
    """Where the connection really goes: the original destination (transparent mode) or the CONNECT host
    (explicit proxy, which the proxy resolves itself through the school's resolver)."""
    address = server.address
    return str(address[0]).removeprefix("::ffff:") if address else ""


def identify_with(tagger: Any) -> Identify:
    """An ``identify`` callable from the IdentityTagger (addons/identity.py): the device's signed-in user."""

    def identify(ip: str) -> dict[str, Any] | None:
        info = tagger.session_for(ip)
        return info.as_metadata(tagger.snapshot.mac_of(ip)) if info is not None else None

    return identify


class TlsPolicy:
    """Chooses interception or passthrough in ``tls_clienthello``; learns from ``tls_failed_client``.

    ``host_hits(host)`` returns URL-list hits for a hostname and ``submit(result)`` hands a ScanResult to
    the incident recorder; ``identify(ip)`` returns the ``netmon.user`` dict of a device, if known. All
    three are optional and wired by ``addons/entry.py``.
    """

    def __init__(
        self,
        submit: Callable[[ScanResult], None] | None = None,
        host_hits: HostHits | None = None,
        identify: Identify | None = None,
        resolved: ResolvedNames | None = None,
    ) -> None:
        self.submit = submit
        self.host_hits = host_hits
        self.identify = identify
        self.resolved = resolved if resolved is not None else ResolvedNames()
        self.no_decrypt = NoDecryptList()
        self.memory = PassthroughMemory()
        self.visits: VisitLog | None = None
        # (client, host, reason) -> monotonic time until which a repeat is not recorded again
        self._recorded: dict[tuple[str, str, str], float] = {}

    # -- options ---------------------------------------------------------------------------------
    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_no_decrypt_file",
            str,
            str(DEFAULT_NO_DECRYPT_FILE),
            "File of domains never decrypted (banking, health, government), one a line; empty for none.",
        )
        loader.add_option(
            "netmon_no_decrypt",
            Sequence[str],
            [],
            "Further domains never decrypted (each covers its subdomains), or list files.",
        )
        loader.add_option(
            "netmon_passthrough_minutes",
            int,
            360,
            "After a device fails the TLS handshake for a destination, its connections "
            "there pass through undecrypted for this long.",
        )
        loader.add_option(
            "netmon_passthrough_record",
            bool,
            True,
            "Record passed-through visits (device, hostname, reason) as audit events.",
        )

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if {"netmon_no_decrypt_file", "netmon_no_decrypt"} & updated:
            files = [Path(opts.netmon_no_decrypt_file)] if opts.netmon_no_decrypt_file else []
            try:
                self.no_decrypt = NoDecryptList.build(files, opts.netmon_no_decrypt)
            except ConfigError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        if "netmon_passthrough_minutes" in updated:
            if not 0 <= opts.netmon_passthrough_minutes <= 7 * 24 * 60:
                raise exceptions.OptionsError(
                    f"netmon_passthrough_minutes: must be 0-10080 (got {opts.netmon_passthrough_minutes})"
                )
            self.memory.ttl = opts.netmon_passthrough_minutes * 60.0

    def running(self) -> None:
        opts = ctx.options
        if opts.netmon_passthrough_record and hasattr(opts, "netmon_db"):
            self.visits = VisitLog(opts.netmon_db)
        log.info(
            "TLS policy: %d no-decrypt domains, passthrough after a failed handshake for %d min",
            len(self.no_decrypt),
            opts.netmon_passthrough_minutes,
        )

    def done(self) -> None:
        if self.visits is not None:
            self.visits.close()
            self.visits = None

    # -- hooks -----------------------------------------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> Awaitable[None] | None:
        """Plain call, except for a no-decrypt name whose address the cache cannot vouch for: then a
        coroutine that looks the name up (mitmproxy awaits it; the handshake waits, the loop does not)."""
        if data.ignore_connection:
            return None  # another addon already decided
        context = data.context
        client_ip = _client_ip(context.client)
        sni = data.client_hello.sni
        destination = sni.lower() if sni else _destination(context.client, context.server)
        address = _address(context.server)
        if self.no_decrypt.match(sni):
            verdict = self._genuine(sni or "", address)
            if verdict is None:
                return self._check_then_pass(data, client_ip, destination, address)
            if verdict:
                self._pass(data, client_ip, destination, address, REASON_NO_DECRYPT)
            else:
                self._mismatch(destination, address)
            return None
        if destination and self.memory.contains(client_ip, destination):
            if self._gate_applies(client_ip):
                # the captive portal fails closed: a device that has not signed in gets no passthrough
                # (it is intercepted and answered by the portal gate); it will once it has signed in
                counters.incr("tls.passthrough.withheld-unsigned")
                return None
            self._pass(data, client_ip, destination, address, REASON_REFUSED)
        return None

    def _genuine(self, sni: str, address: str) -> bool | None:
        """Whether the connection really goes to the no-decrypt site; None when a lookup must tell."""
        if normalise_address(address) is None:
            # explicit proxy: the proxy itself resolves the CONNECT name, so it is genuine when that name
            # is on the list too (CONNECT evil.example with a bank's SNI is not)
            return bool(address) and self.no_decrypt.match(address) is not None
        return self.resolved.cached(sni, address)

    async def _check_then_pass(
        self, data: tls.ClientHelloData, client_ip: str, destination: str, address: str
    ) -> None:
        try:
            genuine = await self.resolved.maps_to(destination, address)
        except Exception:  # noqa: BLE001 - a failed lookup proves nothing: decrypt (never pass a forgery)
            counters.incr("tls.error.resolve")
            log.exception("looking up a no-decrypt name failed; the connection is intercepted")
            genuine = False
        if genuine:
            self._pass(data, client_ip, destination, address, REASON_NO_DECRYPT)
        else:
            self._mismatch(destination, address)

    def _mismatch(self, destination: str, address: str) -> None:
        counters.incr("tls.no-decrypt.mismatch")
        log.warning(
            "no-decrypt name %s sent to %s, which the school's resolver does not give for it: intercepted",
            destination,
            address,
        )

    def _pass(
        self, data: tls.ClientHelloData, client_ip: str, destination: str, address: str, reason: str
    ) -> None:
        data.ignore_connection = True
        counters.incr("tls.passthrough")
        counters.incr(f"tls.passthrough.{reason}")
        try:
            self._monitor(client_ip, destination, reason, address)
        except Exception:  # noqa: BLE001 - fail open: the connection passes through regardless
            counters.incr("tls.error.monitor")
            log.exception("hostname monitoring of a passthrough connection failed")

    def tls_established_client(self, data: tls.TlsData) -> None:
        counters.incr("tls.decrypted")

    def tls_failed_client(self, data: tls.TlsData) -> None:
        context = data.context
        client_ip = _client_ip(context.client)
        destination = _destination(context.client, context.server)
        counters.incr("tls.refused")
        if destination == TRUST_CHECK_HOST:
            return  # the portal's "does this device trust the CA" check must keep asking, never pass through
        if client_ip and destination and self.memory.ttl > 0:
            if self.memory.remember(client_ip, destination):
                log.info(
                    "device %s refused the school certificate for %s: its later connections there "
                    "pass through undecrypted",
                    client_ip,
                    destination,
                )

    def _gate_applies(self, client_ip: str) -> bool:
        """True when the portal gate is on and this device has no signed-in session."""
        if self.identify is None or not getattr(ctx.options, "netmon_portal", False):
            return False
        return self.identify(client_ip) is None

    # -- hostname-level monitoring ---------------------------------------------------------------
    def _monitor(self, client_ip: str, host: str, reason: str, address: str = "") -> None:
        user = self.identify(client_ip) if self.identify is not None else None
        if self.host_hits is not None and self.submit is not None and host:
            hits = tuple(self.host_hits(host))
            if hits:
                self.submit(self._result(client_ip, host, hits, user, reason))
                counters.incr("tls.passthrough.url-list-hit")
        if self.visits is not None and host:
            now = time.monotonic()
            key = (client_ip, f"{host} {address}", reason)
            if self._recorded.get(key, 0.0) <= now:
                if len(self._recorded) > 50_000:
                    self._recorded = {k: v for k, v in self._recorded.items() if v > now}
                self._recorded[key] = now + max(self.memory.ttl, 3600.0)
                self.visits.add(Visit(client_ip, host, address, reason, (user or {}).get("user")))

    @staticmethod
    def _result(
        client_ip: str, host: str, hits: tuple[Hit, ...], user: dict[str, Any] | None, reason: str
    ) -> ScanResult:
        user = user or {}
        site = getattr(ctx.options, "netmon_site", "") if hasattr(ctx, "options") else ""
        context = FlowContext(
            time=time.time(),
            client_ip=client_ip,
            host=host,
            url=f"https://{host}/",
            method="CONNECT",
            mac=user.get("mac"),
            user=user.get("user"),
            role=user.get("role"),
            year_group=user.get("year_group"),
            groups=tuple(user.get("groups") or ()),
            site=site or "",
        )
        finding = TextFinding(source="sni", text=host, hits=hits, label=f"tls passthrough ({reason})")
        return ScanResult(context=context, findings=(finding,), evidence={"passthrough": reason})
