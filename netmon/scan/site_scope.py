"""Where a host-scoped overlay line applies: ``Scoped`` records, checking an ``on:`` value, and matching a
page's verified host and path against it (docs/library-format.md, "Quieting a phrase on one site").

A scope is ``host`` (that host and every subdomain of it; an IP address: that address only) or
``host/path`` (that host exactly, and the path equal to the prefix or below it: ``/news`` covers ``/news``
and ``/news/today``, not ``/newsletter``; the query string is never part of a scope). The host compared is
the one the scan job is given, which the proxy holds to where the request really goes (the Host header is
refused with 421 when it names another destination), so a device cannot borrow a quieted site's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from netmon.hosts import is_ip

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$"
)
_PATH = re.compile(r"^/[^\s?#]*$")


@dataclass(frozen=True, slots=True)
class Scoped:
    """A host-scoped line of the overlay: on pages of ``scopes`` only, the phrase (``category``,
    ``normalised``) is removed (``unless`` empty) or has the further exceptions ``unless``.

    A scope is ``host`` (that host and its subdomains; an address: that address only) or ``host/path``
    (that host exactly, paths equal to the prefix or below it). Never applied to what a pupil typed."""

    phrase: str  # as written
    normalised: str
    category: str
    language: str
    scopes: tuple[str, ...]  # "example.org" or "example.org/news", lower-case host
    unless: tuple[str, ...]  # further exception phrases, as written; () for a removal
    file: str  # "overlay:en/local.txt"
    line: int

    @property
    def removal(self) -> bool:
        return not self.unless

    @property
    def key(self) -> tuple[str, str]:
        return self.category, self.normalised


def check_scope(value: str) -> tuple[str | None, str]:
    """(the scope as kept, "") or (None, what is wrong) for one ``on:`` value: ``host`` or
    ``host/path``, lower-case host, no scheme, port, query or wildcard."""
    text = value.strip()
    if "://" in text:
        return None, f"write the site without its scheme: {text.split('://', 1)[1]!r} (got {text!r})"
    host, slash, path = text.partition("/")
    host = host.lower().rstrip(".")
    if host.startswith(("*.", ".")):
        return None, f"write the domain alone ({host.lstrip('*.')!r}): its subdomains are included"
    if ":" in host and not is_ip(host):
        return None, f"no port in a scope (got {text!r})"
    if not host or not (_HOST_NAME.match(host) or is_ip(host)):
        return None, f"{text!r} is not a host name (expected 'example.org' or 'example.org/path')"
    if slash and not _PATH.match("/" + path):
        return (
            None,
            f"the path of {text!r} may not hold spaces, '?' or '#' (the query is not part of a scope)",
        )
    return host + (slash + path if slash else ""), ""


def split_scope(scope: str) -> tuple[str, str]:
    """("example.org", "") or ("example.org", "/news") for a checked scope."""
    host, slash, path = scope.partition("/")
    return host, (slash + path if slash else "")


def page_path(url: str) -> str:
    """The path of a URL ("/" when it has none), without query or fragment."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def scope_applies(scope: str, host: str, path: str) -> bool:
    """Whether a page of ``host`` (the verified host, lower-case) at ``path`` is inside ``scope``."""
    want, prefix = split_scope(scope)
    host = host.lower().rstrip(".")
    if prefix:
        if host != want:
            return False
        prefix = prefix.rstrip("/") or "/"
        if prefix == "/" or path == prefix:
            return True
        return path.startswith(prefix + "/")
    if host == want:
        return True
    return not is_ip(want) and host.endswith("." + want)


def host_suffixes(host: str) -> list[str]:
    """``a.b.example.org`` -> itself, ``b.example.org``, ``example.org``, ``org``: the site scopes that
    can hold it."""
    host = host.lower().rstrip(".")
    if not host:
        return []
    if is_ip(host):
        return [host]
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]
