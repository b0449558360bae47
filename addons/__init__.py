"""Thin mitmproxy adapters for netmon. mitmdump loads one composition root: ``addons/entry.py``."""
