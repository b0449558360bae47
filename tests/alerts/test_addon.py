"""AlertDelivery in mitmproxy's test context: policy options, the recorder hooks, the sender task in the
running loop (asyncio debug mode), a clean stop, and a broken policy failing start-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons
from netmon_proxy.alerts import AlertDelivery
from netmon_proxy.recorder import IncidentRecorder
from netmon_proxy.settings import Settings

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.incidents.writer import IncidentWriter

from .conftest import SmtpServer, write_policy
from .helpers import result


@pytest.fixture
def smtp_env(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    for key, value in smtp_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NETMON_ALERT_TO", "dsl@school")
    return smtp_server


async def test_addon_records_by_policy_and_sends_alerts(
    store_url: str, tmp_path: Path, smtp_env: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    recorder = IncidentRecorder()
    delivery = AlertDelivery(recorder)
    assert recorder.hit_filters == [delivery.hit_filter] and recorder.after_batch == [delivery.after_batch]
    with taddons.context(Settings(), delivery) as tctx:
        tctx.configure(
            delivery,
            netmon_db=store_url,
            netmon_policy=str(DEFAULT_POLICY_DIR),
            netmon_state_dir=str(tmp_path / "state"),
        )
        delivery.running()
        assert delivery._task is not None
        writer = IncidentWriter(
            store_url,
            hit_filter=recorder._filter,
            after_batch=recorder.after_batch,
            spill_dir=tmp_path / "state",
            flush_interval=0.05,
        )
        try:
            writer.submit(
                result(user="sixth", year_group="12", severity=1, phrase="sad", url="https://e.org/1")
            )
            writer.submit(
                result(
                    user="y7",
                    year_group="7",
                    severity=5,
                    phrase="kms",
                    category="suicide",
                    url="https://e.org/2",
                )
            )
            assert await asyncio.to_thread(writer.flush, 30)
        finally:
            await asyncio.to_thread(writer.close, 30)
        deadline = time.monotonic() + 20
        while not smtp_env.received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task = delivery._task
        delivery.done()
        await asyncio.sleep(0.1)
        assert task.done()
    (mail,) = smtp_env.received
    assert mail.rcpt_tos == ["dsl@school"] and "suicide" in str(mail.message["Subject"])
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from netmon.store.db import make_engine
    from netmon.store.incidents import Incident

    engine = make_engine(store_url)
    with Session(engine) as session:
        users = session.scalars(select(Incident.user)).all()
    engine.dispose()
    assert users == ["y7"]  # the sixth-form policy does not record severity 1


def test_broken_policy_fails_start_up_with_one_located_line(tmp_path: Path) -> None:
    root = write_policy(tmp_path / "policy", "rules: []\n", "groups:\n  year7: {min_severity: 7}\n")
    delivery = AlertDelivery()
    with taddons.context(Settings(), delivery) as tctx:
        with pytest.raises(
            exceptions.OptionsError, match=r"school.yaml: groups.year7.min_severity: must be 1-5"
        ):
            tctx.configure(delivery, netmon_policy=str(root))


def test_bad_smtp_setting_fails_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_SMTP_TLS", "tls1.3")
    delivery = AlertDelivery()
    with taddons.context(Settings(), delivery) as tctx:
        with pytest.raises(exceptions.OptionsError, match=r"NETMON_SMTP_TLS: must be none, starttls or ssl"):
            tctx.configure(delivery, netmon_alerts=True)


def test_one_policy_per_proxy_and_an_edit_reaches_the_filtering_group_lookup(tmp_path: Path) -> None:
    """The composition root shares one SharedPolicy: AlertDelivery and the filtering group lookup read the
    same snapshot, and an edit of school.yaml changes both (no restart)."""
    import shutil

    from netmon_proxy.blocking import Filtering
    from netmon_proxy.settings import SharedPolicy

    policy_dir = tmp_path / "policy"
    shutil.copytree(DEFAULT_POLICY_DIR, policy_dir)
    (policy_dir / "school.yaml").write_text("groups:\n  staff-room: {users: [alice]}\n")
    shared = SharedPolicy(interval=0.05)
    delivery = AlertDelivery(IncidentRecorder(), shared)
    filtering = Filtering(lambda result: None, shared)
    with taddons.context(Settings(), filtering, delivery) as tctx:
        tctx.configure(
            filtering.state,
            netmon_policy=str(policy_dir),
            netmon_state_dir=str(tmp_path / "state"),
            netmon_lists_reload=0,
        )
        tctx.configure(delivery, netmon_policy=str(policy_dir), netmon_alerts=False)
        assert delivery.watcher is shared.source  # loaded once, for both
        assert "staff-room" in filtering.state.names_for({"user": "alice"})
        assert "tutors" not in filtering.state.names_for({"user": "dave"})
        time.sleep(0.01)
        (policy_dir / "school.yaml").write_text("groups:\n  tutors: {users: [dave]}\n")
        shared.start()
        try:
            deadline = time.monotonic() + 10
            while "tutors" not in filtering.state.names_for({"user": "dave"}) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "tutors" in filtering.state.names_for({"user": "dave"})
            assert "staff-room" not in filtering.state.names_for({"user": "alice"})
            assert "tutors" in delivery.watcher.current.groups
        finally:
            shared.stop()
