"""IdentityTagger and PortalGate: who is behind each flow, and the captive-portal gate.

IdentityTagger sets ``flow.metadata["netmon.user"]`` (user, role, year_group, groups, mac) from a sessions
snapshot that a background thread refreshes from the store every few seconds: no database read per
request. PortalGate (option ``netmon_portal``) sends devices without a session to the portal: plain HTTP is
redirected (remembering the URL in a link signed with a key shared through the store), OS captive-portal
checks are answered "captive" before and "online" after sign-in, HTTPS is refused at once with 511. It
fails CLOSED: no snapshot yet, or any fault, means "not signed in".

Decisions rest on the real destination (``netmon_proxy.context.destination``: the original destination
in transparent mode), never on the Host header alone: a request whose Host does not match where it really
goes (another address than the school's resolver gives for that name, another port, another name through
the explicit proxy) is refused with 421 before any gate or URL list looks at it (option
``netmon_host_check``). The portal learns a device's address only from the signed ``X-Netmon-Client-IP``
header the gate adds on requests to the portal; whatever a device sent under that name is removed.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from mitmproxy import connection, ctx, exceptions, http
from netmon_proxy.context import (
    USER_KEY,
    client_ip,
    destination,
    flow_host,
    flow_url,
    forget_tunnel,
    host_header,
    remember_tunnel,
)

from netmon.hosts import is_ip
from netmon.identity.devices import DeviceDirectory
from netmon.identity.passthrough import ResolvedNames, normalise_address
from netmon.identity.probes import TRUST_CHECK_HOST, TRUST_CHECK_PATH, find_probe
from netmon.identity.refresher import SessionRefresher
from netmon.identity.sessions import SessionInfo, SessionSnapshot
from netmon.identity.signing import CLIENT_IP_HEADER, sign_client_ip, sign_link
from netmon.ops import counters

#: ``normalise_address`` remembered (a pure function of the text; asked for each request's destination,
#: which a kept-alive connection repeats): parsing the address was most of the Host check's cost.
_address = functools.lru_cache(maxsize=4096)(normalise_address)

log = logging.getLogger(__name__)

ONBOARDING_HOST = "mitm.it"
MAX_NEXT_URL = 2000


class IdentityTagger:
    """Tags every flow with the signed-in user of its client address (fails open: untagged)."""

    def __init__(self, refresher: SessionRefresher | None = None) -> None:
        self.refresher = refresher
        self._own_refresher = refresher is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self.devices: DeviceDirectory | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_sessions_refresh_ms",
            int,
            3000,
            "Milliseconds between reloads of the signed-in sessions from the store.",
        )

    def configure(self, updated: set[str]) -> None:
        value = ctx.options.netmon_sessions_refresh_ms
        if "netmon_sessions_refresh_ms" in updated and not 100 <= value <= 300_000:
            raise exceptions.OptionsError(f"netmon_sessions_refresh_ms: must be 100-300000 (got {value})")

    def running(self) -> None:
        if self.devices is None:
            from netmon.identity.devices import DeviceDirectory
            from netmon.store.db import make_engine

            # school-owned devices on the WireGuard tunnel: known by their tunnel address, no portal
            self.devices = DeviceDirectory(
                make_engine(ctx.options.netmon_db, site=getattr(ctx.options, "netmon_site", None))
            )
            self.devices.start()
        if self.refresher is None:
            from netmon.store.db import make_engine

            self.refresher = SessionRefresher(
                make_engine(ctx.options.netmon_db, site=getattr(ctx.options, "netmon_site", None)),
                interval=ctx.options.netmon_sessions_refresh_ms / 1000,
            )
            self.refresher.start()
            self.bind_loop(asyncio.get_running_loop())
            if not self.refresher.snapshot.ok:
                log.error(
                    "sessions: cannot read the store yet (run `netmon db upgrade`?); "
                    "every device counts as not signed in"
                )

    def done(self) -> None:
        if self.devices is not None:
            self.devices.stop()
            self.devices = None
        if self.refresher is not None and self._own_refresher:
            self.refresher.stop()
            self.refresher = None

    @property
    def snapshot(self) -> SessionSnapshot:
        return self.refresher.snapshot if self.refresher is not None else SessionSnapshot()

    def session_for(self, ip: str) -> SessionInfo | None:
        """The live session of a client address (also notes the activity for the idle timeout)."""
        if self.refresher is None:
            return None
        info = self.snapshot.lookup(ip, last_active=self.refresher.last_active(ip))
        if info is not None:
            self.refresher.touch(ip)
        return info

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let requests on ``loop`` wait for the refresh thread (see :meth:`fresh_session_for`)."""
        assert self.refresher is not None
        self._loop = loop

        def notify(started: float) -> None:
            loop.call_soon_threadsafe(self._refreshed, started)

        self.refresher.on_refresh = notify

    def _refreshed(self, started: float) -> None:
        """On the event loop: wake the requests that waited for a refresh begun after they arrived."""
        waiting = []
        for since, future in self._waiters:
            if since <= started:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((since, future))
        self._waiters = waiting

    async def fresh_session_for(self, ip: str, timeout: float = 2.0) -> SessionInfo | None:
        """Like :meth:`session_for`, after one more snapshot refresh (coalesced, bounded by ``timeout``).

        Used for devices that look signed out: the device may have signed in a moment ago and the
        next periodic refresh may be seconds away. Refreshes are coalesced, so the store sees at most
        a few reads a second however many requests wait.
        """
        refresher = self.refresher
        if refresher is None or not refresher.running or self._loop is None:
            return self.session_for(ip)
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((time.monotonic(), future))
        refresher.wake()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            counters.incr("identity.refresh-wait-timeout")
        return self.session_for(ip)

    def tag(self, flow: http.HTTPFlow) -> SessionInfo | None:
        ip = client_ip(flow)
        info = self.session_for(ip)
        device = self.devices.snapshot.lookup(ip) if info is None and self.devices is not None else None
        if info is not None:
            flow.metadata[USER_KEY] = info.as_metadata(self.snapshot.mac_of(ip))
            counters.incr("identity.tagged")
        elif device is not None:
            flow.metadata[USER_KEY] = device.as_metadata()  # AUP accepted at enrolment: no portal
            counters.incr("identity.tagged-device")
        else:
            flow.metadata.pop(USER_KEY, None)
            mac = self.snapshot.mac_of(ip)
            if mac:  # incidents from devices without a session still record the MAC
                flow.metadata[USER_KEY] = {
                    "user": None,
                    "role": None,
                    "year_group": None,
                    "groups": [],
                    "mac": mac,
                }
            counters.incr("identity.untagged")
        return info

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self.tag(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.tag(flow)


def _host_allowed(host: str, patterns: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


#: The proxy's own pages, in English and Welsh (the portal's words live in captive_portal/i18n.py).
WORDS: dict[str, tuple[str, str]] = {
    "Sign in to the Wi-Fi": ("Sign in to the Wi-Fi", "Mewngofnodi i'r Wi-Fi"),
    "Wrong address": ("Wrong address", "Cyfeiriad anghywir"),
    "Sign in at the school's Wi-Fi page first.": (
        "Sign in at the school's Wi-Fi page first.",
        "Mewngofnodwch ar dudalen Wi-Fi yr ysgol yn gyntaf.",
    ),
    "This request named one site but was sent to another, so the school's Wi-Fi refused it.": (
        "This request named one site but was sent to another, so the school's Wi-Fi refused it.",
        "Roedd y cais hwn yn enwi un wefan ond cafodd ei anfon i un arall, "
        "felly gwrthododd Wi-Fi yr ysgol ef.",
    ),
    "Please sign in to use the school Wi-Fi.": (
        "Please sign in to use the school Wi-Fi.",
        "Mewngofnodwch i ddefnyddio Wi-Fi yr ysgol.",
    ),
    "The Wi-Fi sign-in check failed; please try again.": (
        "The Wi-Fi sign-in check failed; please try again.",
        "Methodd y gwiriad mewngofnodi i'r Wi-Fi; rhowch gynnig arall arni.",
    ),
}
_STYLE = (
    "body{font:1.1rem/1.5 system-ui,sans-serif;margin:0 auto;max-width:36rem;padding:1rem}"
    "h1{font-size:1.4rem}.cy{border-top:1px solid #ccc;margin-top:1.5rem;padding-top:.5rem}"
    "a{display:inline-block;padding:.6rem 0;font-weight:bold}"
)


def _page(
    status: int, title: str, message: str, link: str, headers: dict[str, str] | None = None
) -> http.Response:
    """A small page a phone can read, in English and Welsh, with the way on (the portal)."""
    en_title, cy_title = WORDS.get(title, (title, title))
    en_text, cy_text = WORDS.get(message, (message, message))
    e, href = html.escape, html.escape(link, quote=True)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(en_title)} / {e(cy_title)}</title><style>{_STYLE}</style></head><body>"
        f'<section><h1>{e(en_title)}</h1><p>{e(en_text)}</p><p><a href="{href}">{e(link)}</a></p></section>'
        f'<section class="cy" lang="cy"><h1>{e(cy_title)}</h1><p>{e(cy_text)}</p>'
        f'<p><a href="{href}">{e(link)}</a></p></section></body></html>'
    )
    return http.Response.make(
        status,
        body.encode(),
        {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", **(headers or {})},
    )


class PortalGate:
    """Devices without a session reach only the portal and its allow-list (fails CLOSED)."""

    def __init__(self, tagger: IdentityTagger, resolved: ResolvedNames | None = None) -> None:
        self.tagger = tagger
        self.allowed: tuple[str, ...] = (ONBOARDING_HOST,)
        self.portal: tuple[str, int] = ("127.0.0.1", 8090)
        self.resolved = resolved if resolved is not None else ResolvedNames()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_portal",
            bool,
            False,
            "Require captive-portal sign-in (and AUP acceptance) before browsing.",
        )
        loader.add_option(
            "netmon_portal_url",
            str,
            "http://127.0.0.1:8090/",
            "The captive portal's address as devices see it (where unsigned devices are sent).",
        )
        loader.add_option(
            "netmon_host_check",
            bool,
            True,
            "Refuse (421) a request whose Host header does not match where it really goes.",
        )
        loader.add_option(
            "netmon_portal_allow",
            Sequence[str],
            [],
            "Hosts reachable without signing in (besides the portal and mitm.it); "
            "'*.example.org' allows its subdomains.",
        )

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if updated & {"netmon_portal_url", "netmon_portal_allow"}:
            parts = urlsplit(opts.netmon_portal_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise exceptions.OptionsError(
                    f"netmon_portal_url: must be an http:// or https:// URL with a host "
                    f"(got {opts.netmon_portal_url!r}), e.g. http://10.20.0.1:8090/"
                )
            patterns = [p.strip().lower().rstrip(".") for p in opts.netmon_portal_allow if p.strip()]
            bad = [
                p
                for p in patterns
                if "/" in p or ":" in p or "*" in p[2:] or (p.startswith("*") and not p.startswith("*."))
            ]
            if bad:
                raise exceptions.OptionsError(
                    f"netmon_portal_allow: {bad[0]!r} is not a host name or '*.domain' pattern"
                )
            default_port = 443 if parts.scheme == "https" else 80
            self.portal = (parts.hostname.lower(), parts.port or default_port)
            self.allowed = (ONBOARDING_HOST, *patterns)

    # --- hooks ---------------------------------------------------------------------------------------------

    # Hooks are sync and return an awaitable only when the gate must look at the session store: with
    # the portal off (or for the portal's own traffic) a request costs no coroutine. mitmproxy awaits
    # what a hook returns.

    def client_disconnected(self, client: connection.Client) -> None:
        forget_tunnel(client.id)

    def http_connect(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        remember_tunnel(flow)
        host = (flow.request.host or "").lower()
        if host == TRUST_CHECK_HOST and flow.request.port == 443:
            # answered here (see requestheaders): no upstream connection is needed
            flow.response = http.Response.make(200)
            return None
        if not ctx.options.netmon_portal:
            return None
        return self._gate_connect(flow, host)

    async def _gate_connect(self, flow: http.HTTPFlow, host: str) -> None:
        try:
            if self._allowed(host, flow.request.port) or await self._signed_in(flow):
                return
            counters.incr("portal.refused")
            flow.response = _page(
                511,
                "Sign in to the Wi-Fi",
                "Sign in at the school's Wi-Fi page first.",
                ctx.options.netmon_portal_url,
            )
        except Exception:  # noqa: BLE001 - the gate fails closed on any fault
            self._fail_closed(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        request = flow.request
        # only the proxy names a device to the portal: drop whatever a device sent under that name
        request.headers.pop(CLIENT_IP_HEADER, None)
        if flow.response is not None:
            return None
        if (
            request.scheme == "https"
            and flow_host(flow) == TRUST_CHECK_HOST
            and request.path.split("?", 1)[0] == TRUST_CHECK_PATH
        ):
            flow.response = http.Response.make(
                204,
                b"",
                {
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Expose-Headers": "X-Netmon-Trust",
                    "X-Netmon-Trust": "yes",
                    "Cache-Control": "no-store",
                },
            )
            return None
        if destination(flow) == self.portal:
            # the portal sees the proxy's address on requests that come through it: name the device, signed
            key = self.tagger.snapshot.link_key
            if key:
                request.headers[CLIENT_IP_HEADER] = sign_client_ip(key, client_ip(flow))
        if not ctx.options.netmon_portal:
            return self._check_host(flow)
        return self._gate_safely(flow)

    async def _gate_safely(self, flow: http.HTTPFlow) -> None:
        try:
            await self._gate(flow)
            if flow.response is None:
                pending = self._check_host(flow)
                if pending is not None:
                    await pending
        except Exception:  # noqa: BLE001 - the gate fails closed on any fault
            self._fail_closed(flow)

    # --- the Host header against the real destination ----------------------------------------------------

    def _check_host(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Refuse a Host that does not match the real destination; a coroutine only when a lookup is due."""
        if not getattr(ctx.options, "netmon_host_check", True):
            return None
        name, port = host_header(flow)
        if not name or name == ONBOARDING_HOST:  # mitm.it: answered by the proxy itself, never upstream
            return None
        dest_host, dest_port = destination(flow)
        if port is not None and port != dest_port:
            self._misdirected(flow, name, dest_host, dest_port)
            return None
        dest_ip = _address(dest_host)
        if dest_ip is None:  # explicit proxy: the proxy connects to this name itself
            if name != dest_host.rstrip("."):
                self._misdirected(flow, name, dest_host, dest_port)
            return None
        if is_ip(name):
            if _address(name) != dest_ip:
                self._misdirected(flow, name, dest_host, dest_port)
            return None
        known = self.resolved.cached(name, dest_ip)
        if known is None:
            return self._check_host_lookup(flow, name, dest_ip, dest_port)
        if not known:
            self._misdirected(flow, name, dest_ip, dest_port)
        return None

    async def _check_host_lookup(self, flow: http.HTTPFlow, name: str, dest_ip: str, dest_port: int) -> None:
        if not await self.resolved.maps_to(name, dest_ip):
            self._misdirected(flow, name, dest_ip, dest_port)

    def _misdirected(self, flow: http.HTTPFlow, name: str, dest_host: str, dest_port: int) -> None:
        counters.incr("portal.host-mismatch")
        log.warning(
            "refused: Host %s from %s does not match the destination %s:%d",
            name,
            client_ip(flow),
            dest_host,
            dest_port,
        )
        flow.response = _page(
            421,
            "Wrong address",
            "This request named one site but was sent to another, so the school's Wi-Fi refused it.",
            ctx.options.netmon_portal_url,
        )

    # --- decisions ------------------------------------------------------------------------------------------

    def _allowed(self, host: str, port: int) -> bool:
        """The portal itself (its host and port) and the allow-list (by name, any port)."""
        return (host, port) == self.portal or _host_allowed(host, self.allowed)

    def _allowed_destination(self, flow: http.HTTPFlow, host: str) -> bool:
        """Allowed by where the request really goes: the portal by its address and port; an allow-listed
        name only with a Host naming it (which :meth:`_check_host` then holds to the real destination)."""
        if destination(flow) == self.portal:
            return True
        return _host_allowed(host, self.allowed)

    async def _signed_in(self, flow: http.HTTPFlow) -> bool:
        """Whether the device has a session; a device that looks signed out gets one fresh look first."""
        user = flow.metadata.get(USER_KEY)
        if isinstance(user, dict) and user.get("user"):
            return True
        if await self.tagger.fresh_session_for(client_ip(flow)) is None:
            return False
        self.tagger.tag(flow)
        return True

    async def _gate(self, flow: http.HTTPFlow) -> None:
        host = flow_host(flow)
        if self._allowed_destination(flow, host):
            return
        signed_in = await self._signed_in(flow)
        request = flow.request
        probe = find_probe(host, request.path) if request.scheme == "http" else None
        if probe is not None:
            if signed_in:
                counters.incr("portal.probe.online")
                flow.response = http.Response.make(
                    probe.status,
                    probe.body,
                    {"Content-Type": probe.content_type, "Cache-Control": "no-store"},
                )
            else:
                counters.incr("portal.probe.captive")
                flow.response = self._redirect(None, client_ip(flow))
            return
        if signed_in:
            return
        if request.scheme == "http":
            counters.incr("portal.redirected")
            url = flow_url(flow)
            flow.response = self._redirect(
                url if request.method == "GET" and len(url) <= MAX_NEXT_URL else None, client_ip(flow)
            )
        else:
            counters.incr("portal.refused")
            flow.response = _page(
                511,
                "Sign in to the Wi-Fi",
                "Sign in at the school's Wi-Fi page first.",
                ctx.options.netmon_portal_url,
            )

    def _redirect(self, next_url: str | None, device: str) -> http.Response:
        portal = ctx.options.netmon_portal_url
        target = portal
        if next_url:
            params = {"next": next_url}
            key = self.tagger.snapshot.link_key
            if key:
                params["sig"] = sign_link(key, next_url, device)
            target = f"{portal}{'&' if '?' in portal else '?'}{urlencode(params)}"
        return _page(
            302,
            "Sign in to the Wi-Fi",
            "Please sign in to use the school Wi-Fi.",
            target,
            {"Location": target},
        )

    def _fail_closed(self, flow: http.HTTPFlow) -> None:
        counters.incr("portal.failed-closed")
        log.exception("portal gate fault: refusing the request (fails closed)")
        flow.response = _page(
            511,
            "Sign in to the Wi-Fi",
            "The Wi-Fi sign-in check failed; please try again.",
            ctx.options.netmon_portal_url,
        )
