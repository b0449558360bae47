"""Test-only mitmproxy script: shows the identity the chain attached to a flow in a response header."""

import json

from mitmproxy import http


def response(flow: http.HTTPFlow) -> None:
    if flow.response is not None:
        user = flow.metadata.get("netmon.user")
        flow.response.headers["X-Netmon-Test-User"] = json.dumps(user, sort_keys=True)
