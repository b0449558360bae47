"""The monitoring core end to end: a real netmon (mitmdump) process, real servers, real clients.

Every incident is read back through `netmon export`, as a DSL or admin would.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess

import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e.conftest import NETMON, REPO, Proxy
from tests.e2e.upstream import BENIGN_HTML, Upstream

pytestmark = pytest.mark.e2e

SUICIDE_CATEGORIES = {"suicide", "self_harm"}


def marked(excerpt: str) -> list[str]:
    """The parts of an excerpt marked as matches ([[...]])."""
    return re.findall(r"\[\[(.*?)\]\]", excerpt)


def shows(excerpt: str, words: str) -> bool:
    return any(words in part for part in marked(excerpt))


def _by_url(rows: list[dict], fragment: str) -> list[dict]:
    return [r for r in rows if fragment in r["url"]]


def _raw_get(proxy: Proxy, url: str) -> tuple[bytes, dict[str, str]]:
    """GET through the proxy and return the bytes exactly as they arrived (no decompression)."""
    with proxy.client() as client, client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        return b"".join(response.iter_raw()), dict(response.headers)


def test_benign_page_passes_unchanged_and_records_nothing(proxy: Proxy, upstream: Upstream) -> None:
    body, _ = _raw_get(proxy, "http://pages.test/benign.html")
    assert body == BENIGN_HTML
    # a matching page fetched afterwards proves the scanner ran; the benign one must still be absent
    _raw_get(proxy, "http://pages.test/phrase.html?after-benign")
    rows = proxy.wait_incidents(lambda rows: _by_url(rows, "after-benign"))
    assert _by_url(rows, "after-benign")
    assert not _by_url(rows, "benign.html")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_phrase_page_gives_an_explained_incident(proxy: Proxy, upstream: Upstream, scheme: str) -> None:
    url = f"{scheme}://pages.test/phrase.html?via={scheme}"
    body, _ = _raw_get(proxy, url)
    assert body == upstream.pages["/phrase.html"].body
    rows = proxy.wait_incidents(lambda rows: _by_url(rows, f"via={scheme}"))
    (incident,) = _by_url(rows, f"via={scheme}")
    assert incident["client_ip"] == "127.0.0.1"
    assert incident["host"] == "pages.test"
    assert incident["url"] == url
    assert incident["source"] == "page"
    assert incident["category"] in SUICIDE_CATEGORIES
    assert incident["severity"] >= 4
    assert "kill myself" in incident["phrase"]
    assert shows(incident["excerpt"], "kill myself")
    assert (
        "kms" not in incident["excerpt"]
    )  # script text is not what the pupil saw  # script text is not what the pupil saw
    explanation = incident["explanation"][0]
    assert explanation["library_file"].endswith(".txt") and explanation["line"] > 0
    assert incident["time"].endswith("Z") or incident["time"].endswith("+00:00")


@pytest.mark.parametrize("path,marker", [("/gzip.html", "gzip"), ("/brotli.html", "br")])
def test_compressed_pages_are_scanned_and_delivered_byte_exact(
    proxy: Proxy, upstream: Upstream, path: str, marker: str
) -> None:
    body, headers = _raw_get(proxy, f"http://pages.test{path}")
    assert headers.get("content-encoding") == marker
    assert body == upstream.pages[path].body  # still compressed, byte for byte
    rows = proxy.wait_incidents(lambda rows: _by_url(rows, path))
    (incident,) = _by_url(rows, path)
    assert incident["category"] in SUICIDE_CATEGORIES


def test_windows_1252_page_excerpt_shows_what_the_pupil_saw(proxy: Proxy, upstream: Upstream) -> None:
    body, _ = _raw_get(proxy, "http://pages.test/cp1252.html")
    assert body == upstream.pages["/cp1252.html"].body
    rows = proxy.wait_incidents(lambda rows: _by_url(rows, "cp1252"))
    (incident,) = _by_url(rows, "cp1252")
    assert re.search("\u201c[^\\[]*\\[\\[[^\\]]*kill myself\\]\\]\u201d \u2013", incident["excerpt"]), (
        incident["excerpt"]
    )


def test_search_query_is_recorded_as_a_search(proxy: Proxy, upstream: Upstream) -> None:
    with proxy.client() as client:
        response = client.get("https://www.google.com/search", params={"q": "how to kill myself painlessly"})
    assert response.status_code == 200
    rows = proxy.wait_incidents(lambda rows: [r for r in rows if r["source"] == "search"])
    searches = [r for r in rows if r["source"] == "search"]
    assert searches and searches[0]["host"] == "www.google.com"
    assert searches[0]["category"] in SUICIDE_CATEGORIES
    assert shows(searches[0]["excerpt"], "kill myself")


def test_form_post_is_scanned_and_reaches_the_server_unchanged(proxy: Proxy, upstream: Upstream) -> None:
    with proxy.client() as client:
        response = client.post(
            "http://forum.test/post", data={"message": "i am going to kill myself tonight"}
        )
    assert response.status_code == 200
    assert ("POST", "/post", b"message=i+am+going+to+kill+myself+tonight") in upstream.received
    rows = proxy.wait_incidents(lambda rows: [r for r in rows if r["source"] == "form"])
    forms = [r for r in rows if r["source"] == "form"]
    assert forms and forms[0]["host"] == "forum.test" and forms[0]["category"] in SUICIDE_CATEGORIES


def test_websocket_chat_is_scanned_both_ways(proxy: Proxy, upstream: Upstream) -> None:
    with ws_connect("ws://chat.test/room", proxy=proxy.url) as websocket:
        websocket.send("honestly i want to kill myself")
        reply = websocket.recv(timeout=10)
    assert str(reply).startswith("bot: I hear you")
    rows = proxy.wait_incidents(lambda rows: [r for r in rows if r["source"] == "websocket"])
    chats = [r for r in rows if r["source"] == "websocket"]
    assert chats and chats[0]["host"] == "chat.test" and shows(chats[0]["excerpt"], "kill myself")


def test_csv_export_opens_in_excel(proxy: Proxy, upstream: Upstream) -> None:
    _raw_get(proxy, "http://pages.test/phrase.html?csv=1")
    proxy.wait_incidents(lambda rows: _by_url(rows, "csv=1"))
    out = subprocess.run(
        [*NETMON, "export", "--db", proxy.db_url, "--format", "csv"],
        capture_output=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert out.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(out.decode("utf-8-sig"))))
    assert any("csv=1" in row["url"] for row in rows)


def test_search_is_recorded_even_when_the_site_cannot_be_reached(proxy: Proxy, upstream: Upstream) -> None:
    """What the pupil typed counts even if the search engine never answers (netmon scans the request)."""
    with proxy.client() as client:
        response = client.get("http://www.google.co.uk/search", params={"q": "kill myself unreachable"})
    assert response.status_code == 502  # the test routing refuses this host: nothing leaves loopback
    rows = proxy.wait_incidents(lambda rows: _by_url(rows, "unreachable"))
    (incident,) = _by_url(rows, "unreachable")
    assert incident["source"] == "search" and incident["host"] == "www.google.co.uk"
    assert shows(incident["excerpt"], "kill myself")
