"""The captive portal: a small Flask service on the gateway where pupils and staff accept the AUP and sign
in. It never imports the proxy's addons: the two share state only through the store."""

from netmon_portal.app import PortalConfig, create_app

__all__ = ["PortalConfig", "create_app"]
