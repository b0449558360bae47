"""Composition root: the one script mitmdump loads (``mitmdump -s addons/entry.py``).

Order matters: identity first (who is this?), then the portal gate, TLS policy and filtering, then
the scanners, then the recorder so that its ``done`` flushes after the scanners have finished, the
status writer so that the final ``status.json`` counts everything done while stopping, and last the
start-up freeze (``addons/runtime.py``).
Add an addon with one line in ``build()``.
"""

from __future__ import annotations

from netmon_proxy.alerts import AlertDelivery
from netmon_proxy.blocking import Filtering
from netmon_proxy.composite import Composite
from netmon_proxy.identity import IdentityTagger, PortalGate
from netmon_proxy.logscrub import install as keep_content_out_of_logs
from netmon_proxy.phrase_scanner import PhraseScanner
from netmon_proxy.recorder import IncidentRecorder
from netmon_proxy.runtime import FreezeStartup
from netmon_proxy.settings import Settings, SharedPolicy
from netmon_proxy.status import StatusWriter
from netmon_proxy.tls import TlsPolicy, identify_with


def build() -> list[object]:
    recorder = IncidentRecorder()
    submit = recorder.submit
    identity = IdentityTagger()
    policy = SharedPolicy()  # the school policy: loaded once, reloaded for every part that reads it
    filtering = Filtering(submit, policy)  # lists, safe search, URL lists, blocker, image scanner
    chain: list[object] = [
        Settings(),
        identity,
        PortalGate(identity),
        TlsPolicy(submit, host_hits=filtering.host_hits, identify=identify_with(identity)),
        filtering,
        PhraseScanner(submit),
        recorder,
        AlertDelivery(recorder, policy),
        StatusWriter(),  # its final status.json counts what the others did while stopping
        FreezeStartup(),  # last: once every part has loaded its state
    ]
    return chain


# One addon for mitmproxy to look hooks up on (addons/composite.py says why).
keep_content_out_of_logs()
addons = [Composite(build())]
