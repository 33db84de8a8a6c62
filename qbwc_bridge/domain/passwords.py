"""Password and ticket secrets: slow salted hashes, constant-time comparison."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

# scrypt with n=2**14, r=8: 16 MiB and ~30 ms per guess; raise N as hardware improves:
# hashes made with older parameters are upgraded at the next successful login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; the comparison takes the same time either way."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest_hex)
        actual = _scrypt(password, bytes.fromhex(salt_hex), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


@functools.cache
def dummy_hash() -> str:
    """A real hash of a random password: unknown usernames are verified against it, so
    "no such user" and "wrong password" take the same time."""
    return hash_password(secrets.token_urlsafe(16))


def new_ticket() -> str:
    """A fresh run ticket: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    """A fresh /api key: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def looks_like_api_key(secret: str) -> bool:
    """Could ``secret`` be one of new_api_key's keys? Only those are checked as API keys."""
    return len(secret) == 43 and _URL_SAFE.issuperset(secret)


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def ticket_digest(ticket: str) -> bytes:
    """What the database keeps instead of the ticket itself."""
    return hashlib.sha256(ticket.encode("utf-8")).digest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32
    )
