"""The ``netmon`` command line.

Each sub-command lives in its own module under ``netmon.cli`` and is imported only when used, so a
broken or slow import in one command never affects another. Add a command by adding one line to
``COMMANDS``: name -> "module:attribute" (a ``click.Command`` or ``click.Group``).
"""

from __future__ import annotations

import importlib
import logging

import click

COMMANDS: dict[str, str] = {
    "run": "addons.cli_run:run",
    "library": "netmon.cli.library_cmd:library",
    "export": "netmon.cli.export_cmd:export",
    "incidents": "netmon.cli.export_cmd:incidents",
    "db": "netmon.cli.db_cmd:db",
    "users": "netmon.cli.users_cmd:users",
    "sessions": "netmon.cli.sessions_cmd:sessions",
    "portal": "captive_portal.cli:portal",
    "policy": "netmon.cli.policy_cmd:policy",
    "alerts": "netmon.cli.alerts_cmd:alerts",
    "report": "netmon.cli.report_cmd:report",
    "hashlist": "netmon.cli.hashlist_cmd:hashlist",
    "lists": "netmon.cli.lists_cmd:lists",
    "doctor": "netmon.cli.doctor_cmd:doctor",
    "status": "netmon.cli.status_cmd:status",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
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
