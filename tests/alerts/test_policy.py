"""Policy loading and validation: located messages, groups and recording, reload without restart,
`netmon policy check`, and the alerts migration matching its model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.config.policy import PolicyWatcher, check_policy, load_policy, normalise_year
from netmon.errors import ConfigError

from .conftest import write_policy

SCHOOL = """
    timezone: Europe/London
    default: {min_severity: 2}
    groups:
      year7: {year_groups: [7], min_severity: 1}
      sixth-form: {year_groups: ["12", "13"], min_severity: 3, categories: [suicide, self_harm]}
      staff: {roles: [staff], categories: {suicide: 4, self_harm: 5}}
      high-risk: {users: [Alice], min_severity: 1}
      tutor-group: {users_file: tutor.txt}
      ks3: {year_groups: [7, 8, 9]}
"""
ALERTS = "rules: []\n"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    root = write_policy(tmp_path / "policy", ALERTS, SCHOOL)
    (root / "tutor.txt").write_text("# tutor group 7B\nbob\ncarol\n")
    return root


def test_default_policy_is_valid() -> None:
    policy, problems = check_policy(DEFAULT_POLICY_DIR, env={"NETMON_ALERT_TO": "dsl@school"})
    assert policy is not None and problems.errors == [] and problems.warnings == []
    (rule,) = policy.rules
    assert rule.min_severity == 4 and rule.urgency == "immediate" and rule.to == ("dsl@school",)


def test_alert_to_may_list_several_addresses() -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, env={"NETMON_ALERT_TO": "a@school, b@school"})
    assert policy.rules[0].to == ("a@school", "b@school")


@pytest.mark.parametrize(
    ("user", "role", "year", "extra", "expected"),
    [
        ("x", "pupil", "7", (), {"year7", "ks3"}),
        ("x", "pupil", "Year 7", (), {"year7", "ks3"}),
        ("x", "pupil", "Y08", (), {"ks3"}),
        ("x", "pupil", "13", (), {"sixth-form"}),
        ("t", "staff", None, (), {"staff"}),
        ("alice", "pupil", "12", (), {"high-risk", "sixth-form"}),
        ("BOB", "pupil", "10", ("form-10b",), {"tutor-group", "form-10b"}),
        (None, None, None, (), set()),
    ],
)
def test_groups_for(
    policy_dir: Path,
    user: str | None,
    role: str | None,
    year: str | None,
    extra: tuple[str, ...],
    expected: set[str],
) -> None:
    assert load_policy(policy_dir).groups_for(user, role, year, extra) == frozenset(expected)


@pytest.mark.parametrize(
    ("groups", "category", "severity", "recorded"),
    [
        ((), "gambling", 1, False),  # default: from 2
        ((), "gambling", 2, True),
        (("year7", "ks3"), "gambling", 1, True),
        (("ks3",), "gambling", 1, False),  # ks3 does not decide recording: the default applies
        (("sixth-form",), "suicide", 2, False),
        (("sixth-form",), "suicide", 3, True),
        (("sixth-form",), "gambling", 5, False),  # not in its categories
        (("staff",), "suicide", 3, False),
        (("staff",), "suicide", 4, True),
        (("staff",), "self_harm", 4, False),
        (("staff",), "gambling", 5, False),
        (("sixth-form", "high-risk"), "gambling", 1, True),  # any deciding group that records it
    ],
)
def test_records(
    policy_dir: Path, groups: tuple[str, ...], category: str, severity: int, recorded: bool
) -> None:
    assert load_policy(policy_dir).records(groups, category, severity) is recorded


@pytest.mark.parametrize("value", [7, "7", "Year 7", "year7", "Y7", "y07", " 7 "])
def test_normalise_year(value: object) -> None:
    assert normalise_year(value) == "7"


BROKEN = [
    (
        "school",
        "groups:\n  year7:\n    year_groups: [7]\n    min_severity: 7\n",
        "school.yaml: groups.year7.min_severity: must be 1-5 (got 7)",
    ),
    (
        "school",
        "groups:\n  year7:\n    min_severty: 2\n",
        "school.yaml: groups.year7.min_severty: unknown key",
    ),
    (
        "school",
        "default:\n  categories: [self_harm, sport]\n",
        "school.yaml: default.categories: unknown category 'sport'",
    ),
    ("school", "timezone: Mars/Olympus\n", "school.yaml: timezone: unknown time zone 'Mars/Olympus'"),
    (
        "school",
        "school_hours: {start: '16:00', end: '09:00'}\n",
        "school.yaml: school_hours.end: must be after",
    ),
    ("school", "groups: [a, b\n", "school.yaml: line "),
    (
        "alerts",
        "rules:\n  - name: x\n    min_severity: 0\n    to: [a@b]\n",
        "alerts.yaml: rules.x.min_severity: must be 1-5 (got 0)",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    urgency: whenever\n    to: [a@b]\n",
        "alerts.yaml: rules.x.urgency: must be immediate or digest (got 'whenever')",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    to: [not-an-address]\n",
        "alerts.yaml: rules.x.to: 'not-an-address' is not an e-mail address",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    repeat: {count: 0, within: 1h}\n    to: [a@b]\n",
        "alerts.yaml: rules.x.repeat.count: must be a whole number >= 1 (got 0)",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    repeat: {count: 3, within: soon}\n    to: [a@b]\n",
        "alerts.yaml: rules.x.repeat.within: must be a duration",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    sources: [email]\n    to: [a@b]\n",
        "alerts.yaml: rules.x.sources: unknown source 'email'",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    when: lunchtime\n    to: [a@b]\n",
        "alerts.yaml: rules.x.when: must be any, out_of_hours or in_hours",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    cooldown: forever\n    to: [a@b]\n",
        "alerts.yaml: rules.x.cooldown: must be a duration",
    ),
    (
        "alerts",
        "rules:\n  - name: x\n    to: [a@b]\n  - name: x\n    to: [a@b]\n",
        "alerts.yaml: rules.x.name: duplicate rule name",
    ),
    ("alerts", "rules:\n  - min_severity: 3\n", "alerts.yaml: rules[0].name: every rule needs a name"),
    (
        "alerts",
        "rules:\n  - name: x\n    categories: [homework]\n    to: [a@b]\n",
        "alerts.yaml: rules.x.categories: unknown category 'homework'",
    ),
    ("alerts", "sendmail: yes\n", "alerts.yaml: sendmail: unknown key"),
]


@pytest.mark.parametrize(("which", "text", "message"), BROKEN)
def test_errors_name_file_and_key(tmp_path: Path, which: str, text: str, message: str) -> None:
    root = write_policy(
        tmp_path / "policy",
        text if which == "alerts" else ALERTS,
        text if which == "school" else "groups: {}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_policy(root)
    assert message in str(info.value)
    assert str(info.value).startswith(str(root) + os.sep) or str(info.value).startswith("policy/")


def test_missing_files_mean_defaults_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    policy, problems = check_policy(tmp_path / "p")
    assert policy is not None and policy.rules == () and policy.groups == {}
    assert policy.records((), "gambling", 1)
    assert any("school.yaml: file not found" in w for w in problems.warnings)
    with pytest.raises(ConfigError, match=r"no such policy directory"):
        load_policy(tmp_path / "nowhere")


def test_watcher_reloads_and_keeps_the_old_policy_on_a_broken_edit(policy_dir: Path) -> None:
    reloaded = []
    watcher = PolicyWatcher(policy_dir, interval=0.05, on_reload=reloaded.append).start()
    try:
        first = watcher.current
        assert "year7" in first.groups
        (policy_dir / "alerts.yaml").write_text("rules:\n  - name: new\n    to: [dsl@school]\n")
        deadline = time.monotonic() + 10
        while watcher.current is first and time.monotonic() < deadline:
            time.sleep(0.05)
        second = watcher.current
        assert [r.name for r in second.rules] == ["new"]
        (policy_dir / "school.yaml").write_text("groups:\n  year7: {min_severity: 9}\n")
        deadline = time.monotonic() + 10
        while watcher.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.current is second
        assert "groups.year7.min_severity: must be 1-5 (got 9)" in str(watcher.last_error)
        (policy_dir / "tutor.txt").write_text("dave\n")
        (policy_dir / "school.yaml").write_text(textwrap.dedent(SCHOOL))
        deadline = time.monotonic() + 10
        while watcher.current is second and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.current.groups_for("dave", None, None) == {"tutor-group"}
        assert watcher.last_error is None and len(reloaded) == 2
    finally:
        watcher.stop()


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netmon", "policy", "check", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_policy_check_command(tmp_path: Path, policy_dir: Path) -> None:
    ok = cli(str(policy_dir))
    assert ok.returncode == 0, ok.stderr
    assert "policy OK" in ok.stdout
    (policy_dir / "school.yaml").write_text("groups:\n  year7:\n    min_severity: 7\n  y8: {roles: 3x}\n")
    (policy_dir / "alerts.yaml").write_text("rules:\n  - name: r\n    urgency: soon\n    to: [x@y]\n")
    bad = subprocess.run(
        [sys.executable, "-m", "netmon", "policy", "check", "policy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert bad.returncode == 1
    lines = bad.stderr.splitlines()
    assert "error: policy/school.yaml: groups.year7.min_severity: must be 1-5 (got 7)" in lines
    assert any(line.startswith("error: policy/alerts.yaml: rules.r.urgency:") for line in lines)


def test_policy_check_default_warns_without_alert_to() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NETMON_ALERT_TO"}
    done = subprocess.run(
        [sys.executable, "-m", "netmon", "policy", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0
    assert "NETMON_ALERT_TO is not set" in done.stderr


def test_alerts_migration_matches_the_model(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import netmon.store.models  # noqa: F401
    from netmon.store.base import Base
    from netmon.store.db import make_engine

    engine = make_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    mine = [d for d in diff if "alerts" in repr(d) and "audit" not in repr(d)]
    assert mine == []


def test_other_spellings_are_accepted(tmp_path: Path) -> None:
    school = """
        groups:
          year7: {year_group: 7, recording: {severity: "2", category: [suicide]}}
          carers: {members: [zoe]}
    """
    alerts = """
        rules:
          - name: r
            category: suicide
            severity: 3
            group: year7
            source: search
            time: out-of-hours
            repetition: {times: 2, window: 2h}
            recipients: dsl@school
            cool-down: 5m
            urgency: batched
    """
    policy = load_policy(write_policy(tmp_path / "policy", alerts, school))
    group = policy.groups["year7"]
    assert group.year_groups == {"7"} and group.recording is not None
    assert group.recording.min_severity == 2 and group.recording.categories == {"suicide"}
    assert policy.groups["carers"].users == {"zoe"}
    (rule,) = policy.rules
    assert (rule.categories, rule.min_severity, rule.groups, rule.sources) == (
        {"suicide"},
        3,
        {"year7"},
        {"search"},
    )
    assert rule.when == "out_of_hours" and rule.to == ("dsl@school",) and rule.urgency == "digest"
    assert rule.repeat is not None and rule.repeat.count == 2 and rule.repeat.within.total_seconds() == 7200
    assert rule.cooldown.total_seconds() == 300


def test_bad_alert_to_names_the_variable() -> None:
    with pytest.raises(
        ConfigError, match=r"recipients.dsl: 'dsl' \(from \$\{NETMON_ALERT_TO\}\) is not an e-mail"
    ):
        load_policy(DEFAULT_POLICY_DIR, env={"NETMON_ALERT_TO": "dsl"})


def test_policy_check_rejects_a_misspelt_filtering_action(policy_dir: Path) -> None:
    (policy_dir / "filtering.yaml").write_text("groups:\n  everyone:\n    categories:\n      adult: blok\n")
    bad = cli(str(policy_dir))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors and "filtering.yaml" in errors[0] and "adult" in errors[0], bad.stderr
    assert "Traceback" not in bad.stderr


def test_groups_for_is_remembered_per_snapshot_without_mixing_carried_groups(policy_dir: Path) -> None:
    policy = load_policy(policy_dir)
    assert policy.groups_for("bob", "pupil", "7", ("form-7b",)) == {"tutor-group", "year7", "ks3", "form-7b"}
    # the carried group belongs to that question only; the remembered answer is the policy's own groups
    assert policy.groups_for("bob", "pupil", "7") == {"tutor-group", "year7", "ks3"}
    assert policy.groups_for("BOB", "pupil", "7", ("", "form-7c")) == {
        "tutor-group",
        "year7",
        "ks3",
        "form-7c",
    }
    assert load_policy(policy_dir) == policy, "the memo takes no part in comparing snapshots"
