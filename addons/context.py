"""Who/where of a flow as plain data (netmon.scan.findings.FlowContext)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, http

from netmon.scan.findings import FlowContext, ScanResult

# The flow.metadata keys netmon's addons share, all here so that no adapter imports another for them.
USER_KEY = "netmon.user"  # dict: user, role, year_group, groups, mac (+ device, site, off_site)
HITS_KEY = "netmon.list_hits"  # URL/host list hits of a request, for the Blocker
BLOCKED_KEY = "netmon.blocked"  # the response is netmon's block page, not what the site sent
SKIP_KEY = "netmon.skip"  # not to be scanned (netmon's own pages, the portal)

#: Hands a scan result to the incident recorder.
Submit = Callable[[ScanResult], None]

#: The CONNECT target of each explicit-proxy tunnel still open (client connection id -> host, port):
#: the proxy itself resolves that name, so it is where the tunnel's requests really go, whatever any
#: later step does to the server connection. Filled by :func:`remember_tunnel`, emptied on disconnect.
_TUNNELS: dict[str, tuple[str, int]] = {}


def remember_tunnel(flow: http.HTTPFlow) -> None:
    """Record a CONNECT request's target for the requests inside its tunnel."""
    _TUNNELS[flow.client_conn.id] = ((flow.request.host or "").lower(), int(flow.request.port))


def forget_tunnel(client_id: str) -> None:
    _TUNNELS.pop(client_id, None)


def flow_host(flow: http.HTTPFlow) -> str:
    """The hostname the pupil asked for: Host header / authority, else SNI, else the address."""
    request = flow.request
    host = request.host_header or ""
    if host:
        # strip a port, keeping IPv6 literals intact
        if host.startswith("["):
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
    return (host or flow.client_conn.sni or request.host or "").lower()


def destination(flow: http.HTTPFlow) -> tuple[str, int]:
    """Where the request really goes: the original destination in transparent mode (the address the device
    connected to), the CONNECT target in an explicit-proxy tunnel, else the absolute-form URL's authority
    (which the proxy resolves itself). Never the Host header, which the device writes."""
    request = flow.request
    mode = getattr(flow.client_conn.proxy_mode, "type_name", "")
    if mode in ("regular", "upstream") and request.scheme == "http" and request.authority:
        # an absolute-form request to the explicit proxy: the proxy connects where the URL says (the
        # connection's server may still be the previous request's on a kept-alive connection)
        return (request.host or "").lower(), int(request.port)
    tunnel = _TUNNELS.get(flow.client_conn.id) if mode in ("regular", "upstream") else None
    if tunnel is not None:
        return tunnel
    address = flow.server_conn.address
    if address:
        return str(address[0]).removeprefix("::ffff:").lower(), int(address[1])
    return (request.host or "").lower(), int(request.port)


def host_header(flow: http.HTTPFlow) -> tuple[str, int | None]:
    """The Host header (HTTP/2: :authority) as (name, port or None); ("", None) when absent."""
    raw = (flow.request.host_header or "").strip().lower()
    if not raw:
        return "", None
    if raw.startswith("["):
        name, _, rest = raw[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif raw.count(":") == 1:
        name, _, port = raw.partition(":")
    else:
        name, port = raw, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def user_of(flow: http.HTTPFlow) -> dict[str, Any] | None:
    user = flow.metadata.get(USER_KEY)
    return user if isinstance(user, dict) else None


def flow_url(flow: http.HTTPFlow) -> str:
    """The URL as the pupil's browser saw it (by name, not the transparent-mode address)."""
    request = flow.request
    try:
        return request.pretty_url
    except ValueError:
        return request.url


def client_ip(flow: http.HTTPFlow) -> str:
    peer = flow.client_conn.peername
    address = peer[0] if peer else ""
    return address.removeprefix("::ffff:")


def flow_context(flow: http.HTTPFlow, where: FlowContext | None = None) -> FlowContext:
    """The full who/where of ``flow``. ``where``: a context already worked out from this same flow (a scan
    job's), whose host, URL and method are taken as they are instead of being worked out again (the URL
    costs tens of µs a flow)."""
    user: dict[str, Any] = flow.metadata.get(USER_KEY) or {}
    agent = flow.request.headers.get("user-agent", "")
    return FlowContext(
        time=flow.request.timestamp_start or time.time(),
        client_ip=client_ip(flow),
        host=where.host if where is not None else flow_host(flow),
        url=where.url if where is not None else flow_url(flow),
        method=where.method if where is not None else flow.request.method,
        mac=user.get("mac"),
        user=user.get("user"),
        role=user.get("role"),
        year_group=user.get("year_group"),
        groups=tuple(user.get("groups") or ()),
        site=user.get("site") or (ctx.options.netmon_site if hasattr(ctx.options, "netmon_site") else ""),
        device=_device(user, agent),
    )


def _device(user: dict[str, Any], agent: str) -> str | None:
    """An enrolled school device by its name (marked off-site when it came through the tunnel), else a
    coarse family from the User-Agent."""
    name = user.get("device")
    if name:
        return f"{name} (off-site)" if user.get("off_site") else str(name)
    return device_family(agent)


def device_family(user_agent: str) -> str | None:
    """A coarse device family from the User-Agent (no fingerprinting: keep the minimum)."""
    ua = user_agent.lower()
    for needle, family in (
        ("iphone", "iPhone"),
        ("ipad", "iPad"),
        ("android", "Android"),
        ("cros", "ChromeOS"),
        ("windows", "Windows"),
        ("macintosh", "macOS"),
        ("linux", "Linux"),
        ("curl/", "curl"),
    ):
        if needle in ua:
            return family
    return None
