"""Composition root: the one script mitmdump loads (``mitmdump -s addons/entry.py``).

Order matters: identity first (who is this?), then the portal gate, TLS policy and filtering, then the
scanners, and the recorder last so that its ``done`` flushes after the scanners have finished.
Add an addon with one line in ``build()``.
"""

from __future__ import annotations

from addons.alerts import AlertDelivery
from addons.blocking import Filtering
from addons.identity import IdentityTagger, PortalGate
from addons.phrase_scanner import PhraseScanner
from addons.recorder import IncidentRecorder
from addons.settings import Settings
from addons.status import StatusWriter
from addons.tls import TlsPolicy, identify_with


def build() -> list[object]:
    recorder = IncidentRecorder()
    submit = recorder.submit
    identity = IdentityTagger()
    filtering = Filtering(submit)  # lists, safe search, URL lists, blocker, image scanner
    chain: list[object] = [
        Settings(),
        StatusWriter(),
        identity,
        PortalGate(identity),
        TlsPolicy(submit, host_hits=filtering.host_hits, identify=identify_with(identity)),
        filtering,
        PhraseScanner(submit),
        recorder,
        AlertDelivery(recorder),
    ]
    return chain


addons = build()
