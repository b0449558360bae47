"""An Apple configuration profile (.mobileconfig) for the WireGuard app: the tunnel, connected on demand.

The payload follows the WireGuard app's documented format (``com.apple.vpn.managed``, ``VPNType`` VPN,
``VPNSubType`` the app's bundle id, the wg-quick text in ``VendorConfig.WgQuickConfig``), with Apple's
on-demand keys in the ``VPN`` dictionary: one rule, "Connect", so the tunnel comes up by itself on every
network and after every restart, and ``OnDemandUserOverrideDisabled`` so the user cannot switch on-demand
off (honoured on supervised devices). Networks listed as ``trusted_ssids`` (the school's own Wi-Fi,
monitored there already) get a "Disconnect" rule first.

The profile holds the device's private key: deliver it through the MDM, never by e-mail.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Sequence

BUNDLE_IDS = {"ios": "com.wireguard.ios", "macos": "com.wireguard.macos"}
_NAMESPACE = uuid.UUID("5b0c6a62-3d6c-4d2e-9d53-6e65746d6f6e")  # stable UUIDs per device and key


def apple_profile(
    *,
    device: str,
    username: str,
    wg_quick: str,
    endpoint: str,
    organisation: str = "School",
    identifier: str = "uk.sch.netmon",
    platform: str = "ios",
    trusted_ssids: Sequence[str] = (),
) -> bytes:
    """The .mobileconfig (XML plist bytes) for one device; ``platform``: ``ios`` (iPad) or ``macos``."""
    if platform not in BUNDLE_IDS:
        raise ValueError(f"platform must be one of {', '.join(BUNDLE_IDS)} (got {platform!r})")
    rules: list[dict[str, object]] = []
    if trusted_ssids:
        rules.append({"Action": "Disconnect", "InterfaceTypeMatch": "WiFi", "SSIDMatch": list(trusted_ssids)})
    rules.append({"Action": "Connect"})
    seed = f"{identifier}.{device}.{wg_quick}"
    vpn_payload = {
        "PayloadDisplayName": "VPN",
        "PayloadType": "com.apple.vpn.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.wireguard.{device}.vpn",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, seed + ".vpn")).upper(),
        "PayloadDescription": f"Always-on school VPN for {device} ({username})",
        "UserDefinedName": f"{organisation} ({device})",
        "VPNType": "VPN",
        "VPNSubType": BUNDLE_IDS[platform],
        "VendorConfig": {"WgQuickConfig": wg_quick},
        "VPN": {
            "RemoteAddress": endpoint,
            "AuthenticationMethod": "Password",
            "OnDemandEnabled": 1,
            "OnDemandRules": rules,
            "OnDemandUserOverrideDisabled": True,
            "DisconnectOnIdle": 0,
        },
    }
    profile = {
        "PayloadDisplayName": f"{organisation}: school VPN for {device}",
        "PayloadDescription": (
            "Web traffic from this school-owned device goes through the school's safeguarding monitor, "
            "on and off site, as set out in the Acceptable Use Policy."
        ),
        "PayloadOrganization": organisation,
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.wireguard.{device}",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, seed)).upper(),
        "PayloadRemovalDisallowed": True,
        "PayloadContent": [vpn_payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=False)
