"""Operating-system captive-portal checks ("probes") and the answers each OS expects when it is online.

Shared by the proxy's portal gate (which answers them) and the portal's tests. Before sign-in a probe is
answered with a redirect to the portal, which makes the OS open its sign-in sheet; after sign-in with the
exact "online" answer below, so the OS closes the sheet without the gateway fetching anything upstream.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLE_SUCCESS = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = (
    b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)
NM_ONLINE = b"NetworkManager is online\n"

#: The hostname and path the portal's "does this device trust the certificate?" check fetches over HTTPS.
#: The gate answers it itself; the fetch only succeeds when the device trusts the school's CA.
TRUST_CHECK_HOST = "mitm.it"
TRUST_CHECK_PATH = "/netmon-trust-check"
TRUST_CHECK_URL = f"https://{TRUST_CHECK_HOST}{TRUST_CHECK_PATH}"


@dataclass(frozen=True, slots=True)
class Probe:
    os: str  # apple | android | chromeos | windows | firefox | linux
    host: str
    path: str  # exact path without query; "*" matches any path on that host
    status: int
    body: bytes
    content_type: str

    def matches(self, host: str, path: str) -> bool:
        return host == self.host and (self.path == "*" or path.split("?", 1)[0] == self.path)


def _p(os: str, host: str, path: str, status: int, body: bytes = b"", ctype: str = "text/plain") -> Probe:
    return Probe(os, host, path, status, body, ctype)


PROBES: tuple[Probe, ...] = (
    _p("apple", "captive.apple.com", "*", 200, APPLE_SUCCESS, "text/html"),
    _p("apple", "www.apple.com", "/library/test/success.html", 200, APPLE_SUCCESS, "text/html"),
    *(
        _p("apple", h, "*", 200, APPLE_SUCCESS, "text/html")
        for h in (
            "www.appleiphonecell.com",
            "www.itools.info",
            "www.ibook.info",
            "www.airport.us",
            "www.thinkdifferent.us",
        )
    ),
    *(
        _p("android", h, "/generate_204", 204)
        for h in ("connectivitycheck.gstatic.com", "connectivitycheck.android.com", "play.googleapis.com")
    ),
    _p("android", "www.google.com", "/gen_204", 204),
    _p("android", "www.google.com", "/generate_204", 204),
    *(_p("chromeos", h, "/generate_204", 204) for h in ("clients1.google.com", "clients3.google.com")),
    _p("windows", "www.msftconnecttest.com", "/connecttest.txt", 200, b"Microsoft Connect Test"),
    _p("windows", "ipv6.msftconnecttest.com", "/connecttest.txt", 200, b"Microsoft Connect Test"),
    _p("windows", "www.msftncsi.com", "/ncsi.txt", 200, b"Microsoft NCSI"),
    _p("windows", "ipv6.msftncsi.com", "/ncsi.txt", 200, b"Microsoft NCSI"),
    _p("firefox", "detectportal.firefox.com", "/success.txt", 200, b"success\n"),
    _p("firefox", "detectportal.firefox.com", "/canonical.html", 200, FIREFOX_CANONICAL, "text/html"),
    _p("linux", "connectivity-check.ubuntu.com", "*", 204),
    _p("linux", "nmcheck.gnome.org", "/check_network_status.txt", 200, NM_ONLINE),
    _p("linux", "network-test.debian.org", "/nm", 200, NM_ONLINE),
)


def find_probe(host: str, path: str) -> Probe | None:
    """The probe a plain-HTTP request to ``host`` + ``path`` is, if any."""
    host = host.lower().rstrip(".")
    for probe in PROBES:
        if probe.matches(host, path):
            return probe
    return None
