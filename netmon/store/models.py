"""Imports every feature's tables so that Base.metadata knows them all (used by Alembic and tests).

Each feature owns its own module: add one import line here when you add a table module.
"""

from netmon.store import (
    alerts,  # noqa: F401
    console,  # noqa: F401
    devices,  # noqa: F401
    identity,  # noqa: F401
    incidents,  # noqa: F401
    suggestions,  # noqa: F401
)
