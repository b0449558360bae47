"""Request safety for the portal: "continue to" URL checks (CSRF tokens and rate limits are shared
with the console, in :mod:`netmon.identity.guard`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from netmon.identity.signing import link_signature_ok


def safe_local_path(target: str) -> bool:
    """A path on the portal itself ("/ca"), never "//host", "/\\host" or a scheme."""
    return (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
        and not any(ord(c) < 32 for c in target)
    )


def continue_url(
    target: str | None, signature: str | None, link_key: str | None, device: str = ""
) -> str | None:
    """Where to send the device after sign-in, or None.

    Only a URL the gate signed for this device (with the key it shares with the portal through the store:
    the URL the device itself asked for) or a path on the portal itself is accepted: anything else would
    make the portal an open redirect.
    """
    if not target or len(target) > 4000:
        return None
    if safe_local_path(target):
        return target
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    if link_signature_ok(link_key, target, signature or "", device):
        return target
    return None
