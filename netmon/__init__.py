"""netmon: an open safeguarding monitor for school BYOD Wi-Fi.

The ``netmon`` package is the framework-free core: library loading, normalisation and matching,
extraction of text from HTTP bodies, policy, identity, incidents, the store, mail, reports and the CLI.
It never imports mitmproxy; the adapters in ``addons/`` do.
"""

__version__ = "0.1.0"
