"""Host names and addresses: the one place that says what a host is and how it is compared.

Every part that decides on a host (URL lists, the no-decrypt list, search and scan context, the portal)
uses these, so that "cafe" is a name everywhere and ``[::1]:8080`` is the address ``::1`` everywhere.
"""

from __future__ import annotations

import ipaddress


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 address (brackets allowed), False for a name such as ``cafe``."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" not in host and not host[-1:].isdigit():
        return False  # a name: IPv4 ends in a digit, IPv6 has colons (no exception to raise and catch)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalise_host(host: str) -> str:
    """Lower-case, IDNA-encoded, no trailing dot, no port, no brackets, no leading ``*.`` or ``.``."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    for prefix in ("*.", "."):
        host = host.removeprefix(prefix)
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host
