"""The admin console's users and their server-side sessions (hashed tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc

u, s = schema.admin_users, schema.admin_sessions


class AdminUserExists(BridgeError):
    """An admin user of that name exists already."""


class UnknownAdminUser(BridgeError):
    """No such admin user: `qbwc-bridge admin-user list` shows them."""


@dataclass(frozen=True, slots=True)
class AdminUser:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A live session: whose it is, the CSRF token its forms carry, when it ends."""

    user: AdminUser
    csrf_token: str
    expires_at: datetime


_SELECT = select(u.c.id, u.c.name, u.c.created_at)


def _to_user(row: object) -> AdminUser:
    values = row._mapping  # type: ignore[attr-defined]
    return AdminUser(int(values["id"]), str(values["name"]), as_utc(values["created_at"]))


def add(tx: Tx, name: str, password_hash: str, now: datetime) -> AdminUser:
    try:
        with tx.begin_nested():
            result = tx.execute(
                insert(u).values(name=name, password_hash=password_hash, created_at=now)
            )
    except IntegrityError:
        raise AdminUserExists(f"An admin user named {name!r} exists already") from None
    assert result.inserted_primary_key is not None
    return AdminUser(int(result.inserted_primary_key[0]), name, now)


def by_name(tx: Tx, name: str) -> AdminUser:
    row = tx.execute(_SELECT.where(u.c.name == name)).one_or_none()
    if row is None:
        raise UnknownAdminUser(
            f"No admin user named {name!r}: `qbwc-bridge admin-user list` shows them"
        )
    return _to_user(row)


def credentials(tx: Tx, name: str) -> tuple[AdminUser, str] | None:
    """The admin user of that name and its password hash, if there is one."""
    row = tx.execute(_SELECT.add_columns(u.c.password_hash).where(u.c.name == name)).one_or_none()
    return None if row is None else (_to_user(row), str(row.password_hash))


def set_password_hash(tx: Tx, user_id: int, password_hash: str) -> None:
    tx.execute(update(u).where(u.c.id == user_id).values(password_hash=password_hash))


def list_users(tx: Tx) -> list[AdminUser]:
    return [_to_user(row) for row in tx.execute(_SELECT.order_by(u.c.name))]


def remove(tx: Tx, user_id: int) -> None:
    """Forget the user and end its sessions (at once)."""
    tx.execute(delete(s).where(s.c.admin_user_id == user_id))
    tx.execute(delete(u).where(u.c.id == user_id))


# --- sessions ------------------------------------------------------------------------------


def add_session(
    tx: Tx, user: AdminUser, token_hash: bytes, csrf_token: str, now: datetime, expires: datetime
) -> None:
    """Keep a new session's hash, and drop every session that has expired (anyone's)."""
    tx.execute(delete(s).where(s.c.expires_at <= now))
    tx.execute(
        insert(s).values(
            token_hash=token_hash,
            admin_user_id=user.id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires,
        )
    )


_SESSION = select(u.c.id, u.c.name, u.c.created_at, s.c.csrf_token, s.c.expires_at).join(
    s, s.c.admin_user_id == u.c.id
)


def session(tx: Tx, token_hash: bytes, now: datetime) -> AdminSession | None:
    row = tx.execute(
        _SESSION.where(and_(s.c.token_hash == token_hash, s.c.expires_at > now))
    ).one_or_none()
    if row is None:
        return None
    return AdminSession(_to_user(row), str(row.csrf_token), as_utc(row.expires_at))


def end_session(tx: Tx, token_hash: bytes) -> None:
    tx.execute(delete(s).where(s.c.token_hash == token_hash))
