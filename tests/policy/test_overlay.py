"""Per-site policy overlays: a trust-wide policy directory with sites/<site>/ merged over it.

Merging (keys replaced per group, per recipients list and per rule; top-level keys replaced whole), errors
located in the file that gave the value, `netmon policy check` and `netmon policy show` as the real command,
a reload when the overlay changes (a broken overlay keeps the old policy), and the proxy's filtering using
this gateway's site.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from netmon_proxy.blocking import Filtering
from netmon_proxy.settings import Settings, SharedPolicy

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.config.policy import PolicySource, check_policy
from netmon.errors import ConfigError
from netmon.lists.filtering import load_filtering
from tests.lists.test_addons import Collect, _run_request

NORTH_SCHOOL = """
    school_hours: {days: [mon, tue, wed, thu, fri], start: "08:30", end: "15:30"}
    groups:
      year7: {min_severity: 3}
      nurture: {users: [amy], min_severity: 1}
"""
NORTH_ALERTS = """
    recipients:
      dsl: [north.dsl@school.example]
    rules:
      - name: high-severity
        min_severity: 5
      - name: off-site-night
        place: off_site
        when: out_of_hours
        min_severity: 4
        to: [duty@school.example]
"""


@pytest.fixture
def trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETMON_ALERT_TO", "trust.dsl@school.example")
    monkeypatch.delenv("NETMON_SITE", raising=False)
    root = tmp_path / "policy"
    shutil.copytree(DEFAULT_POLICY_DIR, root)
    north = root / "sites" / "north"
    north.mkdir(parents=True)
    (north / "school.yaml").write_text(textwrap.dedent(NORTH_SCHOOL))
    (north / "alerts.yaml").write_text(textwrap.dedent(NORTH_ALERTS))
    return root


def test_the_site_overlay_replaces_keys_per_group_and_rule(trust: Path) -> None:
    trust_wide, _ = check_policy(trust, site="")
    north, problems = check_policy(trust, site="north")
    assert trust_wide is not None and north is not None, problems.errors
    # a group's keys given by the site replace the trust's; its other keys stay
    assert trust_wide.groups["year7"].recording.min_severity == 1  # type: ignore[union-attr]
    assert north.groups["year7"].recording.min_severity == 3  # type: ignore[union-attr]
    assert north.groups["year7"].year_groups == {"7"} and north.groups["year7"].description
    assert "nurture" in north.groups and "nurture" not in trust_wide.groups  # added by the site
    assert set(trust_wide.groups) < set(north.groups)
    # top-level keys are replaced whole
    assert (north.hours.start.hour, north.hours.start.minute, north.hours.end.hour) == (8, 30, 15)
    # recipients lists by name, rules by name: keys replaced, new rules added
    assert north.recipients["dsl"] == ("north.dsl@school.example",)
    rules = {r.name: r for r in north.rules}
    assert rules["high-severity"].min_severity == 5 and rules["high-severity"].to == (
        "north.dsl@school.example",
    )
    assert rules["off-site-night"].place == "off_site" and rules["off-site-night"].when == "out_of_hours"
    assert north.site == "north" and "policy/sites/north/school.yaml" in north.files
    # another site, without an overlay: the trust-wide policy, with a warning naming the sites there are
    south, problems = check_policy(trust, site="south")
    assert south is not None and south.groups.keys() == trust_wide.groups.keys()
    assert any("no overlay for site 'south' (sites here: north)" in w for w in problems.warnings)


def test_empty_entries_in_an_overlay_change_nothing(trust: Path) -> None:
    (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7:\n")
    (trust / "sites" / "north" / "alerts.yaml").write_text("rules:\n")
    north, problems = check_policy(trust, site="north")
    trust_wide, _ = check_policy(trust, site="")
    assert north is not None and trust_wide is not None, problems.errors
    assert north.groups == trust_wide.groups and north.rules == trust_wide.rules


def test_an_error_names_the_file_that_gave_the_value(trust: Path) -> None:
    (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7: {min_severity: 7}\n")
    policy, problems = check_policy(trust, site="north")
    assert policy is None
    assert [str(e) for e in problems.errors] == [
        "policy/sites/north/school.yaml: groups.year7.min_severity: must be 1-5 (got 7)"
    ]
    (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7: {description: fine}\n")
    (trust / "school.yaml").write_text("groups:\n  year7: {year_groups: ['7'], min_severity: 9}\n")
    policy, problems = check_policy(trust, site="north")
    assert [str(e) for e in problems.errors] == [
        "policy/school.yaml: groups.year7.min_severity: must be 1-5 (got 9)"
    ]
    (trust / "sites" / "north" / "alerts.yaml").write_text(
        "rules:\n  - name: high-severity\n    place: away\n"
    )
    _, problems = check_policy(trust, site="north")
    assert any(
        str(e).startswith("policy/sites/north/alerts.yaml: rules.high-severity.place: must be any, on_site")
        for e in problems.errors
    ), problems.errors
    (trust / "sites" / "north" / "alerts.yaml").write_text("rules: [\n")
    _, problems = check_policy(trust, site="north")
    assert str(problems.errors[-1]).startswith(
        "policy/sites/north/alerts.yaml: line 2, column 1: invalid YAML"
    )


def test_filtering_overlay_with_its_own_lists_and_located_errors(trust: Path) -> None:
    north = trust / "sites" / "north"
    (north / "lists").mkdir()
    (north / "lists" / "local.csv").write_text(
        "type,value,category,severity,source\ndomain,bet.example,gambling,2,north\n"
    )
    (north / "filtering.yaml").write_text(
        "groups:\n  everyone: {categories: {gambling: block}, off_site: monitor_only}\n"
        "url_lists: [lists/local.csv]\n"
    )
    policy = load_filtering(trust / "filtering.yaml", "north")
    assert policy.url_lists == (str(north / "lists" / "local.csv"),)  # relative to the overlay
    assert policy.blocked({"everyone"}, ["gambling"]) == ("gambling",)
    assert load_filtering(trust / "filtering.yaml", "").blocked({"everyone"}, ["gambling"]) == ()
    (north / "filtering.yaml").write_text("groups:\n  everyone: {off_site: {categories: {gambling: stop}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_filtering(trust / "filtering.yaml", "north")
    assert (
        caught.value.where
        == "policy/sites/north/filtering.yaml: groups.everyone.off_site.categories.gambling"
    )


def _netmon(*args: str, cwd: Path, site: str = "") -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "NETMON_SITE": site, "NETMON_ALERT_TO": "dsl@school.example"}
    return subprocess.run(
        [sys.executable, "-m", "netmon", "policy", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_policy_show_and_check_name_where_each_value_came_from(trust: Path) -> None:
    shown = _netmon("show", "policy", "--file", "school.yaml", cwd=trust.parent, site="north")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "# site north: policy/sites/north over policy"
    assert "school.yaml groups.year7.min_severity = 3  (from policy/sites/north/school.yaml)" in lines
    assert 'school.yaml groups.year7.year_groups = ["7"]  (from policy/school.yaml)' in lines
    assert 'school.yaml timezone = "Europe/London"  (from policy/school.yaml)' in lines
    alerts = _netmon("show", "policy", "--file", "alerts.yaml", "--site", "north", cwd=trust.parent).stdout
    assert (
        'alerts.yaml rules.off-site-night.place = "off_site"  (from policy/sites/north/alerts.yaml)' in alerts
    )
    assert 'alerts.yaml rules.high-severity.urgency = "immediate"  (from policy/alerts.yaml)' in alerts
    # without a site: the trust-wide files alone
    plain = _netmon("show", "policy", "--file", "school.yaml", cwd=trust.parent).stdout
    assert "sites/north" not in plain and "groups.year7.min_severity = 1  (from policy/school.yaml)" in plain
    checked = _netmon("check", "policy", cwd=trust.parent, site="north")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("policy OK for site north (overlay policy/sites/north): 7 groups")
    (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7: {min_severity: 7}\n")
    broken = _netmon("check", "policy", cwd=trust.parent, site="north")
    assert broken.returncode == 1
    assert (
        "error: policy/sites/north/school.yaml: groups.year7.min_severity: must be 1-5 (got 7)"
        in broken.stderr
    )


def test_an_overlay_edit_is_reloaded_and_a_broken_one_keeps_the_old_policy(
    trust: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETMON_SITE", "north")
    source = PolicySource(trust, interval=0.05).start()
    try:
        first = source.current
        assert first.groups["year7"].recording.min_severity == 3  # type: ignore[union-attr]
        (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7: {min_severity: 2}\n")
        deadline = time.monotonic() + 10
        while source.current is first and time.monotonic() < deadline:
            time.sleep(0.05)
        second = source.current
        assert second.groups["year7"].recording.min_severity == 2  # type: ignore[union-attr]
        (trust / "sites" / "north" / "school.yaml").write_text("groups:\n  year7: {min_severity: 8}\n")
        deadline = time.monotonic() + 10
        while source.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.current is second
        assert str(source.last_error).startswith("policy/sites/north/school.yaml: groups.year7.min_severity")
    finally:
        source.stop()


async def test_the_proxy_filters_with_its_site_overlay(trust: Path) -> None:
    north = trust / "sites" / "north"
    (trust / "urls.csv").write_text(
        "type,value,category,severity,source\ndomain,casino.example,gambling,2,trust\n"
    )
    (trust / "filtering.yaml").write_text("groups: {}\nurl_lists: [urls.csv]\nut1: off\n")
    (north / "filtering.yaml").write_text("groups:\n  everyone: {categories: {gambling: block}}\n")
    for site, status in (("north", 403), ("south", 200)):
        addon = Filtering(Collect(), SharedPolicy())
        with taddons.context(Settings(), addon) as tctx:
            tctx.configure(
                addon.state,
                netmon_policy=str(trust),
                netmon_site=site,
                netmon_state_dir=str(trust.parent),
                netmon_lists_reload=0,
            )
            flow = tflow.tflow()
            flow.request = http.Request.make("GET", "https://www.casino.example/")
            flow.request.headers["Host"] = "www.casino.example"
            await _run_request(addon, flow)
            assert flow.response is not None and flow.response.status_code == status, site


def test_the_proxy_option_netmon_site_chooses_the_overlay_for_every_part(trust: Path) -> None:
    """`--set netmon_site=north` (not only NETMON_SITE) gives the alerts and the filtering north's policy."""
    shared = SharedPolicy()
    source = shared.use(trust, site="north")
    assert source.current.site == "north" and source.current.recipients["dsl"] == ("north.dsl@school.example",)
    assert shared.use(trust, site="north") is source  # one source shared by every caller with the same site
    trust_wide = shared.use(trust, site="")
    assert trust_wide is not source and trust_wide.current.site == ""
    assert "nurture" not in trust_wide.current.groups


def test_a_site_named_as_people_write_it(trust: Path, tmp_path: Path) -> None:
    """NETMON_SITE is also the name on every incident: 'Main site' works, with or without an overlay;
    a name that is a path is refused where overlays are in use, and ignored where they are not."""
    plain = tmp_path / "plain"
    shutil.copytree(DEFAULT_POLICY_DIR, plain)
    policy, problems = check_policy(plain, site="Main site")
    assert policy is not None and not problems.errors
    policy, problems = check_policy(plain, site="../north")  # no sites/ here: no overlay to look for
    assert policy is not None and not problems.errors
    (trust / "sites" / "Main site").mkdir()
    (trust / "sites" / "Main site" / "school.yaml").write_text(textwrap.dedent(NORTH_SCHOOL))
    policy, problems = check_policy(trust, site="Main site")
    assert policy is not None and policy.site == "Main site", problems.errors
    policy, problems = check_policy(trust, site="../north")
    assert policy is None and any("cannot name a directory" in str(e) for e in problems.errors)
