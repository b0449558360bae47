"""URL lists: CSV files ``type,value,category,severity,source`` (CTIRU / IWF style).

``type`` is ``url`` (one page: with any query string unless the entry gives one), ``prefix``
(everything under a URL prefix) or ``domain`` (a host and all of its subdomains). Values may be written
with or without a scheme; hosts are compared lower-case, without ``www.``-blindness (``domain`` entries
already cover every subdomain). A domain entry is also found by hostname alone, for traffic that passes
through undecrypted and shows only its SNI.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from netmon.errors import ConfigError
from netmon.hosts import is_ip, normalise_host

HEADER = ("type", "value", "category", "severity", "source")
TYPES = ("url", "prefix", "domain")


@dataclass(frozen=True, slots=True)
class UrlEntry:
    type: str  # url | prefix | domain
    value: str  # normalised: "host/path?query" for url/prefix, "host" for domain
    category: str
    severity: int
    source: str
    file: str
    line: int


def url_key(url: str) -> str:
    """``host/path?query`` of a URL (scheme, port, fragment and user info dropped), the form lists use."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    parts = urlsplit(text)
    host = normalise_host(parts.hostname or "")
    path = parts.path or "/"
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


def host_suffixes(host: str) -> Iterator[str]:
    """``a.b.example.com``, ``b.example.com``, ``example.com``, ``com`` (an IP address only itself)."""
    return _suffixes(normalise_host(host))


def _suffixes(host: str) -> Iterator[str]:
    """``host_suffixes`` of a host that is already normalised."""
    if not host:
        return
    if is_ip(host):
        yield host
        return
    labels = host.split(".")
    for i in range(len(labels)):
        yield ".".join(labels[i:])


def parse_url_entry(row: list[str], where: str, line: int) -> UrlEntry:
    loc = f"{where}:{line}"
    if len(row) != len(HEADER):
        raise ConfigError(loc, f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(row)}")
    kind, value, category, severity, source = (c.strip() for c in row)
    kind = kind.lower()
    if kind not in TYPES:
        raise ConfigError(loc, f"type must be one of {', '.join(TYPES)} (got {kind!r})")
    if not value:
        raise ConfigError(loc, "value is empty")
    if kind == "domain":
        norm = normalise_host(value.split("://", 1)[-1].split("/", 1)[0])
        if not norm or " " in norm or "." not in norm and not is_ip(norm):
            raise ConfigError(loc, f"domain must be a host name such as example.com (got {value[:80]!r})")
    else:
        norm = url_key(value)
        host = norm.split("/", 1)[0]
        if value.split("://", 1)[-1].startswith("/") or ("." not in host and not is_ip(host)):
            raise ConfigError(
                loc, f"{kind} must start with a host, e.g. example.com/page (got {value[:80]!r})"
            )
    if not category:
        raise ConfigError(loc, "category is empty; give one, e.g. terrorism")
    try:
        sev = int(severity)
    except ValueError:
        raise ConfigError(loc, f"severity must be a whole number 1-5 (got {severity!r})") from None
    if not 1 <= sev <= 5:
        raise ConfigError(loc, f"severity must be 1-5 (got {sev})")
    return UrlEntry(kind, norm, category, sev, source, where, line)


def check_url_list(path: Path | str) -> tuple[tuple[UrlEntry, ...], tuple[str, ...]]:
    """(entries, errors) of a URL list; every error is ``FILE:LINE: message``."""
    where = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        return (), (f"{where}: cannot read: {exc.strerror or exc}",)
    except UnicodeDecodeError as exc:
        return (), (f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8",)
    entries: list[UrlEntry] = []
    errors: list[str] = []
    header_seen = False
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            if tuple(c.strip().lower() for c in row) != HEADER:
                errors.append(f"{where}:{line}: header must be {','.join(HEADER)} (got {','.join(row)[:80]})")
            continue
        try:
            entries.append(parse_url_entry(row, where, line))
        except ConfigError as exc:
            errors.append(str(exc))
    if not header_seen:
        errors.append(f"{where}:1: empty list; the first line must be the header {','.join(HEADER)}")
    return tuple(entries), tuple(errors)


def load_url_list(path: Path | str) -> tuple[UrlEntry, ...]:
    entries, errors = check_url_list(path)
    if errors:
        more = f" (and {len(errors) - 1} more; run `netmon lists check {path}`)" if len(errors) > 1 else ""
        raise ConfigError("", errors[0] + more)
    return entries


class UrlIndex:
    """Immutable lookup structure over URL list entries (dicts keyed by host: O(labels) per lookup)."""

    def __init__(self, entries: Iterable[UrlEntry]) -> None:
        self._urls: dict[str, list[UrlEntry]] = {}
        self._prefixes: dict[str, list[UrlEntry]] = {}  # by host
        self._domains: dict[str, list[UrlEntry]] = {}
        self.size = 0
        for e in entries:
            self.size += 1
            if e.type == "url":
                self._urls.setdefault(e.value, []).append(e)
            elif e.type == "prefix":
                self._prefixes.setdefault(e.value.split("/", 1)[0], []).append(e)
            else:
                self._domains.setdefault(e.value, []).append(e)

    def __len__(self) -> int:
        return self.size

    def match_host(self, host: str) -> tuple[UrlEntry, ...]:
        """Domain entries covering ``host`` (the host itself or a parent domain); for SNI-only traffic."""
        return self._match_domains(normalise_host(host)) if self._domains else ()

    def _match_domains(self, host: str) -> tuple[UrlEntry, ...]:
        found: list[UrlEntry] = []
        for suffix in _suffixes(host):
            found.extend(self._domains.get(suffix, ()))
        return _by_severity(found)

    def match_url(self, url: str) -> tuple[UrlEntry, ...]:
        """Every entry matching a full URL: exact URL, URL prefix, or the host's domain."""
        if not self.size:
            return ()  # runs for every request: an empty list (the allow-list, often) costs nothing
        key = url_key(url)
        host = key.split("/", 1)[0]
        base = key.split("?", 1)[0]
        found = list(self._urls.get(key, ()))
        if base != key:  # an entry without a query covers the page with any query
            found.extend(self._urls.get(base, ()))
        if base.endswith("/") and base.count("/") > 1:
            found.extend(self._urls.get(base.rstrip("/"), ()))
        for e in self._prefixes.get(host, ()):
            if key.startswith(e.value):
                found.append(e)
        if self._domains:
            found.extend(self._match_domains(host))  # ``host`` is normalised by ``url_key``
        return _by_severity(found)


def _by_severity(entries: list[UrlEntry]) -> tuple[UrlEntry, ...]:
    return tuple(sorted(entries, key=lambda e: -e.severity))


EMPTY_URL_INDEX = UrlIndex(())
