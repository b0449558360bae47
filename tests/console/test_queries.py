"""The read model: queue order, filters, keyset paging, counts per status and scope, on a real store."""

from __future__ import annotations

from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.incidents.outcomes import ReviewChange, ReviewError, change_review
from netmon.store.db import make_engine
from tests.console.conftest import add_incidents, make_incident, when


def _seed(url: str) -> list[str]:
    rows = []
    for n in range(30):
        rows.append(
            make_incident(
                time=when(hours=n), severity=1 + n % 5, category="suicide" if n % 2 else "bullying",
                user=f"pupil{n % 3}", year_group="Y9" if n % 3 == 0 else "Y10",
                groups=["9A"] if n % 3 == 0 else ["10_B", "drama"],
            )
        )  # fmt: skip
    return add_incidents(url, rows)


def test_queue_order_paging_and_filters(store_url: str) -> None:
    _seed(store_url)
    engine = make_engine(store_url)
    with Session(engine) as db:
        seen: list[queries.QueueRow] = []
        after = None
        while True:
            page = queries.queue(db, queries.QueueFilter(), after, limit=7)
            seen.extend(page.rows)
            if page.next is None:
                break
            after = queries.Cursor.decode(page.next.encode())
        assert len(seen) == 30 and len({r.id for r in seen}) == 30
        keys = [(r.severity, r.time) for r in seen]
        assert keys == sorted(keys, reverse=True)
        f = queries.QueueFilter(min_severity=4, category="suicide")
        rows = queries.queue(db, f).rows
        assert rows and all(r.severity >= 4 and r.category == "suicide" for r in rows)
        assert {r.user for r in queries.queue(db, queries.QueueFilter(pupil="pupil1")).rows} == {"pupil1"}
        assert len(queries.queue(db, queries.QueueFilter(year_group="Y9")).rows) == 10
        assert len(queries.queue(db, queries.QueueFilter(group="10_B")).rows) == 20
        assert queries.queue(db, queries.QueueFilter(group="10%B")).rows == ()  # LIKE is escaped
        day = queries.QueueFilter(since=when(hours=5), until=when(hours=8))
        assert len(queries.queue(db, day).rows) == 3
    engine.dispose()


def test_scope_limits_lists_and_counts(store_url: str) -> None:
    _seed(store_url)
    engine = make_engine(store_url)
    with Session(engine) as db:
        y9 = queries.queue(db, queries.QueueFilter(scope=("Y9",))).rows
        assert len(y9) == 10 and all(r.year_group == "Y9" for r in y9)
        drama = queries.queue(db, queries.QueueFilter(scope=("drama",))).rows
        assert len(drama) == 20
        assert queries.queue(db, queries.QueueFilter(scope=())).rows == ()
        assert queries.status_counts(db, queries.QueueFilter(scope=("Y9",))) == {
            "new": 10, "in_review": 0, "closed": 0,
        }  # fmt: skip
    engine.dispose()
    assert queries.in_scope(("Y9",), "Y9", []) and queries.in_scope(("art",), "Y8", ["art"])
    assert not queries.in_scope(("Y9",), "Y10", ["9A"]) and queries.in_scope(None, None, [])


def test_reviews_statuses_counts_and_history(store_url: str) -> None:
    uids = _seed(store_url)
    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():
        first = queries.incident_by_uid(db, uids[0])
        second = queries.incident_by_uid(db, uids[1])
        assert first is not None and second is not None
        change_review(db, first, "dina", ReviewChange(status="in_review", assignee="dan", note="looking"))
        try:
            change_review(db, second, "dina", ReviewChange(status="closed"))
            raise AssertionError("closing without an outcome was accepted")
        except ReviewError as exc:
            assert "outcome" in str(exc)
        change_review(db, second, "dina", ReviewChange(status="closed", outcome="false_alarm"))
        assert change_review(db, second, "dina", ReviewChange(status="closed")) is None  # nothing changed
    with Session(engine) as db:
        counts = queries.status_counts(db, queries.QueueFilter())
        assert counts == {"new": 28, "in_review": 1, "closed": 1}
        new = queries.queue(db, queries.QueueFilter(statuses=("new",)), limit=100).rows
        assert len(new) == 28 and uids[0] not in {r.uid for r in new}
        closed = queries.queue(db, queries.QueueFilter(statuses=("closed",))).rows
        assert [(r.uid, r.outcome) for r in closed] == [(uids[1], "false_alarm")]
        mine = queries.queue(db, queries.QueueFilter(assignee="dan")).rows
        assert [r.uid for r in mine] == [uids[0]]
        state = queries.review_state(db, closed[0].id)
        assert state.status == "closed" and state.first_reviewed_at is not None
        assert [h.changes for h in state.history] == [
            {"status": ["new", "closed"], "outcome": [None, "false_alarm"]}
        ]
    engine.dispose()


def test_bad_cursors_mean_page_one() -> None:
    for text in (None, "", "x", "1.2", "5.99999999999999999999.1", "a.b.c"):
        assert queries.Cursor.decode(text) is None


def test_spreadsheet_cells() -> None:
    assert queries.spreadsheet_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert queries.spreadsheet_cell("  @SUM(1)") == "'  @SUM(1)"
    assert queries.spreadsheet_cell("a\x00b\x1bc\x7f") == "a\ufffdb\ufffdc\ufffd"
    assert queries.spreadsheet_cell("line\nbreak") == "line\nbreak"
    assert queries.spreadsheet_cell(5) == 5 and queries.spreadsheet_cell(None) == ""


def test_group_filter_and_scope_match_whole_group_names_exactly(store_url: str) -> None:
    """A group filter and a scope's groups match a group name exactly, in SQL (lists and counts alike): not
    a name that merely contains it, not through LIKE wildcards, quotes or backslashes in the JSON text."""
    names = [["9A"], ["19A"], ['x"9A\\'], ["9A\\"], ["10_B"], ["10xB"], ["Émile"], [], ['"9A"']]
    add_incidents(store_url, [make_incident(time=when(hours=n), groups=g, year_group=None)
                              for n, g in enumerate(names)])  # fmt: skip
    engine = make_engine(store_url)
    with Session(engine) as db:

        def groups_of(f: queries.QueueFilter) -> list[list[str]]:
            rows = queries.queue(db, f, limit=100).rows
            assert queries.status_counts(db, f)["new"] == len(rows)  # counts are exact in SQL too
            return sorted(list(r.groups) for r in rows)

        assert groups_of(queries.QueueFilter(group="9A")) == [["9A"]]
        assert groups_of(queries.QueueFilter(group="9A\\")) == [["9A\\"]]
        assert groups_of(queries.QueueFilter(group="10_B")) == [["10_B"]]
        assert groups_of(queries.QueueFilter(group="Émile")) == [["Émile"]]
        assert groups_of(queries.QueueFilter(group='"9A"')) == [['"9A"']]
        assert groups_of(queries.QueueFilter(scope=("9A", "10_B"))) == [["10_B"], ["9A"]]
        assert groups_of(queries.QueueFilter(scope=("nobody",))) == []
    engine.dispose()
