"""The ``netmon`` command line.

Each sub-command lives in its own module under ``netmon.cli`` and is imported only when used, so a
broken or slow import in one command never affects another. Add a core command by adding one line to
``COMMANDS``: name -> "module:attribute" (a ``click.Command`` or ``click.Group``) in ``netmon.cli``.

The faces (the proxy's ``run``, the portal's ``portal``, the staff console) register their commands as
entry points in the ``netmon.commands`` group (pyproject.toml); the core never names a face.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

import click

COMMANDS: dict[str, str] = {
    "library": "netmon.cli.library_cmd:library",
    "export": "netmon.cli.export_cmd:export",
    "incidents": "netmon.cli.export_cmd:incidents",
    "db": "netmon.cli.db_cmd:db",
    "users": "netmon.cli.users_cmd:users",
    "sessions": "netmon.cli.sessions_cmd:sessions",
    "policy": "netmon.cli.policy_cmd:policy",
    "alerts": "netmon.cli.alerts_cmd:alerts",
    "report": "netmon.cli.report_cmd:report",
    "hashlist": "netmon.cli.hashlist_cmd:hashlist",
    "lists": "netmon.cli.lists_cmd:lists",
    "doctor": "netmon.cli.doctor_cmd:doctor",
    "status": "netmon.cli.status_cmd:status",
    "staff": "netmon.cli.staff_cmd:staff",
    "audit": "netmon.cli.audit_cmd:audit",
    "purge": "netmon.cli.purge_cmd:purge",
    "devices": "netmon.cli.devices_cmd:devices",
}


#: The entry-point group in which the faces register their commands.
FACE_COMMANDS = "netmon.commands"


def _faces() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=FACE_COMMANDS)}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({**_faces(), **COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name) or _faces().get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.version_option(package_name="netmon")
def main(verbose: int) -> None:
    """netmon: open safeguarding monitor for school Wi-Fi (BYOD), built on mitmproxy."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
