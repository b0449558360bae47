"""Two gateways of a trust starting at once on an empty store: one link key, and neither start fails."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from netmon.identity.sessions import SETTING_LINK_KEY, ensure_link_key, get_setting


def test_two_starts_at_once_share_one_link_key(store_url: str) -> None:
    engine = create_engine(store_url, connect_args={"timeout": 30} if store_url.startswith("sqlite") else {})
    first = Session(engine)
    first.begin()
    key_a = ensure_link_key(first)  # inserted, not yet committed: the second start's insert must wait
    results: list[object] = []

    def second_start() -> None:
        try:
            with Session(engine) as session, session.begin():
                results.append(ensure_link_key(session))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(exc)

    thread = threading.Thread(target=second_start)
    thread.start()
    thread.join(0.5)  # the second start is now blocked on the first one's row (or its write lock)
    first.commit()
    first.close()
    thread.join(30)
    assert results == [key_a]
    with Session(engine) as session:
        assert get_setting(session, SETTING_LINK_KEY) == key_a
    engine.dispose()
