"""`netmon staff` and `netmon audit export` through click, on a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from tests.console.conftest import PASSWORD


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The console key file goes to a state directory of the test's own."""
    monkeypatch.delenv("NETMON_CONSOLE_KEY", raising=False)
    monkeypatch.setenv("NETMON_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_staff_add_list_disable_and_audit_export(store_url: str, tmp_path: Path) -> None:
    code, out = run("staff", "add", "Ms.Jones", "--role", "dsl", "--password-stdin", "--db", store_url,
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0, out
    assert "otpauth://totp/netmon%20console:ms.jones?secret=" in out
    code, out = run("staff", "add", "pat", "--role", "pastoral", "--password-stdin", "--db", store_url,
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert code != 0 and "--scope" in out
    code, out = run("staff", "add", "nick", "--role", "dsl", "--no-totp", "--password-stdin", "--db",
                    store_url, stdin=PASSWORD + "\n")  # fmt: skip
    assert code != 0 and "TOTP" in out
    code, out = run("staff", "add", "short", "--role", "auditor", "--no-totp", "--password-stdin", "--db",
                    store_url, stdin="tooshort\n")  # fmt: skip
    assert code != 0 and "12 characters" in out
    assert run("staff", "add", "pat", "--role", "pastoral", "--scope", "Y9,9A", "--scope", "art",
               "--password-stdin", "--db", store_url, stdin=PASSWORD + "\n")[0] == 0  # fmt: skip
    assert run("staff", "disable", "pat", "--db", store_url)[0] == 0
    code, out = run("staff", "list", "--db", store_url)
    assert code == 0 and "ms.jones" in out and "disabled" in out and "9A, Y9, art" in out
    assert "secret" not in out.lower() and "argon2" not in out
    assert run("staff", "disable", "nobody", "--db", store_url)[0] != 0
    target = tmp_path / "audit.csv"
    code, out = run("audit", "export", "--db", store_url, "-o", str(target))
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert [(r["action"], r["subject"], r["address"]) for r in rows] == [
        ("staff.add", "ms.jones", "cli"), ("staff.add", "pat", "cli"), ("staff.disable", "pat", "cli"),
    ]  # fmt: skip
    code, out = run("audit", "export", "--format", "jsonl", "--db", store_url)
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["action"] == "audit.export" and events[0]["detail"]["role"] == "dsl"


def test_staff_sites_and_directory_accounts(store_url: str, state_dir: Path) -> None:
    code, out = run("staff", "add", "north.dsl", "--role", "dsl", "--site", "north", "--auth", "directory",
                    "--db", store_url)  # fmt: skip
    assert code == 0 and "site north; directory password" in out and "otpauth://" in out
    assert (state_dir / "console.key").exists()  # made on first use
    code, out = run("staff", "add", "lead", "--role", "dsl", "--password-stdin", "--db", store_url,
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0, out
    listing = run("staff", "list", "--db", store_url)[1].splitlines()
    rows = {line.split()[0]: line.split() for line in listing[1:]}
    assert rows["north.dsl"][1:4] == ["dsl", "directory", "yes"] and "north" in rows["north.dsl"]
    assert rows["lead"][1:4] == ["dsl", "local", "yes"] and "(trust)" in rows["lead"]
    assert (
        run("staff", "password", "north.dsl", "--password-stdin", "--db", store_url, stdin=PASSWORD + "\n")[0]
        == 0
    )
    assert run("staff", "directory", "lead", "--db", store_url)[0] == 0
    listing = run("staff", "list", "--db", store_url)[1]
    assert {line.split()[0]: line.split()[2] for line in listing.splitlines()[1:]} == {
        "lead": "directory", "north.dsl": "local",
    }  # fmt: skip
    assert run("staff", "site", "lead", "south", "--db", store_url)[0] == 0
    assert "south" in next(
        line for line in run("staff", "list", "--db", store_url)[1].splitlines() if "lead" in line
    )
    key = run("staff", "key")[1].strip()
    assert len(key) == 43 and key != run("staff", "key")[1].strip()
