"""``netmon export`` and ``netmon incidents`` over a real store (SQLite file; PostgreSQL when configured)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.incidents.decisions import new_uid
from netmon.incidents.export import csv_safe, parse_time
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent, Incident

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def seed(url: str) -> list[Incident]:
    specs = [
        # (minutes after T0, user, category, severity, phrase, excerpt, url)
        (
            0,
            "pupil1",
            "self_harm",
            4,
            "cut myself",
            "i want to [[cut myself]] tonight",
            "https://a.example/x?q=1",
        ),
        (60, "pupil2", "suicide", 5, "kms", '=HYPERLINK("http://evil") [[kms]]', "https://b.example/"),
        (120, None, "bullying", 2, "loser", "+ you are a [[loser]]", "https://c.example/"),
        (24 * 60, "@pupil3", "violence", 3, "shoot", "-going to [[shoot]] \x1b[31mred", "https://d.example/"),
        (48 * 60, "pupil1", "suicide", 5, "end it all", "ça va [[end it all]] 😢", "https://e.example/é"),
    ]
    made = []
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        for minutes, user, category, severity, phrase, excerpt, page in specs:
            t = T0 + timedelta(minutes=minutes)
            incident = Incident(
                uid=new_uid(),
                time=t,
                last_seen=t,
                count=1 + minutes % 3,
                site="north",
                client_ip="10.0.0.9",
                mac=None,
                user=user,
                role="student" if user else None,
                year_group="9" if user else None,
                groups=["year9"] if user else [],
                device="Android",
                host=page.split("/")[2],
                url=page,
                source="page",
                category=category,
                severity=severity,
                phrase=phrase,
                phrases=[{"phrase": phrase, "category": category, "severity": severity, "matches": 1}],
                excerpt=excerpt,
                explanation=[
                    {
                        "phrase": phrase,
                        "category": category,
                        "severity": severity,
                        "language": "en",
                        "library_file": f"en/{category}.txt",
                        "line": 7,
                        "matched_text": phrase,
                        "source": "page",
                        "label": "",
                        "steps": ["leetspeak"],
                        "rules": [],
                    }
                ],
                evidence={},
                dedup_key="k" * 64,
                capture_text="SECRET CAPTURE TEXT",
                snapshot=b"snap",
                snapshot_type="text/html",
            )
            session.add(incident)
            made.append(incident)
    engine.dispose()
    return made


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def jsonl(url: str, *args: str) -> list[dict]:  # type: ignore[type-arg]
    code, out, err = run("export", "--db", url, "--format", "jsonl", *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_jsonl_has_every_field_in_order_with_z_times(store_url: str) -> None:
    seed(store_url)
    got = jsonl(store_url)
    assert [r["phrase"] for r in got] == ["cut myself", "kms", "loser", "shoot", "end it all"]
    first = got[0]
    for key in (
        "time",
        "client_ip",
        "user",
        "host",
        "url",
        "source",
        "category",
        "severity",
        "phrase",
        "excerpt",
        "count",
        "phrases",
        "explanation",
        "uid",
        "role",
        "year_group",
        "groups",
        "mac",
        "site",
    ):
        assert key in first
    assert first["time"] == "2026-11-02T09:30:00Z" and first["user"] == "pupil1"
    assert first["explanation"][0]["library_file"] == "en/self_harm.txt"
    assert got[4]["excerpt"] == "ça va [[end it all]] 😢" and got[4]["url"] == "https://e.example/é"
    assert all("SECRET" not in json.dumps(r) and "capture_text" not in r for r in got)


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (("--since", "2026-11-02T10:00:00Z"), ["kms", "loser", "shoot", "end it all"]),
        (("--since", "2026-11-03"), ["shoot", "end it all"]),
        (("--until", "2026-11-02T10:31:00+00:00"), ["cut myself", "kms"]),
        (("--since", "2026-11-02T11:00:00+01:00", "--until", "2026-11-03T09:30:00"), ["kms", "loser"]),
        (("--category", "suicide"), ["kms", "end it all"]),
        (("--category", "suicide", "--category", "bullying"), ["kms", "loser", "end it all"]),
        (("--min-severity", "4"), ["cut myself", "kms", "end it all"]),
        (("--user", "pupil1"), ["cut myself", "end it all"]),
        (("--user", "pupil1", "--min-severity", "5"), ["end it all"]),
        (("--user", "nobody"), []),
    ],
)
def test_filters(store_url: str, args: tuple[str, ...], phrases: list[str]) -> None:
    seed(store_url)
    assert [r["phrase"] for r in jsonl(store_url, *args)] == phrases


def test_csv_opens_in_excel_and_neutralises_formulas(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    target = tmp_path / "out.csv"
    code, _, err = run("export", "--db", store_url, "--format", "csv", "-o", str(target))
    assert code == 0, err
    assert "5 incident(s) written" in err
    raw = target.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 5
    assert rows[0]["time"] == "2026-11-02T09:30:00Z" and rows[0]["severity"] == "4"
    assert rows[1]["excerpt"] == '\'=HYPERLINK("http://evil") [[kms]]'
    assert rows[2]["excerpt"].startswith("'+ you") and rows[3]["user"] == "'@pupil3"
    assert rows[3]["excerpt"].startswith("'-going")
    assert rows[4]["excerpt"] == "ça va [[end it all]] 😢"
    assert "en/self_harm.txt:7" in rows[0]["explanation"]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert "SECRET" not in raw.decode("utf-8-sig")


def test_csv_to_stdout_has_the_bom_too(store_url: str) -> None:
    seed(store_url)
    result = CliRunner().invoke(
        main, ["export", "--db", store_url, "--format", "csv", "--category", "suicide"]
    )
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"\xef\xbb\xbftime,")
    assert len(result.stdout_bytes.decode("utf-8-sig").splitlines()) == 3


@pytest.mark.parametrize("value", ["=1+1", "+44 7700", "-1", "@SUM(A1)", "\tx"])
def test_csv_safe(value: str) -> None:
    assert csv_safe(value) == "'" + value
    assert csv_safe("plain") == "plain" and csv_safe(-1) == -1


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\rx", "\\u000dx"),
        ("a\x1b[2Jb", "a\\u001b[2Jb"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("bell\x07", "bell\\u0007"),
        ("=cmd\x00", "'=cmd\\u0000"),
    ],
)
def test_csv_cells_show_control_and_bidi_characters_inert(value: str, shown: str) -> None:
    assert csv_safe(value) == shown


def test_bad_since_is_one_clear_line(store_url: str) -> None:
    code, out, err = run("export", "--db", store_url, "--since", "last tuesday")
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--since" in lines[0] and "ISO" in lines[0]


def test_missing_store_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = run("export", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "netmon db upgrade" in err
    assert not (tmp_path / "none.db").exists()


def test_export_is_audited_without_content(store_url: str) -> None:
    seed(store_url)
    jsonl(store_url, "--category", "suicide", "--since", "2026-11-01")
    engine = make_engine(store_url)
    with Session(engine) as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "export"))
    engine.dispose()
    assert event.actor and event.detail["format"] == "jsonl" and event.detail["rows"] == 2
    assert event.detail["filters"]["categories"] == ["suicide"]
    assert event.detail["filters"]["since"] == "2026-11-01T00:00:00Z"
    assert "kms" not in json.dumps(event.detail)


def test_export_streams_many_rows(store_url: str) -> None:
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        for n in range(2500):
            t = T0 + timedelta(seconds=n)
            session.add(
                Incident(
                    uid=new_uid(),
                    time=t,
                    last_seen=t,
                    count=1,
                    site="",
                    client_ip="10.0.0.1",
                    host="h",
                    url=f"https://h/{n}",
                    source="page",
                    category="c",
                    severity=1,
                    phrase="p",
                    phrases=[],
                    excerpt="",
                    explanation=[],
                    evidence={},
                    dedup_key=str(n),
                    capture_text="",
                    groups=[],
                )
            )
    engine.dispose()
    got = jsonl(store_url)
    assert len(got) == 2500 and got[-1]["url"] == "https://h/2499"


def test_incidents_table_and_show(store_url: str) -> None:
    made = seed(store_url)
    code, out, err = run("incidents", "--db", store_url, "--limit", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("TIME (UTC)") and "CATEGORY" in lines[0]
    assert "end it all" in lines[1] and "shoot" in lines[2] and "loser" in lines[3]
    assert len(lines) == 5  # header, 3 rows, footer
    assert "\x1b" not in out
    shoot = next(i for i in made if i.phrase == "shoot")
    code, out, err = run("incidents", "--db", store_url, "--show", shoot.uid[:10])
    assert code == 0, err
    assert shoot.uid in out and "en/violence.txt line 7" in out and "leetspeak" in out
    assert "\x1b" not in out and "\\u001b[31mred" in out  # terminal escapes from a page are shown inert
    assert "SECRET" not in out and "19 characters of text" in out
    code, _, err = run("incidents", "--db", store_url, "--show", "zzzz")
    assert code != 0 and "no incident" in err


def test_incidents_empty_store(store_url: str) -> None:
    code, out, _ = run("incidents", "--db", store_url)
    assert code == 0 and "no incidents" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
        ("2026-11-02T10:00:00Z", datetime(2026, 11, 2, 10, tzinfo=UTC)),
        ("2026-11-02T10:00:00+01:00", datetime(2026, 11, 2, 9, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_real_console_script(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    netmon = Path(sys.executable).with_name("netmon")
    proc = subprocess.run(
        [str(netmon), "export", "--db", store_url, "--format", "jsonl", "--min-severity", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["phrase"] for line in proc.stdout.splitlines()] == ["kms", "end it all"]
    proc = subprocess.run(
        [str(netmon), "export", "--db", store_url, "--until", "soon"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1


def test_unwritable_output_is_one_clear_line(store_url: str, tmp_path: Path) -> None:
    code, _, err = run("export", "--db", store_url, "-o", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "cannot write" in err
