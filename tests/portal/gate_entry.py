"""A minimal chain for the portal's own mitmdump tests: shared options, identity tagging, portal gate."""

from addons.identity import IdentityTagger, PortalGate
from addons.settings import Settings

_identity = IdentityTagger()
addons = [Settings(), _identity, PortalGate(_identity)]
