"""Hostname-level monitoring of passed-through traffic: a device without the school's CA visits a host on
a URL list; after its one refused handshake the visit passes through undecrypted and is still an incident,
with source "sni" (the CTIRU/IWF-style list checked against the SNI)."""

from __future__ import annotations

import json

import pytest

from tests.gateway import netns
from tests.gateway.conftest import Gateway

pytestmark = [pytest.mark.netns, pytest.mark.e2e]

WITH_URL_LIST = True


def test_passed_through_visit_to_a_listed_host_is_an_sni_incident(gateway: Gateway) -> None:
    url = "https://listed.example/"
    assert gateway.curl(f"{url}echo", trust="internet").returncode == 60  # no CA: refused once
    seen = json.loads(gateway.curl(f"{url}echo", trust="internet").stdout)
    assert seen["sni"] == "listed.example"  # passed through undecrypted
    rows = gateway.incidents(lambda rows: any(r["source"] == "sni" for r in rows))
    (incident,) = [r for r in rows if r["source"] == "sni"]
    assert incident["host"] == "listed.example"
    assert incident["url"] == url  # hostname level only: nothing of the path is known
    assert incident["client_ip"] == netns.DEVICE_V4
    assert incident["category"] == "terrorism" and incident["severity"] == 5
