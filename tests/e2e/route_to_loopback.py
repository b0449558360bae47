"""Test-only mitmproxy script: plays DNS for the test so that no traffic ever leaves loopback.

Every upstream connection goes to 127.0.0.1; the port comes from NETMON_TEST_ROUTES, a JSON object
mapping "host:port" (or "host") to a loopback port. Unknown hosts are refused, never resolved.
"""

import json
import os

from mitmproxy import connection

ROUTES: dict[str, int] = json.loads(os.environ.get("NETMON_TEST_ROUTES", "{}"))


def server_connect(data) -> None:  # type: ignore[no-untyped-def]
    server: connection.Server = data.server
    assert server.address is not None
    host, port = server.address
    target = ROUTES.get(f"{host}:{port}", ROUTES.get(host))
    if target is None:
        data.server.error = f"test routing: no route for {host}:{port}"
        server.address = ("127.0.0.1", 9)  # discard port on loopback: refused at once
        return
    server.address = ("127.0.0.1", target)
