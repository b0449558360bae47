"""A minimal chain for the portal's own mitmdump tests: shared options, identity tagging, portal gate."""

from netmon_proxy.identity import IdentityTagger, PortalGate
from netmon_proxy.settings import Settings

_identity = IdentityTagger()
addons = [Settings(), _identity, PortalGate(_identity)]
