"""Channel secrets at rest: sealed with Fernet, never stored, printed or logged in plain text.

The key comes from QBWC_BRIDGE_SECRET_KEY — one Fernet key, or several separated by commas
(the first seals, all open: that is how a key is rotated, docs/operations.md) — or from a
key file: QBWC_BRIDGE_SECRET_KEY_FILE, or beside the SQLite database (``<db>.key``), where
`init-db` creates one. PostgreSQL installations name a key: a key file on one host would
not open the secrets for another.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from qbwc_bridge.config import Settings
from qbwc_bridge.errors import BridgeError


class SecretKeyMissing(BridgeError):
    """No key to seal channel secrets: set QBWC_BRIDGE_SECRET_KEY (see docs/operations.md)."""


class SecretUnreadable(BridgeError):
    """A channel secret was sealed with a key this installation does not have."""


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def default_key_file(settings: Settings) -> Path | None:
    """Where the key file lives: QBWC_BRIDGE_SECRET_KEY_FILE, or beside a SQLite database."""
    if settings.secret_key_file:
        return Path(settings.secret_key_file)
    scheme, _, rest = settings.database_url.partition(":///")
    database = rest.split("?", 1)[0]
    if scheme.split("+", 1)[0] == "sqlite" and database and database != ":memory:":
        return Path(database).with_suffix(".key")
    return None


def create_key_file(settings: Settings) -> Path | None:
    """Create the key file `init-db` promises (owner-only), unless a key is set or it exists."""
    path = default_key_file(settings)
    if settings.secret_key or path is None or path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
    return path


class Sealer:
    """Seals and opens secrets with the installation's key(s)."""

    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as error:
            raise SecretKeyMissing(
                "QBWC_BRIDGE_SECRET_KEY (or the key file) does not hold Fernet keys: "
                "make one with `qbwc-bridge secret-key new`"
            ) from error

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        if settings.secret_key:
            return cls(settings.secret_key.split(","))
        path = default_key_file(settings)
        if path is not None and path.exists():
            return cls(path.read_text(encoding="ascii").split(","))
        raise SecretKeyMissing()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretUnreadable() from None

    def reseal(self, sealed: str) -> str:
        """The same secret sealed with the first key (rotation)."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretUnreadable() from None
