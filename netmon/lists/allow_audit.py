"""The audit trail of the filtering allow-list: each entry added or removed becomes an audit event.

The allow-list (``allow:`` in ``policy/filtering.yaml``) is the school's answer to over-blocking, so each
change to it is written to the store once, when the proxy starts or reloads the policy.
"""

from __future__ import annotations

from pathlib import Path

from netmon.lists.filtering import AllowEntry, FilterPolicy

ALLOW_SEEN_FILE = "allow-list-seen.json"


def _allow_key(entry: AllowEntry) -> str:
    return f"{entry.type}:{entry.value}"


def record_allow_changes(db_url: str, state_dir: Path, policy: FilterPolicy) -> tuple[int, int]:
    """Write an audit event for every allow-list entry added or removed since the last call.

    ``filtering.allow.added`` (actor: the entry's ``added_by``; detail: reason, date, where) and
    ``filtering.allow.removed``. What was last recorded is kept in ``<state dir>/lists/`` so that a
    restart records nothing new. Returns (added, removed). Raises StoreError when the store fails (the
    seen-file is then left alone, so the next call retries).
    """
    import json

    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from netmon.errors import StoreError
    from netmon.store.db import make_engine
    from netmon.store.incidents import audit

    seen_path = state_dir / "lists" / ALLOW_SEEN_FILE
    try:
        seen: dict[str, dict[str, str]] = json.loads(seen_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seen = {}
    current = {
        _allow_key(e): {"reason": e.reason, "added_by": e.added_by, "date": e.date, "where": e.where}
        for e in policy.allow_entries
    }
    added = [k for k in current if k not in seen or seen[k]["reason"] != current[k]["reason"]]
    removed = [k for k in seen if k not in current]
    if added or removed:
        engine = make_engine(db_url)
        try:
            with Session(engine) as session:
                for key in added:
                    info = current[key]
                    audit(
                        session,
                        "filtering.allow.added",
                        actor=info["added_by"] or "policy",
                        subject=key[:255],
                        reason=info["reason"],
                        date=info["date"],
                        where=info["where"],
                    )
                for key in removed:
                    audit(
                        session,
                        "filtering.allow.removed",
                        actor="policy",
                        subject=key[:255],
                        reason=seen[key].get("reason", ""),
                    )
                session.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"allow-list audit not recorded: {exc.__class__.__name__}") from exc
        finally:
            engine.dispose()
    seen_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = seen_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(seen_path)
    return len(added), len(removed)
