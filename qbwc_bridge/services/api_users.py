"""REST API users and their bearer tokens, for the command line and the Connex-compatible
API: add, list, remove, log in, and find whose token a request bears."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.channels import Channel
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services.companies import (
    MIN_PASSWORD_LENGTH,
    checked_login,
)
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import api_users as api_user_store
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store.api_users import ApiUser

# What the throttle calls this door (engine/logins.py keeps its usernames apart).
DOOR = "api-user"


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token as a login hands it out (the database keeps only its hash)."""

    value: str
    expires_in: int  # seconds


def add(store: Store, name: str, company: str, password: str) -> tuple[ApiUser, list[Channel]]:
    """A new API user of ``company``, and the company's channels (its connections)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise BridgeError("An API user needs a name of 1 to 100 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BridgeError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = passwords.hash_password(password)
    with store.transaction() as tx:
        found = company_store.by_name(tx, company)
        user = api_user_store.add(tx, found.id, name, password_hash, utcnow())
        return user, channel_store.list_channels(tx, found.id)


def users(store: Store, company: str | None = None) -> list[ApiUser]:
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, company).id if company else None
        return api_user_store.list_users(tx, company_id)


def remove(store: Store, name: str) -> ApiUser:
    """Forget the user; its tokens stop working at once."""
    with store.transaction() as tx:
        found = api_user_store.by_name(tx, name)
        api_user_store.remove(tx, found.id)
        return found


def login(store: Store, settings: Settings, name: str, password: str, client_address: str) -> Token:
    """A new bearer token for the API user, bound to its company; InvalidCredentials (or
    LoginLocked while the login throttle refuses unchecked) when the password is wrong."""
    now = utcnow()
    user, stored = checked_login(
        store, settings, DOOR, name, password, client_address, api_user_store.credentials, now
    )
    token = secrets.token_urlsafe(32)
    with store.transaction() as tx:
        if passwords.needs_rehash(stored):
            api_user_store.set_password_hash(tx, user.id, passwords.hash_password(password))
        expires = now + timedelta(seconds=settings.api_token_seconds)
        api_user_store.add_token(tx, user, passwords.ticket_digest(token), now, expires)
    return Token(token, settings.api_token_seconds)


def bearer(store: Store, token: str) -> ApiUser | None:
    """The API user whose live token this is, or None."""
    if not token or len(token) > 200:
        return None
    with store.transaction() as tx:
        held = api_user_store.holder(tx, passwords.ticket_digest(token), utcnow())
    return None if held is None else held.api_user
