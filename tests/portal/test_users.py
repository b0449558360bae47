"""Roster import (CLI and core) and local sign-in with argon2 hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.identity.users import authenticate, import_roster, read_roster
from netmon.store.db import make_engine
from netmon.store.identity import UserAccount


def _users(url: str) -> dict[str, UserAccount]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = {u.username: u for u in session.scalars(select(UserAccount))}
        session.expunge_all()
    engine.dispose()
    return rows


def test_cli_import_creates_then_updates_without_duplicates(db_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "username,display_name,role,year_group,groups,password\n"
        "Alice,Alice Smith,pupil,Y9,9A; art ,alice-pass-1\n"
        "bob,Bob Jones,staff,,teachers,\n"
    )
    runner = CliRunner()
    result = runner.invoke(main, ["users", "import", str(roster), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    users = _users(db_url)
    assert set(users) == {"alice", "bob"}
    assert users["alice"].groups == ["9A", "art"] and users["alice"].year_group == "Y9"
    assert users["alice"].password_hash and users["alice"].password_hash.startswith("$argon2")
    assert "alice-pass-1" not in users["alice"].password_hash
    assert users["bob"].password_hash is None and users["bob"].role == "staff"

    first_hash = users["alice"].password_hash
    roster.write_text(
        "username,display_name,role,year_group,groups,password\n"
        "alice,Alice Smith-Jones,pupil,Y10,10A,\n"
        "bob,Bob Jones,staff,,teachers,\n"
        "carol,Carol Evans,pupil,Y7,,carol-pass\n"
    )
    result = runner.invoke(main, ["users", "import", str(roster), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "1 created, 1 updated, 1 unchanged" in result.output
    users = _users(db_url)
    assert len(users) == 3
    assert users["alice"].display_name == "Alice Smith-Jones" and users["alice"].year_group == "Y10"
    assert users["alice"].password_hash == first_hash  # blank password keeps the existing one


def test_cli_import_reports_bad_rows_by_line_and_keeps_good_ones(db_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "username,display_name,role,year_group,groups,password\n"
        "alice,Alice,pupil,Y9,,pw1\n"
        "bad user!,Someone,pupil,Y9,,pw\n"
        "zed,Zed,headteacher,,,pw\n"
        "too,many,fields,here,x,y,z\n"
        "alice,Again,pupil,Y9,,pw\n"
        "yan,Yan,staff,,,\n"
    )
    result = CliRunner().invoke(main, ["users", "import", str(roster), "--db", db_url])
    assert result.exit_code == 1
    for line in (3, 4, 5, 6):
        assert f"roster.csv:{line}:" in result.output
    assert "role must be pupil or staff" in result.output
    assert set(_users(db_url)) == {"alice", "yan"}


def test_bad_header_is_one_clear_error(db_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("user,name\nalice,Alice\n")
    result = CliRunner().invoke(main, ["users", "import", str(roster), "--db", db_url])
    assert result.exit_code == 1
    assert "header lacks username" in result.output
    with pytest.raises(ConfigError):
        read_roster("", "empty.csv")


def test_local_authentication(portal_db: str) -> None:
    engine = make_engine(portal_db)
    with Session(engine) as session:
        account = authenticate(session, "ALICE ", "alice-pass-1")
        assert account is not None
        assert (account.username, account.role, account.year_group, account.groups, account.source) == (
            "alice",
            "pupil",
            "Y9",
            ("9A", "art"),
            "local",
        )
        assert authenticate(session, "alice", "wrong") is None
        assert authenticate(session, "alice", "") is None
        assert authenticate(session, "nobody", "alice-pass-1") is None
        # carol has no local password: directory sign-in only
        assert authenticate(session, "carol", "") is None
        assert authenticate(session, "carol", "anything") is None
    engine.dispose()


def test_import_rejects_non_utf8(db_url: str, tmp_path: Path) -> None:
    from netmon.store.db import upgrade

    upgrade(db_url)
    roster = tmp_path / "roster.csv"
    roster.write_bytes(
        "username,display_name,role,year_group,groups,password\nz,Zo\xeb,pupil,,,\n".encode("latin-1")
    )
    engine = make_engine(db_url)
    with Session(engine) as session, pytest.raises(ConfigError, match="UTF-8"):
        import_roster(session, roster)
    engine.dispose()


def test_list_commands_show_control_characters_inert(db_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    evil = "Eve\x1b]8;;http://x\x07\x1b[2J\u202egnp.exe"
    roster.write_text(
        f"username,display_name,role,year_group,groups,password\neve,{evil},pupil,9,y9\u200f,pw-long-enough\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(main, ["users", "import", str(roster), "--db", db_url]).exit_code == 0
    listed = runner.invoke(main, ["users", "list", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\u202e" not in listed.output and "\u200f" not in listed.output
    assert "\x07" not in listed.output
    from netmon.identity.sessions import start_session
    from netmon.identity.users import Account

    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        start_session(
            session,
            Account("eve\x1b[31m", evil, "pupil", "9", (), "local"),
            ip="10.0.0.9",
            mac=None,
            user_agent="t",
            aup_version="1",
            language="en",
        )
    engine.dispose()
    shown = runner.invoke(main, ["sessions", "--db", db_url])
    assert shown.exit_code == 0, shown.output
    assert "eve" in shown.output and "\x1b" not in shown.output
