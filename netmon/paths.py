"""Where netmon finds its shipped data (library, policy, config) and keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout (or installed tree) that holds ``library/``, ``policy/`` and ``mitm_config.yaml``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_LIBRARY_DIR = PROJECT_ROOT / "library"
DEFAULT_POLICY_DIR = PROJECT_ROOT / "policy"
DEFAULT_MITM_CONFIG = PROJECT_ROOT / "mitm_config.yaml"
ADDON_ENTRY = PROJECT_ROOT / "addons" / "entry.py"


def state_dir() -> Path:
    """Directory for the embedded default database and runtime state (``NETMON_STATE_DIR`` or ./var)."""
    return Path(os.environ.get("NETMON_STATE_DIR", "var")).resolve()


def default_db_url() -> str:
    """The embedded default store: a SQLite file in the state directory."""
    return os.environ.get("NETMON_DB") or f"sqlite:///{state_dir() / 'netmon.db'}"
