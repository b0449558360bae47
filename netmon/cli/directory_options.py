"""The school directory's (LDAP/AD) command-line options, shared by `netmon portal` (pupils sign in) and
`netmon console` (staff with ``--auth directory`` sign in), and the one check that makes them a config."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from netmon.identity.users import DirectoryConfig

_OPTIONS = (
    click.option(
        "--ldap-url",
        envvar="NETMON_LDAP_URL",
        default="",
        help="ldap:// or ldaps:// URL of the school directory.",
    ),
    click.option(
        "--ldap-user-dn",
        envvar="NETMON_LDAP_USER_DN",
        default="",
        help="Bind DN template, e.g. 'uid={username},ou=people,dc=school,dc=uk' or "
        "'{username}@school.local'.",
    ),
    click.option(
        "--ldap-base-dn", envvar="NETMON_LDAP_BASE_DN", default="", help="Search base (search-then-bind)."
    ),
    click.option(
        "--ldap-filter",
        envvar="NETMON_LDAP_FILTER",
        default="(uid={username})",
        show_default=True,
        help="Search filter (AD: '(sAMAccountName={username})').",
    ),
    click.option(
        "--ldap-bind-dn",
        envvar="NETMON_LDAP_BIND_DN",
        default="",
        help="Service account for searching (its password: NETMON_LDAP_BIND_PASSWORD).",
    ),
    click.option("--ldap-start-tls", is_flag=True, envvar="NETMON_LDAP_START_TLS", help="Use StartTLS."),
)


def directory_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--ldap-url``, ``--ldap-user-dn``, ``--ldap-base-dn``, ``--ldap-filter``, ``--ldap-bind-dn``
    and ``--ldap-start-tls`` (each also from its ``NETMON_LDAP_*`` variable) to ``command``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def directory_config(
    ldap_url: str,
    ldap_user_dn: str,
    ldap_base_dn: str,
    ldap_filter: str,
    ldap_bind_dn: str,
    ldap_start_tls: bool,
    year_attribute: str = "",
) -> DirectoryConfig | None:
    """The directory those options name (None without ``--ldap-url``); the bind password comes from
    ``NETMON_LDAP_BIND_PASSWORD`` only, never the command line."""
    if not ldap_url:
        return None
    if not (ldap_user_dn or ldap_base_dn):
        raise click.BadParameter(
            "give --ldap-user-dn or --ldap-base-dn with --ldap-url", param_hint="--ldap-url"
        )
    return DirectoryConfig(
        url=ldap_url,
        user_dn=ldap_user_dn,
        base_dn=ldap_base_dn,
        search_filter=ldap_filter,
        bind_dn=ldap_bind_dn,
        bind_password=os.environ.get("NETMON_LDAP_BIND_PASSWORD", ""),
        start_tls=ldap_start_tls,
        year_attribute=year_attribute,
    )
