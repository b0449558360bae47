"""Filtering policy (``policy/filtering.yaml``): monitor by default, block only where a school chooses.

- ``groups.<name>.categories``: ``<category>: block`` or ``monitor`` (the default for every category).
  A person is in ``everyone`` plus their own groups, year group and role; a category is blocked for them
  when ANY of their groups blocks it.
- ``groups.<name>.safe_search``: enforce Google/Bing/DuckDuckGo safe search and YouTube restricted mode.
- ``groups.<name>.off_site`` / ``out_of_hours``: the group's keys that differ for a school-owned device
  off site (through the tunnel) or outside school hours, or ``monitor_only`` (block nothing, no safe
  search): :mod:`netmon.config.place`. Each key given replaces the group's; off site is applied last.
- ``allow``: entries (``domain``, ``prefix`` or ``url``) that always win over lists and blocking, each
  with a ``reason`` (and optionally ``added_by``, ``date``): the audit trail against over-blocking.
- ``hash_lists``, ``url_lists``: list files (relative to the policy file or absolute); ``ut1``: the
  compiled UT1 file (``auto``: the default one if imported, ``off``, or a path) and ``ut1_categories``.

:func:`load_filtering` validates the file and raises :class:`ConfigError` located by file and key.
:func:`build_lists` compiles the named lists into an immutable :class:`Lists` snapshot.

Safe search lives in :mod:`netmon.lists.safesearch`, the block page in :mod:`netmon.lists.blockpage`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netmon.config.overlay import merged_file
from netmon.config.place import (
    ALL,
    MONITOR_ONLY,
    OVERRIDES,
    Circumstances,
    apply_overrides,
    circumstances_of,
)
from netmon.errors import ConfigError
from netmon.lists.hashindex import DEFAULT_THRESHOLD, HashIndex
from netmon.lists.hashlists import load_hash_columns
from netmon.lists.urllists import UrlEntry, UrlIndex, load_url_list, parse_url_entry
from netmon.lists.ut1 import Ut1Lists
from netmon.lists.ut1 import default_path as ut1_default_path

FILE_NAME = "filtering.yaml"
EVERYONE = "everyone"
ACTIONS = ("monitor", "block")
DEFAULT_REVIEW = (
    "If you think this page was blocked by mistake, ask a member of staff to have it "
    "reviewed, quoting the reference below."
)
_TOP_KEYS = {
    "groups",
    "allow",
    "hash_lists",
    "url_lists",
    "ut1",
    "ut1_categories",
    "hash_threshold",
    "review",
    "default",
}
_SETTING_KEYS = {"categories", "safe_search"}
_GROUP_KEYS = {*_SETTING_KEYS, "description", *OVERRIDES}


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """One group's filtering on site in school hours (``actions``, ``safe_search``), with what its
    ``off_site`` / ``out_of_hours`` keys change, resolved once per combination into ``variants``."""

    name: str
    actions: Mapping[str, str] = field(default_factory=dict)  # category -> "block" | "monitor"
    safe_search: bool = False
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # as written, for `show`
    variants: Mapping[Circumstances, tuple[Mapping[str, str], bool]] = field(default_factory=dict)

    def under(self, when: Circumstances) -> tuple[Mapping[str, str], bool]:
        """(category actions, safe search) of this group ``when``."""
        return self.variants.get(when, (self.actions, self.safe_search))

    def blocks_off_site(self) -> bool:
        return "block" in self.under(Circumstances(off_site=True))[0].values()


@dataclass(frozen=True, slots=True)
class AllowEntry:
    type: str
    value: str
    reason: str
    added_by: str = ""
    date: str = ""
    where: str = ""  # "policy/filtering.yaml: allow[3]"


@dataclass(frozen=True, slots=True)
class FilterPolicy:
    path: str = ""
    groups: Mapping[str, GroupFilter] = field(default_factory=dict)
    allow_entries: tuple[AllowEntry, ...] = ()
    hash_lists: tuple[str, ...] = ()
    url_lists: tuple[str, ...] = ()
    ut1: str = "auto"  # "auto" | "off" | a path
    ut1_categories: frozenset[str] | None = None  # None: every imported category
    hash_threshold: int = DEFAULT_THRESHOLD
    review: str = DEFAULT_REVIEW
    warnings: tuple[str, ...] = ()  # located, for `netmon policy check`
    files: tuple[str, ...] = ()  # with a site's overlay: the trust-wide file, then the overlay
    _allow_index: UrlIndex = field(default_factory=lambda: UrlIndex(()))

    def names_for(self, user: Mapping[str, Any] | None, extra: Iterable[str] = ()) -> frozenset[str]:
        """Every group name that applies to a person (``everyone`` always; unidentified: only that)."""
        names = {EVERYONE, *extra}
        if user:
            names.update(str(g) for g in (user.get("groups") or ()) if g)
            for key in ("year_group", "role"):
                if user.get(key):
                    names.add(str(user[key]))
            year = str(user.get("year_group") or "").strip().casefold().replace(" ", "")
            digits = year.removeprefix("year").removeprefix("yr").removeprefix("y")
            if digits.isdigit():
                names.update({digits.lstrip("0") or "0", f"year{digits.lstrip('0') or '0'}"})
        return frozenset(names)

    def blocked(
        self, names: Iterable[str], categories: Iterable[str], when: Circumstances | None = None
    ) -> tuple[str, ...]:
        """The categories, among ``categories``, that any of the groups ``names`` blocks ``when`` (by
        default the circumstances ``names`` carries, a :class:`~netmon.config.place.Membership`, else on
        site in school hours)."""
        at = circumstances_of(names, when)
        rules = [self.groups[n].under(at)[0] for n in names if n in self.groups]
        return tuple(c for c in dict.fromkeys(categories) if any(r.get(c) == "block" for r in rules))

    def safe_search(self, names: Iterable[str], when: Circumstances | None = None) -> bool:
        at = circumstances_of(names, when)
        return any(self.groups[n].under(at)[1] for n in names if n in self.groups)

    def allowed(self, url: str) -> AllowEntry | None:
        """The allow-list entry covering ``url``, if any (allow always wins)."""
        return self._allow_for(self._allow_index.match_url(url))

    def allowed_host(self, host: str) -> AllowEntry | None:
        return self._allow_for(self._allow_index.match_host(host))

    def _allow_for(self, found: tuple[UrlEntry, ...]) -> AllowEntry | None:
        return self.allow_entries[found[0].line] if found else None

    @property
    def blocks_anything(self) -> bool:
        return any("block" in g.actions.values() for g in self.groups.values())


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(where, "must be a list of names or paths")
    return [v.strip() for v in value]


def _resolve(base: Path, item: str) -> str:
    p = Path(item).expanduser()
    return str(p if p.is_absolute() else (base / p))


def _parse_settings(settings: Mapping[str, Any], where: str, keys: set[str]) -> dict[str, Any]:
    """The filtering keys of a group or of one of its overrides, validated (only the keys given)."""
    bad = set(settings) - keys
    if bad:
        raise ConfigError(f"{where}.{sorted(bad)[0]}", f"unknown key; expected {', '.join(sorted(keys))}")
    out: dict[str, Any] = {}
    if "categories" in settings:
        cats = settings.get("categories") or {}
        if not isinstance(cats, dict):
            raise ConfigError(f"{where}.categories", "must map category -> block or monitor")
        actions: dict[str, str] = {}
        for cat, action in cats.items():
            if action not in ACTIONS:
                close = difflib.get_close_matches(str(action), ACTIONS, n=1)
                hint = f": did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"{where}.categories.{cat}", f"must be block or monitor (got {action!r}{hint})"
                )
            actions[str(cat)] = str(action)
        out["categories"] = actions
    if "safe_search" in settings:
        safe = settings["safe_search"]
        if not isinstance(safe, bool):
            raise ConfigError(f"{where}.safe_search", f"must be true or false (got {safe!r})")
        out["safe_search"] = safe
    return out


def _parse_group(name: str, settings: object, where: str) -> GroupFilter:
    settings = settings or {}
    if not isinstance(settings, dict):
        raise ConfigError(where, "must be a mapping with categories and/or safe_search")
    base: dict[str, Any] = {"categories": {}, "safe_search": False}
    own = {k: v for k, v in settings.items() if k not in OVERRIDES}
    base.update(_parse_settings(own, where, _GROUP_KEYS))
    overrides: dict[str, dict[str, Any]] = {}
    for key in OVERRIDES:
        if key not in settings:
            continue
        raw = settings[key]
        if raw == MONITOR_ONLY:
            overrides[key] = {"categories": {}, "safe_search": False}
            continue
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(
                f"{where}.{key}",
                f"must be {MONITOR_ONLY} or a mapping with categories and/or safe_search (got {raw!r})",
            )
        overrides[key] = _parse_settings(raw, f"{where}.{key}", _SETTING_KEYS)
    variants = {}
    for when in ALL:
        applied = apply_overrides(base, overrides, when)
        variants[when] = (applied["categories"], applied["safe_search"])
    return GroupFilter(name, base["categories"], base["safe_search"], overrides, variants)


def parse_filtering(data: Mapping[str, Any], path: str, base: Path | None = None) -> FilterPolicy:
    """Validate an already-read filtering mapping (``path`` names it in errors)."""
    base = base if base is not None else Path(path).parent
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: {sorted(unknown)[0]}", f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}"
        )
    if data.get("default", "monitor") != "monitor":
        raise ConfigError(f"{path}: default", "must be monitor (block categories per group instead)")
    groups: dict[str, GroupFilter] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        raise ConfigError(f"{path}: groups", "must be a mapping of group name -> settings")
    for name, settings in raw_groups.items():
        groups[str(name)] = _parse_group(str(name), settings, f"{path}: groups.{name}")
    allow: list[AllowEntry] = []
    index_entries: list[UrlEntry] = []
    raw_allow = data.get("allow") or []
    if not isinstance(raw_allow, list):
        raise ConfigError(f"{path}: allow", "must be a list of {domain|prefix|url: ..., reason: ...}")
    for i, item in enumerate(raw_allow):
        where = f"{path}: allow[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(where, "must be a mapping such as {domain: example.org, reason: why}")
        kinds = [k for k in ("domain", "prefix", "url") if k in item]
        if len(kinds) != 1:
            raise ConfigError(where, "needs exactly one of domain, prefix or url")
        kind = kinds[0]
        reason = str(item.get("reason") or "").strip()
        if not reason:
            raise ConfigError(f"{where}.reason", "every allow entry needs a reason (who asked, and why)")
        try:
            entry = parse_url_entry([kind, str(item[kind]), "allow", "1", reason], path, len(allow))
        except ConfigError as exc:
            raise ConfigError(f"{where}.{kind}", exc.message) from None
        index_entries.append(entry)
        allow.append(
            AllowEntry(
                kind, entry.value, reason, str(item.get("added_by") or ""), str(item.get("date") or ""), where
            )
        )
    ut1 = str(data.get("ut1", "auto") or "off")
    if ut1 not in ("auto", "off"):
        ut1 = _resolve(base, ut1)
    ut1_categories = data.get("ut1_categories")
    threshold = data.get("hash_threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, int) or not 0 <= threshold <= 32:
        raise ConfigError(f"{path}: hash_threshold", f"must be 0-32 bits (got {threshold!r})")
    review = data.get("review") or DEFAULT_REVIEW
    return FilterPolicy(
        warnings=_place_warnings(path, groups),
        path=path,
        groups=groups,
        allow_entries=tuple(allow),
        hash_lists=tuple(_resolve(base, p) for p in _str_list(data.get("hash_lists"), f"{path}: hash_lists")),
        url_lists=tuple(_resolve(base, p) for p in _str_list(data.get("url_lists"), f"{path}: url_lists")),
        ut1=ut1,
        ut1_categories=None
        if ut1_categories is None
        else frozenset(_str_list(ut1_categories, f"{path}: ut1_categories")),
        hash_threshold=threshold,
        review=str(review),
        _allow_index=UrlIndex(index_entries),
    )


def _place_warnings(path: str, groups: Mapping[str, GroupFilter]) -> tuple[str, ...]:
    """A group that still blocks off site, when another group says what happens off site: a category is
    blocked when ANY group blocks it, so one group's ``off_site: monitor_only`` does not lift another's."""
    if not any("off_site" in g.overrides for g in groups.values()):
        return ()
    found = []
    for g in groups.values():
        if "off_site" not in g.overrides and g.blocks_off_site():
            cats = ", ".join(sorted(c for c, a in g.under(_OFF)[0].items() if a == "block"))
            found.append(
                f"{path}: groups.{g.name}: blocks {cats} off site too "
                "(no off_site key here, and a category is blocked when any group blocks it)"
            )
    return tuple(found)


_OFF = Circumstances(off_site=True)


def load_filtering(path: Path | str, site: str | None = None) -> FilterPolicy:
    """Read and validate ``filtering.yaml`` (a missing file is an error: pass the default policy's), with
    ``sites/<site>/filtering.yaml`` beside it merged over it (``site``: default ``NETMON_SITE``); an error
    names the file that gave the value."""
    p = Path(path)
    site = os.environ.get("NETMON_SITE", "") if site is None else site
    merged = merged_file(p, site, missing="copy policy/filtering.yaml from netmon")
    overlaid = len(merged.files) > 1
    try:
        policy = parse_filtering(merged.data, merged.files[0] if overlaid else str(p), p.parent)
    except ConfigError as exc:
        raise merged.relocate(exc) from None
    if not overlaid:
        return policy
    return replace(
        policy, warnings=tuple(merged.relocate_text(w) for w in policy.warnings), files=merged.files
    )


@dataclass(frozen=True)
class Lists:
    """Everything a request or image is checked against, compiled once and swapped as one reference."""

    policy: FilterPolicy
    urls: UrlIndex
    hashes: HashIndex
    ut1: Ut1Lists | None = None
    sources: tuple[str, ...] = ()  # the files loaded, for logs and status

    def _keep(self, entries: Iterable[UrlEntry]) -> tuple[UrlEntry, ...]:
        cats = self.policy.ut1_categories
        kept = [e for e in entries if cats is None or not e.file.startswith("ut1:") or e.category in cats]
        return tuple(sorted(kept, key=lambda e: -e.severity))

    @property
    def lists_urls(self) -> bool:
        """Whether any URL or host could be listed (a URL list entry or UT1): if not, a request needs no
        lookup at all (the allow-list only ever clears a listing)."""
        return len(self.urls) > 0 or self.ut1 is not None

    def lookup_url(self, url: str) -> tuple[UrlEntry, ...]:
        """URL-list and UT1 entries for a full URL, highest severity first (allow-listed: none)."""
        if self.policy.allowed(url) is not None:
            return ()
        return self.listed(url)

    def check_url(self, url: str) -> tuple[tuple[UrlEntry, ...], AllowEntry | None]:
        """(entries, allow entry): when an allow entry applies, the entries it overrides (for the trail)."""
        allow = self.policy.allowed(url)
        return self.listed(url), allow

    def listed(self, url: str) -> tuple[UrlEntry, ...]:
        """URL-list and UT1 entries for a URL, ignoring the allow-list."""
        found = list(self.urls.match_url(url))
        if self.ut1 is not None:
            found.extend(self.ut1.match_url(url))
        return self._keep(found)

    def lookup_host(self, host: str) -> tuple[UrlEntry, ...]:
        """Domain entries for a hostname alone (SNI of traffic passed through undecrypted)."""
        if self.policy.allowed_host(host) is not None:
            return ()
        found = list(self.urls.match_host(host))
        if self.ut1 is not None:
            found.extend(self.ut1.match_host(host))
        return self._keep(found)


def build_lists(
    policy: FilterPolicy,
    extra_hash_lists: Iterable[str] = (),
    extra_url_lists: Iterable[str] = (),
    ut1_path: str = "",
) -> Lists:
    """Load every named list (policy + ``--hash-list``/``--url-list`` extras); ConfigError on any problem."""
    hash_files = list(dict.fromkeys([*policy.hash_lists, *extra_hash_lists]))
    url_files = list(dict.fromkeys([*policy.url_lists, *extra_url_lists]))
    hash_data = [load_hash_columns(f) for f in hash_files]
    url_entries = [e for f in url_files for e in load_url_list(f)]
    ut1: Ut1Lists | None = None
    chosen = ut1_path or policy.ut1
    if chosen == "auto":
        if ut1_default_path().is_file():
            ut1 = Ut1Lists(ut1_default_path())
    elif chosen != "off":
        ut1 = Ut1Lists(chosen)
    sources = (*hash_files, *url_files, *((str(ut1.path),) if ut1 else ()))
    return Lists(
        policy, UrlIndex(url_entries), HashIndex.from_lists(hash_data, policy.hash_threshold), ut1, sources
    )
