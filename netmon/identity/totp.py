"""Staff TOTP second factor: secrets sealed at rest, codes checked once.

A staff account's TOTP secret is stored sealed (AES-256-GCM, the account's user name as associated data,
so a sealed secret cannot be moved to another account): ``t1:`` and the base85 of nonce, ciphertext and
tag, 63 characters. The key is not in the database, so a dump of it alone gives no TOTP seed:

- ``NETMON_CONSOLE_KEY`` (environment): 32 random bytes in base64url (``netmon staff key`` prints a new
  one), or else
- the key file ``NETMON_CONSOLE_KEY_FILE``, by default ``<state dir>/console.key``, created on first use
  with mode 0600 (readable by its owner only: the console's service user).

A secret stored before sealing (plain base32) still works; it is sealed when its next code is accepted or
by ``netmon staff seal``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import time
from pathlib import Path

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from netmon.config.paths import state_dir
from netmon.errors import ConfigError, NetmonError

PREFIX = "t1:"
KEY_ENV = "NETMON_CONSOLE_KEY"
KEY_FILE_ENV = "NETMON_CONSOLE_KEY_FILE"
KEY_FILE_NAME = "console.key"
SECRET_BYTES = 20  # 160 bits (RFC 4226); sealed: 3 + base85(12 + 20 + 16) = 63 characters
ISSUER = "netmon console"


class SealError(NetmonError):
    """A sealed TOTP secret cannot be opened with this key (another gateway's key, or a changed key)."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(where, "must be 32 bytes in base64url: make one with `netmon staff key`")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def key_file() -> Path:
    named = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(named) if named else state_dir() / KEY_FILE_NAME


def load_key(create: bool = True) -> bytes:
    """The sealing key: ``NETMON_CONSOLE_KEY``, else the key file (made, mode 0600, when missing)."""
    text = os.environ.get(KEY_ENV, "").strip()
    if text:
        return _decode_key(text, KEY_ENV)
    path = key_file()
    try:
        return _decode_key(path.read_text(encoding="ascii"), str(path))
    except FileNotFoundError:
        if not create:
            raise ConfigError(str(path), f"no key file (and {KEY_ENV} is not set)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(
            str(path), f"cannot read the console key: {reason}; run netmon as the file's owner"
        ) from exc
    return _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    """Write a new key to ``path`` atomically (never a half-written file), or read the one a concurrent
    process wrote first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_key_text()
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)  # fails when another process made the file first
        except FileExistsError:
            return _decode_key(path.read_text(encoding="ascii"), str(path))
    finally:
        temp.unlink(missing_ok=True)
    return _decode_key(text, str(path))


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(PREFIX)


def _aad(username: str) -> bytes:
    return b"netmon-staff-totp:" + username.encode()


def seal(secret: str, username: str, key: bytes) -> str:
    """``secret`` (base32) sealed for the account ``username``."""
    raw = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    nonce = secrets.token_bytes(12)
    sealed = PREFIX + base64.b85encode(nonce + AESGCM(key).encrypt(nonce, raw, _aad(username))).decode()
    if len(sealed) > 64:  # the column holds 64: only secrets longer than 160 bits would not fit
        raise ConfigError(username, "TOTP secret longer than 160 bits: enrol a new one (netmon staff totp)")
    return sealed


def open_secret(stored: str, username: str, key: bytes) -> str:
    """The base32 secret of a stored value (sealed, or plain from before sealing)."""
    if not is_sealed(stored):
        return stored
    try:
        blob = base64.b85decode(stored[len(PREFIX) :])
        raw = AESGCM(key).decrypt(blob[:12], blob[12:], _aad(username))
    except (InvalidTag, ValueError) as exc:
        raise SealError(
            f"the TOTP secret of {username!r} cannot be opened with this key ({KEY_ENV} or "
            f"{key_file()}): use the key it was sealed with, or enrol again (netmon staff totp)"
        ) from exc
    return base64.b32encode(raw).decode().rstrip("=")


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, last_step: int, now: float | None = None) -> int | None:
    """The time step of ``code`` when it is a current code (one step of clock drift either way) newer than
    ``last_step`` (a code is accepted once); None otherwise."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    for drift in (-1, 0, 1):
        step = int(moment) // totp.interval + drift
        if step > last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
