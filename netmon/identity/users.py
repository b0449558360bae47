"""Accounts: roster CSV import with argon2 password hashes, and sign-in against them or the school's
directory (LDAP / Active Directory bind with ldap3).

Roster CSV header: ``username,display_name,role,year_group,groups,password``. ``groups`` are separated by
``;``. ``password`` is optional: blank means directory sign-in only. Re-importing updates existing users
(by username, case-insensitive) and never duplicates them; a blank password keeps any existing hash.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.errors import ConfigError, NetmonError
from netmon.store.base import utcnow
from netmon.store.identity import UserAccount

log = logging.getLogger(__name__)

ROSTER_COLUMNS = ("username", "display_name", "role", "year_group", "groups", "password")
ROLES = ("pupil", "staff")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$")
_hasher = PasswordHasher()
# verified against when a user is unknown, so that a wrong user name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("netmon-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def normalise_username(username: str) -> str:
    return username.strip().lower()


def valid_username(username: str) -> bool:
    return bool(_USERNAME.match(username))


@dataclass(frozen=True, slots=True)
class Account:
    """Who signed in: the identity the proxy attaches to every flow of the device."""

    username: str
    display_name: str
    role: str
    year_group: str | None
    groups: tuple[str, ...]
    source: str  # "local" or "directory"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def _row_error(row: dict[str, str]) -> str | None:
    username = row["username"]
    if not username:
        return "username is empty"
    if not valid_username(username):
        return f"username {username!r} may only hold letters, digits, '.', '_', '@' and '-'"
    if row["role"] not in ROLES:
        return f"role must be pupil or staff (got {row['role']!r})"
    if len(row["display_name"]) > 200:
        return "display_name is longer than 200 characters"
    if len(row["year_group"]) > 20:
        return "year_group is longer than 20 characters"
    if any(len(g) > 100 for g in row["groups"].split(";")):
        return "a group name is longer than 100 characters"
    return None


def read_roster(
    text: str, where: str = "roster"
) -> tuple[list[tuple[int, dict[str, str]]], list[tuple[int, str]]]:
    """Parse roster CSV text into (line, row) and (line, error) pairs; ConfigError for a bad header."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration as exc:
        raise ConfigError(
            where, "empty file: the first line must be the header " + ",".join(ROSTER_COLUMNS)
        ) from exc
    missing = [c for c in ROSTER_COLUMNS[:5] if c not in header]
    if missing:
        raise ConfigError(
            f"{where}:1", f"header lacks {', '.join(missing)}; expected " + ",".join(ROSTER_COLUMNS)
        )
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append((line, f"expected {len(header)} fields, got {len(values)}"))
            continue
        row = {k: v.strip() for k, v in zip(header, values, strict=True)}
        row.setdefault("password", "")
        row["password"] = dict(zip(header, values, strict=True)).get("password", "")  # keep spaces
        row["username"] = normalise_username(row["username"])
        row["role"] = row["role"].lower()
        problem = _row_error(row)
        if problem is None and row["username"] in seen:
            problem = f"username {row['username']!r} already given on line {seen[row['username']]}"
        if problem:
            errors.append((line, problem))
            continue
        seen[row["username"]] = line
        rows.append((line, row))
    return rows, errors


def import_roster(session: Session, path: Path) -> ImportReport:
    """Create or update the users in the roster CSV at ``path`` (the caller commits)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "not UTF-8: save the roster as CSV UTF-8") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    rows, errors = read_roster(text, str(path))
    report = ImportReport(errors=[(line, f"{path}:{line}: {msg}") for line, msg in errors])
    existing = {u.username: u for u in session.scalars(select(UserAccount))}
    now = utcnow()
    for _line, row in rows:
        groups = [g.strip() for g in row["groups"].split(";") if g.strip()]
        values: dict[str, Any] = {
            "display_name": row["display_name"],
            "role": row["role"],
            "year_group": row["year_group"] or None,
            "groups": groups,
        }
        user = existing.get(row["username"])
        if user is None:
            user = UserAccount(
                username=row["username"],
                source="roster",
                created_at=now,
                updated_at=now,
                password_hash=hash_password(row["password"]) if row["password"] else None,
                **values,
            )
            session.add(user)
            existing[user.username] = user
            report.created += 1
            continue
        changed = any(getattr(user, k) != v for k, v in values.items()) or user.source != "roster"
        if row["password"] and not verify_password(user.password_hash, row["password"]):
            user.password_hash = hash_password(row["password"])
            changed = True
        if changed:
            for k, v in values.items():
                setattr(user, k, v)
            user.source = "roster"
            user.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def account_of(user: UserAccount, source: str) -> Account:
    return Account(
        user.username,
        user.display_name or user.username,
        user.role,
        user.year_group,
        tuple(user.groups or ()),
        source,
    )


# --- directory (LDAP / Active Directory) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """How to check a password against the school's directory.

    Either ``user_dn`` (a template such as ``uid={username},ou=people,dc=school,dc=uk`` or, for Active
    Directory, ``{username}@school.local``) for a direct bind, or ``base_dn`` + ``search_filter`` (e.g.
    ``(sAMAccountName={username})``) with an optional service account (``bind_dn``/``bind_password``) to
    find the user's DN first.
    """

    url: str  # ldap://host:389 or ldaps://host:636
    user_dn: str = ""
    base_dn: str = ""
    search_filter: str = "(uid={username})"
    bind_dn: str = ""
    bind_password: str = ""
    start_tls: bool = False
    timeout: float = 5.0
    role_attribute: str = "employeeType"  # value containing "staff"/"teacher" -> staff, else pupil
    year_attribute: str = ""  # e.g. "departmentNumber"; blank: no year group from the directory
    group_attribute: str = "memberOf"  # group DNs; their first RDN value becomes the group name


class DirectoryError(NetmonError):
    """The directory could not be reached (as opposed to: the password was wrong)."""


def _first(value: Any) -> str:
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _directory_base(dn: str) -> str:
    """The domain part of a DN (``dc=school,dc=uk`` of ``uid=a,ou=people,dc=school,dc=uk``), or ""."""
    parts = [p.strip() for p in dn.split(",")]
    for i, part in enumerate(parts):
        if part.lower().startswith("dc="):
            return ",".join(parts[i:])
    return ""


def _group_name(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def directory_authenticate(config: DirectoryConfig, username: str, password: str) -> Account | None:
    """Bind as the user; on success read their name, role, year group and groups. None: wrong password."""
    import ldap3
    from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPInvalidCredentialsResult
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

    if not password or not valid_username(username):
        return None  # an empty password would be an anonymous bind: never a sign-in
    server = ldap3.Server(config.url, connect_timeout=config.timeout, get_info=ldap3.NONE)
    attributes = [
        a
        for a in ("displayName", "cn", config.role_attribute, config.year_attribute, config.group_attribute)
        if a
    ]
    try:
        if config.user_dn:
            user_dn = config.user_dn.format(username=escape_rdn(username))
        else:
            finder = ldap3.Connection(
                server,
                user=config.bind_dn or None,
                password=config.bind_password or None,
                receive_timeout=int(config.timeout),
                raise_exceptions=True,
            )
            finder.open()
            if config.start_tls:
                finder.start_tls()
            finder.bind()
            finder.search(
                config.base_dn,
                config.search_filter.format(username=escape_filter_chars(username)),
                attributes=[],
            )
            entries = list(finder.entries)
            finder.unbind()
            if len(entries) != 1:
                return None
            user_dn = entries[0].entry_dn
        conn = ldap3.Connection(
            server,
            user=user_dn,
            password=password,
            receive_timeout=int(config.timeout),
            raise_exceptions=True,
        )
        conn.open()
        if config.start_tls:
            conn.start_tls()
        try:
            conn.bind()
        except (LDAPBindError, LDAPInvalidCredentialsResult):
            return None
        values: dict[str, Any] = {}
        groups: list[str] = []
        try:  # the password is right: what follows only enriches the identity, it never fails a sign-in
            if (
                conn.search(user_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
                and conn.entries
            ):
                values = conn.entries[0].entry_attributes_as_dict
            member_of = values.get(config.group_attribute, []) if config.group_attribute else []
            groups = [_group_name(str(g)) for g in member_of if g]
            base = config.base_dn or _directory_base(user_dn)
            if not groups and base:
                query = (
                    f"(|(member={escape_filter_chars(user_dn)})(uniqueMember={escape_filter_chars(user_dn)})"
                    f"(memberUid={escape_filter_chars(username)}))"
                )
                if conn.search(base, query, attributes=["cn"]):
                    groups = [_first(e.entry_attributes_as_dict.get("cn")) for e in conn.entries]
        except LDAPException as exc:
            log.info("directory: could not read the details of a signed-in user: %s", exc.__class__.__name__)
        conn.unbind()
    except (LDAPBindError, LDAPInvalidCredentialsResult):
        return None
    except LDAPException as exc:
        raise DirectoryError(f"directory {config.url}: {exc.__class__.__name__}: {exc}") from exc
    role_value = _first(values.get(config.role_attribute)).lower() if config.role_attribute else ""
    staff_words = ("staff", "teacher", "employee")
    staff = any(w in role_value for w in staff_words) or any(
        w in g.lower() for g in groups for w in staff_words
    )
    return Account(
        username=normalise_username(username),
        display_name=_first(values.get("displayName")) or _first(values.get("cn")) or username,
        role="staff" if staff else "pupil",
        year_group=(_first(values.get(config.year_attribute)) or None) if config.year_attribute else None,
        groups=tuple(g for g in groups if g),
        source="directory",
    )


def authenticate(
    session: Session, username: str, password: str, directory: DirectoryConfig | None = None
) -> Account | None:
    """Check a sign-in: the local (roster) password first, then the directory when one is configured.

    A roster entry decides role, year group and groups even when the password is checked by the directory.
    A directory user not in the roster is added to ``users`` (source ``directory``) on first sign-in.
    Returns None for a wrong user name or password; raises DirectoryError when the directory is down.
    """
    name = normalise_username(username)
    if not valid_username(name) or not password:
        verify_password(None, password or "x")  # same cost as a real check
        return None
    user = session.scalar(select(UserAccount).where(UserAccount.username == name))
    if user is not None and user.password_hash and verify_password(user.password_hash, password):
        return account_of(user, "local")
    if user is None or not user.password_hash:
        verify_password(None, password)
    if directory is None:
        return None
    found = directory_authenticate(directory, name, password)
    if found is None:
        return None
    if user is not None:
        return account_of(user, "directory")
    now = utcnow()
    session.add(
        UserAccount(
            username=found.username,
            display_name=found.display_name,
            role=found.role,
            year_group=found.year_group,
            groups=list(found.groups),
            password_hash=None,
            source="directory",
            created_at=now,
            updated_at=now,
        )
    )
    return found
