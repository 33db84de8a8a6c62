"""The admin console's users and sessions, for the command line and the console: add, list,
remove, log in (behind the same throttle as every other login), find a session, log out."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services.companies import (
    MIN_PASSWORD_LENGTH,
    checked_login,
)
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import admin_users as admin_store
from qbwc_bridge.store.admin_users import AdminSession, AdminUser

# What the throttle calls this door (engine/logins.py keeps its usernames apart).
DOOR = "admin"
# How long a console session lasts from its login.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session as a login hands it out: the cookie's token (the database keeps only its
    hash) and the CSRF token of its forms."""

    token: str
    csrf_token: str
    user: AdminUser
    max_age: int  # seconds


def add(store: Store, name: str, password: str) -> AdminUser:
    name = name.strip()
    if not name or len(name) > 100 or "\x00" in name:
        raise BridgeError("An admin user needs a name of 1 to 100 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BridgeError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = passwords.hash_password(password)
    with store.transaction() as tx:
        return admin_store.add(tx, name, password_hash, utcnow())


def users(store: Store) -> list[AdminUser]:
    with store.transaction() as tx:
        return admin_store.list_users(tx)


def remove(store: Store, name: str) -> AdminUser:
    """Forget the user; its sessions end at once."""
    with store.transaction() as tx:
        found = admin_store.by_name(tx, name)
        admin_store.remove(tx, found.id)
        return found


def login(
    store: Store, settings: Settings, name: str, password: str, client_address: str
) -> NewSession:
    """A new session; InvalidCredentials (LoginLocked while the throttle refuses unchecked)
    when the name or password is wrong."""
    now = utcnow()
    user, stored = checked_login(
        store, settings, DOOR, name, password, client_address, admin_store.credentials, now
    )
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with store.transaction() as tx:
        if passwords.needs_rehash(stored):
            admin_store.set_password_hash(tx, user.id, passwords.hash_password(password))
        expires = now + timedelta(seconds=SESSION_SECONDS)
        admin_store.add_session(tx, user, passwords.ticket_digest(token), csrf, now, expires)
    return NewSession(token, csrf, user, SESSION_SECONDS)


def session(store: Store, token: str) -> AdminSession | None:
    """The live session whose cookie this is, or None."""
    if not token or len(token) > 200:
        return None
    with store.transaction() as tx:
        return admin_store.session(tx, passwords.ticket_digest(token), utcnow())


def logout(store: Store, token: str) -> None:
    """End the session on the server: its cookie opens nothing any more."""
    if token and len(token) <= 200:
        with store.transaction() as tx:
            admin_store.end_session(tx, passwords.ticket_digest(token))
