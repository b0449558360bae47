"""A real OpenLDAP ``slapd`` for the tests: its own cn=config and data directory, a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=school,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PW = "admin-secret"

CONFIG = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcRootDN: {admin}
olcRootPW: {admin_pw}
olcDbDirectory: {root}/data
olcDbMaxSize: 10485760
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by * read
"""

PERSON = """\
dn: uid={uid},{people}
objectClass: inetOrgPerson
uid: {uid}
cn: {cn}
sn: {sn}
displayName: {cn}
userPassword: {password}
employeeType: {etype}
departmentNumber: {year}

"""


@dataclass(frozen=True)
class LdapServer:
    url: str
    user_dn: str  # template with {username}
    base_dn: str


def available() -> bool:
    return shutil.which("slapd") is not None or Path("/usr/sbin/slapd").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    root: Path, people: list[dict[str, str]], groups: dict[str, list[str]] | None = None
) -> tuple[subprocess.Popen[bytes], LdapServer]:
    slapd = shutil.which("slapd") or "/usr/sbin/slapd"
    slapadd = shutil.which("slapadd") or "/usr/sbin/slapadd"
    confdir, data = root / "slapd.d", root / "data"
    confdir.mkdir(parents=True)
    data.mkdir()
    (root / "config.ldif").write_text(
        CONFIG.format(root=root, suffix=SUFFIX, admin=ADMIN_DN, admin_pw=ADMIN_PW)
    )
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: school\no: Test School\n\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n",
    ]
    for p in people:
        entry = PERSON.format(people=PEOPLE, sn=p["cn"].split()[-1], **p)
        entries.append("".join(line for line in entry.splitlines(keepends=True) if not line.endswith(": \n")))
    if groups:
        entries.append(f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n")
        for name, members in groups.items():
            lines = "".join(f"member: uid={m},{PEOPLE}\n" for m in members)
            entries.append(
                f"dn: cn={name},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {name}\n{lines}\n"
            )
    (root / "data.ldif").write_text("".join(entries))
    subprocess.run(
        [slapadd, "-n", "0", "-F", str(confdir), "-l", str(root / "config.ldif")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [slapadd, "-n", "1", "-F", str(confdir), "-l", str(root / "data.ldif")],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [slapd, "-d", "0", "-F", str(confdir), "-h", url + "/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"slapd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("slapd did not start listening")
    return proc, LdapServer(url=url, user_dn=f"uid={{username}},{PEOPLE}", base_dn=SUFFIX)
