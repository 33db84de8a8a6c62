"""Checking a login, for the Web Connector and for /api alike: one throttle for both doors.

Failures are counted per username (hashed: a password typed into the username box is not
kept) and per client address; either one locked refuses the login without checking the
password. The slow hash runs outside any transaction, so it never holds a database lock.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.company import Company
from qbwc_bridge.store import Store
from qbwc_bridge.store import companies as company_store

log = logging.getLogger("qbwc_bridge.logins")


def throttle_keys(username: str, client_address: str) -> list[str]:
    digest = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
    return [f"user:{digest}"] + ([f"addr:{client_address[:100]}"] if client_address else [])


def check_login(
    store: Store,
    settings: Settings,
    username: str,
    secret: str,
    client_address: str,
    now: datetime,
    *,
    accept_api_key: bool = False,
) -> Company | None:
    """The company whose credentials these are, or None (and one more failure counted)."""
    keys = throttle_keys(username, client_address)
    with store.transaction() as tx:
        if any(company_store.locked_until(tx, key, now) for key in keys):
            log.warning("login refused: too many failures for this user or address")
            return None
        found = company_store.credentials(tx, username) if len(username) <= 100 else None
        api_hash = company_store.api_key_hash(tx, found[0].id) if found and accept_api_key else None
    stored = found[1] if found else passwords.dummy_hash()
    by_password = passwords.verify_password(secret, stored)
    by_key = api_hash is not None and passwords.verify_password(secret, api_hash)
    with store.transaction() as tx:
        if found is None or not (by_password or by_key):
            for key in keys:
                company_store.record_failure(
                    tx,
                    key,
                    now,
                    max_failures=settings.max_failed_logins,
                    window=timedelta(seconds=settings.lockout_seconds),
                )
            return None
        for key in keys:
            company_store.clear_failures(tx, key)
        if by_password and passwords.needs_rehash(stored):
            company_store.set_password_hash(tx, found[0].id, passwords.hash_password(secret))
    return found[0]
