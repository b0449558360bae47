"""Test-only mitmdump script: the list addons with a stand-in identity and a JSON-lines recorder.

Used by tests/lists/test_mitmdump.py before/besides the composition root (addons/entry.py):
- the header ``X-Test-Groups: a,b`` (removed before forwarding) becomes ``flow.metadata["netmon.user"]``,
  standing in for the portal's IdentityTagger;
- every ScanResult is appended as one JSON line to the file named by ``NETMON_TEST_RESULTS``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading

from mitmproxy import http
from netmon_proxy.blocking import Filtering

from netmon.scan.findings import ScanResult

_lock = threading.Lock()


def submit(result: ScanResult) -> None:
    line = json.dumps(dataclasses.asdict(result), default=repr)
    with _lock, open(os.environ["NETMON_TEST_RESULTS"], "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class TestIdentity:
    def request(self, flow: http.HTTPFlow) -> None:
        groups = flow.request.headers.pop("X-Test-Groups", None)
        if groups is not None:
            flow.metadata["netmon.user"] = {
                "user": "pupil-" + groups.split(",")[0],
                "role": "pupil",
                "year_group": None,
                "groups": groups.split(","),
            }


addons = [TestIdentity(), Filtering(submit)]
