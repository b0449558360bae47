"""netmon's staff console: triage, review, outcome and audit in a browser (installed as ``netmon_console``).

A Flask app served by waitress (``netmon console``); it shares state with the proxy and the portal only
through the store, and reads incidents through ``netmon.incidents.queries``.
"""
