"""TlsPolicy through mitmproxy's taddons: no-decrypt list, passthrough after a failed handshake, counters,
hostname-level monitoring of passed-through visits (URL-list hits as "sni" incidents, audit records)."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest
from mitmproxy import connection, exceptions, tls
from mitmproxy.proxy import context as proxy_context
from mitmproxy.test import taddons
from netmon_proxy import tls as tls_addon
from netmon_proxy.settings import Settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.identity.passthrough import ResolvedNames
from netmon.ops import counters
from netmon.scan.findings import Hit, ScanResult
from netmon.store.db import make_engine, upgrade
from netmon.store.incidents import AuditEvent


def client_hello(sni: str | None) -> tls.ClientHello:
    """A real ClientHello made by Python's ssl module (without the record and handshake headers)."""
    ctx = ssl.create_default_context()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    record = outgoing.read()
    return tls.ClientHello(record[9:])


def hello_data(
    tctx: taddons.context, sni: str | None, client: str = "10.77.0.10", dest: str = "192.0.2.80"
) -> tls.ClientHelloData:
    cli = connection.Client(peername=(client, 50000), sockname=("10.77.0.1", 8080), timestamp_start=1)
    cli.sni = sni
    ctx = proxy_context.Context(cli, tctx.options)
    ctx.server = connection.Server(address=(dest, 443))
    return tls.ClientHelloData(ctx, client_hello(sni))


SERVER = "192.0.2.80"


async def school_resolver(name: str) -> list[str]:
    """The school's resolver in these tests: every name is at SERVER, except unknown.example."""
    return [] if name.startswith("unknown.") else [SERVER, "fd78::80"]


def TlsPolicy(*args: object, **kwargs: object) -> tls_addon.TlsPolicy:  # noqa: N802 - stands in for the class
    kwargs.setdefault("resolved", ResolvedNames(school_resolver))
    return tls_addon.TlsPolicy(*args, **kwargs)  # type: ignore[arg-type]


def hello(policy: tls_addon.TlsPolicy, data: tls.ClientHelloData) -> tls.ClientHelloData:
    """Call the hook as mitmproxy does: await what it returns, if anything."""
    result = policy.tls_clienthello(data)
    if result is not None:
        asyncio.run(result)  # type: ignore[arg-type]
    return data


def tls_data(hello: tls.ClientHelloData) -> tls.TlsData:
    return tls.TlsData(hello.context.client, hello.context)


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    counters.reset()


def test_refused_handshake_then_passthrough_for_that_device_only(tmp_path: Path) -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="")
        first = hello_data(tctx, "app.example")
        hello(policy, first)
        assert not first.ignore_connection  # first contact: intercepted
        policy.tls_failed_client(tls_data(first))  # the device refused the school's certificate

        again = hello_data(tctx, "app.example")
        hello(policy, again)
        assert again.ignore_connection

        other_device = hello_data(tctx, "app.example", client="10.77.0.11")
        hello(policy, other_device)
        assert not other_device.ignore_connection
        other_site = hello_data(tctx, "news.example")
        hello(policy, other_site)
        assert not other_site.ignore_connection
    snap = counters.snapshot()
    assert snap["tls.refused"] == 1
    assert snap["tls.passthrough"] == 1
    assert snap["tls.passthrough.refused-before"] == 1


def test_without_sni_the_destination_address_is_remembered() -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="")
        first = hello_data(tctx, None, dest="192.0.2.99")
        hello(policy, first)
        policy.tls_failed_client(tls_data(first))
        again = hello_data(tctx, None, dest="192.0.2.99")
        hello(policy, again)
        assert again.ignore_connection


def test_passthrough_memory_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="", netmon_passthrough_minutes=1)
        first = hello_data(tctx, "app.example")
        policy.tls_failed_client(tls_data(first))
        later = time.monotonic() + 61
        monkeypatch.setattr(time, "monotonic", lambda: later)
        again = hello_data(tctx, "app.example")
        hello(policy, again)
        assert not again.ignore_connection


def test_no_decrypt_list_default_file_and_extra_domains() -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt=["bank.example"])
        for host in ("www.nhs.uk", "online.bank.example"):
            data = hello_data(tctx, host)
            hello(policy, data)
            assert data.ignore_connection, host
        data = hello_data(tctx, "news.example")
        hello(policy, data)
        assert not data.ignore_connection
    assert counters.snapshot()["tls.passthrough.no-decrypt"] == 2


def test_bad_no_decrypt_entries_fail_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "nd.txt"
    bad.write_text("ok.example\nnot ok\n")
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        with pytest.raises(exceptions.OptionsError, match=r"nd.txt:2: one domain per line"):
            tctx.configure(policy, netmon_no_decrypt_file=str(bad))
        with pytest.raises(exceptions.OptionsError, match="netmon_no_decrypt"):
            tctx.configure(policy, netmon_no_decrypt=["bad_name!"])
        with pytest.raises(exceptions.OptionsError, match="netmon_passthrough_minutes"):
            tctx.configure(policy, netmon_passthrough_minutes=-1)


def test_decrypted_connections_are_counted() -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        policy.tls_established_client(tls_data(hello_data(tctx, "news.example")))
    assert counters.snapshot()["tls.decrypted"] == 1


def test_passthrough_visit_checked_against_url_lists_as_sni_incident() -> None:
    hit = Hit(
        phrase="bad.example",
        category="extremism",
        severity=5,
        language="",
        library_file="ctiru.csv",
        line=2,
        start=0,
        end=11,
        matched_text="bad.example",
    )
    submitted: list[ScanResult] = []
    policy = TlsPolicy(
        submit=submitted.append,
        host_hits=lambda host: (hit,) if host.endswith("bad.example") else (),
        identify=lambda ip: (
            {"user": "pupil1", "role": "pupil", "year_group": "9", "groups": ["y9"]}
            if ip == "10.77.0.10"
            else None
        ),
    )
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt=["bad.example", "fine.example"])
        for host in ("www.bad.example", "fine.example"):
            hello(policy, hello_data(tctx, host))
    assert len(submitted) == 1
    result = submitted[0]
    assert result.findings[0].source == "sni"
    assert result.hits == (hit,)
    assert result.context.host == "www.bad.example"
    assert result.context.client_ip == "10.77.0.10"
    assert result.context.user == "pupil1"
    assert result.context.groups == ("y9",)


def test_a_broken_url_list_lookup_fails_open() -> None:
    def broken(host: str) -> tuple[Hit, ...]:
        raise RuntimeError("boom")

    policy = TlsPolicy(submit=lambda r: None, host_hits=broken)
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt=["x.example"])
        data = hello_data(tctx, "x.example")
        hello(policy, data)
        assert data.ignore_connection
    assert counters.snapshot()["tls.error.monitor"] == 1


def test_passthrough_visits_recorded_once_as_audit_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'netmon.db'}"
    upgrade(url)
    policy = TlsPolicy()
    with taddons.context(Settings(), policy) as tctx:
        tctx.configure(policy, netmon_db=url, netmon_no_decrypt_file="", netmon_no_decrypt=["bank.example"])
        policy.running()
        for _ in range(3):
            hello(policy, hello_data(tctx, "www.bank.example"))
        policy.done()
    engine = make_engine(url)
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "tls.passthrough")).all()
    engine.dispose()
    assert [(e.actor, e.subject, e.detail) for e in events] == [
        (
            "10.77.0.10",
            "www.bank.example",
            {"client_ip": "10.77.0.10", "address": SERVER, "reason": "no-decrypt"},
        )
    ]


def test_with_the_portal_on_unsigned_devices_get_no_refused_before_passthrough() -> None:
    from netmon_proxy.identity import PortalGate

    signed_in: set[str] = set()
    policy = TlsPolicy(identify=lambda ip: {"user": "pupil1"} if ip in signed_in else None)
    gate = PortalGate(tagger=None)  # type: ignore[arg-type] - only its netmon_portal option is used here
    with taddons.context(Settings(), gate, policy) as tctx:
        tctx.configure(policy, netmon_portal=True, netmon_no_decrypt=["bank.example"])
        first = hello_data(tctx, "pinned.example")
        policy.tls_failed_client(tls_data(first))
        unsigned = hello_data(tctx, "pinned.example")
        hello(policy, unsigned)
        assert not unsigned.ignore_connection  # fails closed: the gate answers it
        bank = hello_data(tctx, "www.bank.example")
        hello(policy, bank)
        assert bank.ignore_connection  # never decrypted, signed in or not
        signed_in.add("10.77.0.10")
        after = hello_data(tctx, "pinned.example")
        hello(policy, after)
        assert after.ignore_connection
    assert counters.snapshot()["tls.passthrough.withheld-unsigned"] == 1


def test_the_portal_trust_check_host_is_never_passed_through() -> None:
    """mitm.it answers the portal's "does this device trust the CA?" check: after a refusal it must keep
    being intercepted, or the check would say "not trusted" for hours after the pupil installs the CA."""
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="")
        first = hello_data(tctx, "mitm.it")
        hello(policy, first)
        policy.tls_failed_client(tls_data(first))
        again = hello_data(tctx, "mitm.it")
        hello(policy, again)
        assert not again.ignore_connection


@pytest.mark.parametrize(
    ("sni", "dest", "passes"),
    [
        ("www.bank.example", SERVER, True),  # the resolver gives this address for the name
        ("www.bank.example", "::ffff:192.0.2.80", True),
        ("www.bank.example", "fd78::80", True),
        ("www.bank.example", "198.51.100.7", False),  # a forged SNI: any other server
        ("unknown.bank.example", SERVER, False),  # the name does not resolve at all
    ],
)
def test_no_decrypt_passes_through_only_to_an_address_the_resolver_gives(
    sni: str, dest: str, passes: bool
) -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="", netmon_no_decrypt=["bank.example"])
        data = hello(policy, hello_data(tctx, sni, dest=dest))
        assert data.ignore_connection is passes
        # the second time the cache answers: a plain call, no coroutine, same decision
        again = hello_data(tctx, sni, dest=dest)
        assert policy.tls_clienthello(again) is None
        assert again.ignore_connection is passes
    snapshot = counters.snapshot()
    assert snapshot.get("tls.no-decrypt.mismatch", 0) == (0 if passes else 2)


def test_explicit_proxy_connect_name_must_itself_be_on_the_list() -> None:
    policy = TlsPolicy()
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="", netmon_no_decrypt=["bank.example"])
        genuine = hello(policy, hello_data(tctx, "www.bank.example", dest="www.bank.example"))
        forged = hello(policy, hello_data(tctx, "www.bank.example", dest="evil.example"))
    assert genuine.ignore_connection and not forged.ignore_connection


def test_a_failing_resolver_means_decrypt_never_passthrough() -> None:
    async def broken(name: str) -> list[str]:
        raise RuntimeError("resolver down")

    policy = TlsPolicy(resolved=ResolvedNames(broken))
    with taddons.context(policy) as tctx:
        tctx.configure(policy, netmon_no_decrypt_file="", netmon_no_decrypt=["bank.example"])
        data = hello(policy, hello_data(tctx, "www.bank.example"))
    assert not data.ignore_connection
    assert counters.snapshot()["tls.error.resolve"] == 1
