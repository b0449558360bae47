"""What the proxy tells the portal, signed with the key the two share through the store (``link_key``):

* "continue" links: after sign-in the portal sends a device on only to the URL that device asked for. The
  signature covers the URL and the device's address, so a link one device was given is worth nothing
  from another (no open redirect to hand round).
* the device's address: the portal sees the proxy's address on requests that come through the proxy, so
  the proxy names the device in ``X-Netmon-Client-IP: <address>;<unix time>;<signature>``. The proxy
  removes whatever a device sent under that name; the portal believes the header only with a valid, fresh
  signature, whoever connected, whatever name the request used.
"""

from __future__ import annotations

import hashlib
import hmac
import time

CLIENT_IP_HEADER = "X-Netmon-Client-IP"
#: How old (seconds) a signed address may be; the proxy signs each request as it forwards it.
CLIENT_IP_MAX_AGE = 120


def _mac(key: str, *parts: str) -> str:
    message = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_link(key: str, url: str, device: str = "") -> str:
    """The signature of a "continue" link for the device at address ``device``."""
    return _mac(key, "link", device, url)[:32]


def link_signature_ok(key: str | None, url: str, signature: str, device: str = "") -> bool:
    return bool(key) and hmac.compare_digest(sign_link(key or "", url, device), signature or "")


def sign_client_ip(key: str, address: str, now: float | None = None) -> str:
    """The header value naming the device at ``address``."""
    stamp = str(int(time.time() if now is None else now))
    return f"{address};{stamp};{_mac(key, 'client-ip', address, stamp)}"


def verified_client_ip(key: str | None, value: str, now: float | None = None) -> str | None:
    """The address in a header value the proxy signed with ``key`` within CLIENT_IP_MAX_AGE, else None."""
    if not key or not value:
        return None
    parts = value.strip().split(";")
    if len(parts) != 3:
        return None
    address, stamp, signature = parts
    if not stamp.isdigit() or not hmac.compare_digest(_mac(key, "client-ip", address, stamp), signature):
        return None
    now = time.time() if now is None else now
    if abs(now - int(stamp)) > CLIENT_IP_MAX_AGE:
        return None
    return address
