"""Company use cases shared by the command line and the HTTP API: add, settings, logins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.company import Company, CompanyFile, CompanySettings, InvalidSetting
from qbwc_bridge.engine import logins
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import orders as order_store

User = TypeVar("User")


class InvalidCredentials(BridgeError):
    """Unknown username or wrong password."""


class LoginLocked(InvalidCredentials):
    """Too many failed logins: refused, without checking the password, until ``until``."""

    def __init__(self, reason: str, until: datetime, now: datetime) -> None:
        self.until, self.now = until, now
        super().__init__(
            f"Locked out until {until.isoformat(timespec='seconds')} after {reason}: "
            "logins are refused unchecked until then"
        )


def checked_login(
    store: Store,
    settings: Settings,
    door: str,
    name: str,
    password: str,
    client_address: str,
    credentials: Callable[[Tx, str], tuple[User, str] | None],
    now: datetime,
) -> tuple[User, str]:
    """The user ``credentials`` finds by ``name`` and its stored hash, once the password
    matched behind the login throttle of ``door``; InvalidCredentials (LoginLocked while
    the throttle refuses unchecked) otherwise. The API users' and the console's logins."""
    found = None
    if 0 < len(name) <= 100 and "\x00" not in name:
        with store.transaction() as tx:
            found = credentials(tx, name)
    result = logins.check_password(
        store,
        settings,
        door,
        name[:100],
        password,
        None if found is None else found[1],
        client_address,
        now,
    )
    if not result.matched or found is None:
        if result.locked_until is not None:
            raise LoginLocked(result.reason, result.locked_until, now)
        raise InvalidCredentials("Wrong username or password")
    return found


# --- companies -----------------------------------------------------------------------------


def add_company(store: Store, name: str, username: str, password: str) -> Company:
    if not name.strip() or not username.strip():
        raise BridgeError("Company name and username must not be empty")
    _check_password(password)
    password_hash = passwords.hash_password(password)
    with store.transaction() as tx:
        return company_store.add(tx, name.strip(), username.strip(), password_hash)


MIN_PASSWORD_LENGTH = 8


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BridgeError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")


def setting_keys() -> list[str]:
    """What `company set` can change: the company's settings, and its password."""
    return sorted([*CompanySettings.names(), "password"])


def company(store: Store, name: str) -> Company:
    with store.transaction() as tx:
        return company_store.by_name(tx, name)


def set_company_setting(store: Store, name: str, key: str, value: str) -> Company:
    if key == "password":
        _check_password(value)
    elif key not in CompanySettings.names():
        raise InvalidSetting(f"Unknown setting {key!r}; known: {', '.join(setting_keys())}")
    with store.transaction() as tx:
        found = company_store.by_name(tx, name)
        if key == "password":
            company_store.set_password_hash(tx, found.id, passwords.hash_password(value))
        else:
            company_store.save_settings(tx, found.id, found.settings.with_value(key, value))
        return company_store.get(tx, found.id)


def new_api_key(store: Store, name: str) -> str:
    """Create (or replace) the company's API key for /api; shown once, stored hashed."""
    key = passwords.new_api_key()
    with store.transaction() as tx:
        found = company_store.by_name(tx, name)
        company_store.set_api_key_hash(tx, found.id, passwords.hash_password(key))
    return key


def api_login(
    store: Store, settings: Settings, username: str, secret: str, client_address: str = ""
) -> Company:
    """The company whose Web Connector password or API key ``secret`` is; LoginLocked
    (an InvalidCredentials) while the throttle refuses unchecked.

    The password is throttled together with the Web Connector's logins: /api is not a
    faster door. The API key has its own throttle (engine/logins.py).
    """
    now = utcnow()
    result = logins.login(
        store, settings, username, secret, client_address, now, accept_api_key=True
    )
    if result.company is not None:
        return result.company
    if result.locked_until is not None:
        raise LoginLocked(result.reason, result.locked_until, now)
    raise InvalidCredentials()


def show_company(store: Store, name: str) -> dict[str, Any]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, name)
        counts = order_store.counts(tx, found.id)
        seen = company_store.seen_file(tx, found.id)
        version = company_store.web_connector_version(tx, found.id)
    return {
        "name": found.name,
        "username": found.username,
        "owner_id": found.owner_id,
        "file_id": found.file_id,
        "qbxml_version": found.qbxml_version,
        "company_file": found.company_file,
        "paired_file": _file_json(found.paired_file),
        "open_file": _file_json(seen),
        "web_connector_version": version,
        "settings": found.settings.as_dict(),
        "counts": counts,
    }


def _file_json(file: CompanyFile | None) -> dict[str, str] | None:
    if file is None:
        return None
    return {"file_id": file.file_id, "company_name": file.company_name, "path": file.path}


def pair_current_file(store: Store, name: str) -> CompanyFile:
    """Pair the company with the file its last run found open (`company pair`)."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, name)
        seen = company_store.seen_file(tx, found.id)
        if seen is None:
            raise BridgeError(
                f"No Web Connector run of '{found.name}' has opened a company file yet: "
                "run it once, then pair."
            )
        company_store.pair_file(tx, found.id, seen, utcnow())
        return seen
