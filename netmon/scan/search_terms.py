"""Search terms in URLs: ``search_query(url) -> (engine, query) | None``.

The engines live in a data table, ``search_engines.yaml`` next to this module (format described at its
top), compiled once into host and path regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from netmon.errors import ConfigError

ENGINES_FILE = Path(__file__).with_name("search_engines.yaml")

#: What "{tld}" in a host pattern stands for: a generic or country TLD, optionally after com/co/...
_TLD = r"(?:[a-z]{2,6}|(?:com|co|org|net|ac|gov|edu|ne|or|go)\.[a-z]{2})"
#: Longest query kept (characters); a query is typed, never a page.
MAX_QUERY = 2048


@dataclass(frozen=True, slots=True)
class _Path:
    pattern: re.Pattern[str]
    params: tuple[str, ...]  # empty: the query is the path's "{query}" group


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    host: re.Pattern[str]
    paths: tuple[_Path, ...]


def _host_regex(patterns: list[str], where: str) -> re.Pattern[str]:
    alts = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(where, f"host pattern must be a non-empty string (got {pattern!r})")
        alts.append(re.escape(pattern.strip().lower()).replace(r"\{tld\}", _TLD))
    return re.compile(r"(?:.+\.)?(?:" + "|".join(alts) + r")\.?")


def _path_regex(path: str) -> re.Pattern[str]:
    pieces = [p for p in re.split(r"(\{query\}|\*)", path) if p]
    out = []
    for i, piece in enumerate(pieces):
        if piece == "{query}":
            out.append(r"(?P<query>[^/]+)")
        elif piece == "*":
            out.append(".*" if i == len(pieces) - 1 else "[^/]+")  # "*" at the end: any rest
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out))


def load_engines(path: Path = ENGINES_FILE) -> tuple[Engine, ...]:
    """Read and compile the engines table (raises ConfigError naming the file and key)."""
    from netmon.config.yamlfile import load_yaml

    try:
        doc = load_yaml(path)
    except ConfigError as exc:
        raise ConfigError(exc.where, f"cannot read the search engines table: {exc.message}") from None
    engines = doc.get("engines")
    if not isinstance(engines, dict) or not engines:
        raise ConfigError(str(path), "engines: must be a mapping of engine name -> hosts and paths")
    out = []
    for name, spec in engines.items():
        where = f"{path}: engines.{name}"
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("hosts"), list)
            or not isinstance(spec.get("paths"), dict)
        ):
            raise ConfigError(where, "needs 'hosts' (a list) and 'paths' (a mapping path -> parameter)")
        paths = []
        for p, params in spec["paths"].items():
            if not isinstance(p, str) or not p.startswith("/"):
                raise ConfigError(f"{where}.paths", f"path must start with '/' (got {p!r})")
            names = (params,) if isinstance(params, str) else tuple(params or ())
            if not names and "{query}" not in p:
                raise ConfigError(f"{where}.paths.{p}", "give a query parameter, or {query} in the path")
            paths.append(_Path(_path_regex(p), names))
        out.append(Engine(str(name), _host_regex(spec["hosts"], f"{where}.hosts"), tuple(paths)))
    return tuple(out)


@cache
def engines() -> tuple[Engine, ...]:
    """The shipped engines table, compiled once per process."""
    return load_engines()


def _clean(query: str) -> str | None:
    query = " ".join(query.split())[:MAX_QUERY]
    return query or None


def search_query(url: str, host: str | None = None) -> tuple[str, str] | None:
    """The search engine and the terms searched for, when ``url`` is a search on a known engine.

    ``host`` overrides the URL's host (a proxy in transparent mode may only have an IP in the URL).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    hostname = (host or parts.hostname or "").lower()
    if not hostname:
        return None
    path = parts.path or "/"
    for engine in engines():
        if not engine.host.fullmatch(hostname):
            continue
        for rule in engine.paths:
            m = rule.pattern.fullmatch(path)
            if m is None:
                continue
            if not rule.params:
                found = _clean(
                    unquote(m.group("query"), errors="replace").replace("+", " ").replace("_", " ")
                )
            else:
                query = parse_qs(parts.query, keep_blank_values=False, errors="replace")
                found = next(
                    (q for name in rule.params for v in query.get(name, ()) if (q := _clean(v))), None
                )
            if found:
                return engine.name, found
    return None
