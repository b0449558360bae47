"""Where and when a request happens, as the gateway knows it: off site, and out of school hours.

A policy group may set different values ``off_site:`` (a school-owned device that came through the
WireGuard tunnel: its tunnel address, fixed by the gateway per peer, names it; nothing the device sends
can) and ``out_of_hours:`` (outside ``school_hours`` in ``school.yaml``). :class:`Circumstances` is that
pair; :func:`apply_overrides` gives a group's settings under it: the group's own keys, then the keys its
``out_of_hours`` mapping gives (when out of hours), then the keys its ``off_site`` mapping gives (when off
site). Each key given replaces the group's value as a whole; off site is applied last, so it wins.

``monitor_only`` is the shorthand of an override that blocks nothing and forces no safe search
(``{categories: {}, safe_search: false}``); recording and alerts are not filtering and go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The override keys of a group, in the order they are applied (the last wins).
OVERRIDES = ("out_of_hours", "off_site")
MONITOR_ONLY = "monitor_only"


@dataclass(frozen=True, slots=True)
class Circumstances:
    """Off site (came through the tunnel) and out of school hours, for one request."""

    off_site: bool = False
    out_of_hours: bool = False

    @property
    def label(self) -> str:
        place = "off site" if self.off_site else "on site"
        return f"{place}, {'out of hours' if self.out_of_hours else 'in school hours'}"


ON_SITE = Circumstances()
#: Every combination, for tables built once at load time.
ALL = tuple(Circumstances(off, ooh) for off in (False, True) for ooh in (False, True))


def apply_overrides(
    base: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]], when: Circumstances
) -> dict[str, Any]:
    """``base`` with the keys of the overrides that hold ``when`` replaced, in :data:`OVERRIDES` order."""
    out = dict(base)
    for name in OVERRIDES:
        if getattr(when, name) and name in overrides:
            out.update(overrides[name])
    return out


class Membership(frozenset[str]):
    """A person's group names together with the circumstances of the request they are asked for.

    It is a frozenset of names (every caller that only wants the names is unchanged); a policy that
    differs by place or time reads :attr:`when` from it.
    """

    when: Circumstances

    def __new__(cls, names: Iterable[str] = (), when: Circumstances = ON_SITE) -> Membership:
        self = super().__new__(cls, names)
        self.when = when
        return self


def circumstances_of(names: Iterable[str], when: Circumstances | None = None) -> Circumstances:
    """``when`` if given, else what a :class:`Membership` carries, else on site in school hours."""
    if when is not None:
        return when
    return getattr(names, "when", ON_SITE)
