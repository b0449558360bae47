"""`netmon staff` and `netmon audit export` through click, on a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from netmon.cli import main
from tests.console.conftest import PASSWORD


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output


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
