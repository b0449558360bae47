"""Where netmon finds its shipped data (library, policy, config, deploy files) and keeps its state.

An installed wheel carries the data inside the package (``netmon/_shipped/``, written by setup.py); a
checkout (or an editable install of one) uses the repository's own top-level folders.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_SHIPPED = _PACKAGE / "_shipped"

#: The folder that holds ``library/``, ``policy/``, ``deploy/`` and ``mitm_config.yaml``.
DATA_ROOT = _SHIPPED if _SHIPPED.is_dir() else _PACKAGE.parent

DEFAULT_LIBRARY_DIR = DATA_ROOT / "library"
DEFAULT_POLICY_DIR = DATA_ROOT / "policy"
DEFAULT_MITM_CONFIG = DATA_ROOT / "mitm_config.yaml"
DEPLOY_DIR = DATA_ROOT / "deploy"


def state_dir() -> Path:
    """Directory for the embedded default database and runtime state (``NETMON_STATE_DIR`` or ./var)."""
    return Path(os.environ.get("NETMON_STATE_DIR", "var")).resolve()


def default_db_url() -> str:
    """The embedded default store: a SQLite file in the state directory."""
    return os.environ.get("NETMON_DB") or f"sqlite:///{state_dir() / 'netmon.db'}"
