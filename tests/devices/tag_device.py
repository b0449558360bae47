"""A mitmproxy script for the tunnel lab: what the proxy would know of each flow's device.

It uses the core's DeviceDirectory exactly as IdentityTagger is meant to (snapshot lookup by the client
address) and reports the identity in a response header, so the test reads it at the home end.
"""

from __future__ import annotations

import json
import os

from mitmproxy import http

from netmon.identity.devices import DeviceDirectory
from netmon.store.db import make_engine


class TagDevice:
    def __init__(self) -> None:
        self.directory: DeviceDirectory | None = None

    def running(self) -> None:
        self.directory = DeviceDirectory(make_engine(os.environ["NETMON_DB"]), poll=0.2)
        self.directory.start()

    def done(self) -> None:
        if self.directory is not None:
            self.directory.stop()

    def response(self, flow: http.HTTPFlow) -> None:
        assert self.directory is not None and flow.response is not None
        found = self.directory.snapshot.lookup(flow.client_conn.peername[0])
        flow.response.headers["X-Netmon-Device"] = json.dumps(found.as_metadata() if found else None)


addons = [TagDevice()]
