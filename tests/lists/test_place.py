"""Filtering by place and time: a group's ``off_site:`` / ``out_of_hours:`` keys in filtering.yaml.

Core: parsing, the decision under each circumstance, located errors and the warning. Addons (taddons and
tflow, real hooks): an off-site device (the identity the tunnel address gave it) is monitored but not
blocked, safe search is left alone, and the incident says why; on site the same request is blocked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from netmon_proxy.blocking import Filtering
from netmon_proxy.settings import Settings, SharedPolicy

from netmon.config.place import ON_SITE, Circumstances, Membership
from netmon.errors import ConfigError
from netmon.lists.filtering import EVERYONE, parse_filtering
from netmon.lists.imagehashing import hash_image
from tests.lists.images import encode, picture
from tests.lists.test_addons import Collect, _run_request

OFF = Circumstances(off_site=True)
NIGHT = Circumstances(out_of_hours=True)
OFF_NIGHT = Circumstances(off_site=True, out_of_hours=True)

POLICY = {
    "groups": {
        "everyone": {"categories": {"terrorism": "block"}, "off_site": "monitor_only"},
        "year7": {
            "categories": {"gambling": "block"},
            "safe_search": True,
            "out_of_hours": {"categories": {"gambling": "block", "adult": "block"}},
            "off_site": {"safe_search": False, "categories": {}},
        },
        "staff": {"out_of_hours": {"categories": {"gambling": "block"}}, "off_site": "monitor_only"},
    }
}


def test_each_circumstance_has_its_own_decision() -> None:
    policy = parse_filtering(POLICY, "policy/filtering.yaml")
    year7 = {EVERYONE, "year7"}
    cats = ["terrorism", "gambling", "adult"]
    assert policy.blocked(year7, cats) == ("terrorism", "gambling")  # on site, in hours
    assert policy.blocked(year7, cats, NIGHT) == ("terrorism", "gambling", "adult")
    assert policy.blocked(year7, cats, OFF) == ()  # off site: monitor only
    assert policy.blocked(year7, cats, OFF_NIGHT) == ()  # off site is applied last: it wins
    assert policy.safe_search(year7) and policy.safe_search(year7, NIGHT)
    assert not policy.safe_search(year7, OFF)
    assert policy.blocked({EVERYONE, "staff"}, cats, NIGHT) == ("terrorism", "gambling")
    # the circumstances travel with the names (what the addons hand to the policy)
    assert policy.blocked(Membership(year7, OFF), cats) == ()
    assert policy.blocked(Membership(year7, ON_SITE), cats) == ("terrorism", "gambling")
    assert policy.warnings == ()


def test_a_group_without_off_site_still_blocks_there_and_check_says_so() -> None:
    data = {"groups": {"everyone": {"off_site": "monitor_only"}, "year7": {"categories": {"adult": "block"}}}}
    policy = parse_filtering(data, "policy/filtering.yaml")
    assert policy.blocked({EVERYONE, "year7"}, ["adult"], OFF) == ("adult",)
    assert policy.warnings == (
        "policy/filtering.yaml: groups.year7: blocks adult off site too (no off_site key here, and a "
        "category is blocked when any group blocks it)",
    )


@pytest.mark.parametrize(
    ("group", "where", "message"),
    [
        (
            {"off_site": {"categories": {"adult": "blok"}}},
            "groups.year7.off_site.categories.adult",
            "must be block or monitor (got 'blok': did you mean 'block'?)",
        ),
        ({"off_site": {"colour": "red"}}, "groups.year7.off_site.colour", "unknown key"),
        ({"out_of_hours": "monitor"}, "groups.year7.out_of_hours", "must be monitor_only or a mapping"),
        ({"off_site": {"off_site": "monitor_only"}}, "groups.year7.off_site.off_site", "unknown key"),
        ({"out_of_hours": {"safe_search": "yes"}}, "groups.year7.out_of_hours.safe_search", "true or false"),
    ],
)
def test_mistakes_are_located(group: dict, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_filtering({"groups": {"year7": group}}, "policy/filtering.yaml")
    assert caught.value.where == f"policy/filtering.yaml: {where}"
    assert message in caught.value.message


# --- the addons ------------------------------------------------------------------------------------------


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "urls.csv").write_text(
        "type,value,category,severity,source\ndomain,casino.example,gambling,2,local\n"
    )
    (tmp_path / "filtering.yaml").write_text(
        "groups:\n"
        "  year7:\n"
        "    categories: {gambling: block}\n"
        "    safe_search: true\n"
        "    off_site: monitor_only\n"
        "url_lists: [urls.csv]\nut1: off\n"
    )
    return tmp_path


def _flow(url: str, *, off_site: bool) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make("GET", url)
    f.request.headers["Host"] = f.request.host
    user = {"user": "alice", "role": "pupil", "year_group": "7", "groups": ["year7"], "mac": None}
    if off_site:  # what IdentityTagger sets from the device directory, by the tunnel address
        user.update(device="lt-001", site="", off_site=True)
    f.metadata["netmon.user"] = user
    return f


async def test_off_site_device_is_monitored_not_blocked(policy_dir: Path) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(
            addon.state, netmon_filtering=str(policy_dir / "filtering.yaml"), netmon_lists_reload=0
        )
        on_site = _flow("https://www.casino.example/slots", off_site=False)
        await _run_request(addon, on_site)
        assert on_site.response is not None and on_site.response.status_code == 403
        off_site = _flow("https://www.casino.example/slots", off_site=True)
        await _run_request(addon, off_site)
        assert off_site.response is not None and off_site.response.status_code == 200
        assert off_site.response.content == b"<html>page</html>"
        blocked, monitored = collect.results
        assert blocked.evidence["blocked"] is True
        assert monitored.evidence["blocked"] is False and monitored.context.device == "lt-001 (off-site)"
        assert monitored.evidence["not_blocked"].startswith("off site, ")
        assert monitored.hits[0].category == "gambling"


async def test_off_site_device_gets_no_safe_search(policy_dir: Path) -> None:
    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        tctx.configure(
            addon.state, netmon_filtering=str(policy_dir / "filtering.yaml"), netmon_lists_reload=0
        )
        on_site = _flow("https://www.google.com/search?q=cats&safe=off", off_site=False)
        await _run_request(addon, on_site)
        assert on_site.request.query.get_all("safe") == ["active"]
        off_site = _flow("https://www.google.com/search?q=cats&safe=off", off_site=True)
        await _run_request(addon, off_site)
        assert off_site.request.query.get_all("safe") == ["off"]


async def test_nothing_the_device_sends_makes_it_off_site(policy_dir: Path) -> None:
    """Off site is the identity's flag, set by the gateway from the tunnel address: a header is not it."""
    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        tctx.configure(
            addon.state, netmon_filtering=str(policy_dir / "filtering.yaml"), netmon_lists_reload=0
        )
        f = _flow("https://www.casino.example/", off_site=False)
        f.request.headers["X-Netmon-Off-Site"] = "1"
        f.request.headers["User-Agent"] = "lt-001 (off-site)"
        await _run_request(addon, f)
        assert f.response is not None and f.response.status_code == 403


def test_out_of_hours_comes_from_the_school_hours(tmp_path: Path) -> None:
    (tmp_path / "school.yaml").write_text(
        "timezone: Europe/London\n"
        'school_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "17:00"}\n'
    )
    (tmp_path / "alerts.yaml").write_text("rules: []\n")
    (tmp_path / "filtering.yaml").write_text("groups: {}\nut1: off\n")
    shared = SharedPolicy()
    addon = Filtering(Collect(), shared)
    with taddons.context(Settings(), addon) as tctx:
        tctx.configure(
            addon.state, netmon_policy=str(tmp_path), netmon_state_dir=str(tmp_path), netmon_lists_reload=0
        )
        state = addon.state
        monday_noon = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        monday_night = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
        saturday = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
        assert state.circumstances({"user": "a"}, monday_noon) == ON_SITE
        assert state.circumstances({"user": "a"}, monday_night) == NIGHT
        assert state.circumstances({"user": "a", "off_site": True}, saturday) == OFF_NIGHT
        assert state.names_for({"user": "a", "off_site": True}, monday_noon).when == OFF


async def test_a_known_image_is_recorded_not_blocked_off_site(tmp_path: Path) -> None:
    """The image scanner follows the same decision: held and blocked on site, passed and recorded off site."""
    from tests.lists.test_addons import _image_flow, respond

    known = encode(picture(21), "JPEG", quality=90)
    hashes = hash_image(known)
    sha = hashes.sha256  # type: ignore[union-attr]
    (tmp_path / "hashes.csv").write_text(f"type,hash,category,severity,source\nsha256,{sha},csam,5,IWF\n")
    (tmp_path / "filtering.yaml").write_text(
        "groups:\n  year7: {categories: {csam: block}, off_site: monitor_only}\n"
        "hash_lists: [hashes.csv]\nut1: off\n"
    )
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, netmon_filtering=str(tmp_path / "filtering.yaml"), netmon_lists_reload=0)
        addon.images.running()
        on_site = _image_flow("https://img.test/a.jpg", known, "image/jpeg", ["year7"])
        await respond(addon, on_site)
        off_site = _image_flow("https://img.test/b.jpg", known, "image/jpeg", ["year7"])
        off_site.metadata["netmon.user"].update(device="lt-001", off_site=True)
        await respond(addon, off_site)
        addon.images.done()
        assert on_site.response is not None and on_site.response.status_code == 403
        assert off_site.response is not None and off_site.response.status_code == 200
        assert off_site.response.content == known
        results = {r.context.url: r.evidence["blocked"] for r in collect.results}
        assert results == {"https://img.test/a.jpg": True, "https://img.test/b.jpg": False}


def test_policy_check_warns_of_a_group_that_still_blocks_off_site(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    from netmon.config.paths import DEFAULT_POLICY_DIR

    shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policy")
    (tmp_path / "policy" / "filtering.yaml").write_text(
        "groups:\n  everyone: {off_site: monitor_only}\n  year7: {categories: {adult: block}}\nut1: off\n"
    )
    env = {**os.environ, "NETMON_ALERT_TO": "dsl@school.example", "NETMON_SITE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "netmon", "policy", "check", "policy"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "warning: policy/filtering.yaml: groups.year7: blocks adult off site too (no off_site key here, "
        "and a category is blocked when any group blocks it)"
    ) in done.stderr
