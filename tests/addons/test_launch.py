"""`netmon run` validates its configuration before mitmdump starts: one clear line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "netmon",
            "run",
            "--check",
            "--state-dir",
            str(tmp_path / "state"),
            "--db",
            f"sqlite:///{tmp_path / 'n.db'}",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_shipped_config_is_valid(tmp_path: Path) -> None:
    result = run_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert "127.0.0.1:8080" in result.stdout


def test_typo_in_config_stops_start_up_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "mitm_config.yaml"
    config.write_text("listen_port: 8081\nnetmon_scan_wokers: 2\n")
    result = run_check(tmp_path, "--config", str(config))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "netmon_scan_wokers" in lines[0] and "did you mean 'netmon_scan_workers'" in lines[0]
    assert str(config) in lines[0]


def test_bad_value_is_one_line(tmp_path: Path) -> None:
    result = run_check(tmp_path, "--set", "netmon_scan_workers=0")
    assert result.returncode != 0
    assert "netmon_scan_workers" in result.stderr and "1-64" in result.stderr
    assert "Traceback" not in result.stderr


def test_third_party_signing_options_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("emudhra: true\n")
    result = run_check(tmp_path, "--config", str(config))
    assert result.returncode != 0
    assert "emudhra" in result.stderr and "never enable" in result.stderr


def test_broken_library_stops_start_up_naming_file_and_line(tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "en").mkdir(parents=True)
    (library / "categories.txt").write_text("self_harm | Self Harm | hurting oneself\n")
    (library / "en" / "self_harm.txt").write_text("@category self_harm\n@language en\ncut myself | 9\n")
    result = run_check(tmp_path, "--library", str(library))
    assert result.returncode != 0
    assert "self_harm.txt:3" in result.stderr
    assert "Traceback" not in result.stderr


def test_relative_paths_in_config_resolve_against_the_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "netmon.yaml"
    config.parent.mkdir()
    config.write_text("netmon_library: ../nowhere\n")
    result = run_check(tmp_path, "--config", str(config))
    assert result.returncode != 0
    assert str((tmp_path / "nowhere").resolve()) in result.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("listen_port: [8080\n", "invalid YAML: "),  # bad YAML (located: line, column)
        ("listen_port: eighty\n", "listen_port"),  # wrong type
        ("netmon_scan_wokers: 2\n", "netmon_scan_wokers"),  # unknown key
        ("listen_port: 80800\n", "listen_port"),  # out of range
        ("netmon_portal_url: portal.school\n", "netmon_portal_url"),  # no scheme
        ("netmon_policy: ./no-such-policy\n", "netmon_policy"),  # missing directory
    ],
)
def test_malformed_configs_fail_with_one_located_line(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_check(tmp_path, "--config", str(config))
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0] and named in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_check(tmp_path, "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode != 0
    assert "absent.yaml" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_webhook_url_fails_the_check(tmp_path: Path) -> None:
    env = {**os.environ, "NETMON_WEBHOOK_URL": "ftp://records.school.example/in"}
    env.pop("NETMON_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "netmon", "run", "--check", "--state-dir", str(tmp_path / "var")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "NETMON_WEBHOOK_URL" in done.stderr and "Traceback" not in done.stderr
