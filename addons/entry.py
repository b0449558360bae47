"""Composition root: the one script mitmdump loads (``mitmdump -s addons/entry.py``).

Order matters: identity first (who is this?), then the portal gate, TLS policy and filtering, then the
scanners, and the recorder last so that its ``done`` flushes after the scanners have finished.
Add an addon with one line in ``build()``.
"""

from __future__ import annotations

from addons.phrase_scanner import PhraseScanner
from addons.recorder import IncidentRecorder
from addons.settings import Settings
from addons.status import StatusWriter
from addons.tls import TlsPolicy


def build() -> list[object]:
    recorder = IncidentRecorder()
    submit = recorder.submit
    chain: list[object] = [
        Settings(),
        StatusWriter(),
        TlsPolicy(submit),
        PhraseScanner(submit),
        recorder,
    ]
    return chain


addons = build()
