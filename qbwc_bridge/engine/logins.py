"""Checking a login, for the Web Connector and for /api alike: one throttle for both doors.

Attempts are counted under keys, each with its own limit (Settings.max_failed_logins, N):

- ``pair:``  one username from one client address: N. Someone guessing from one address
  is stopped here, and only that address is shut: the company's own Web Connector, on
  another address, still logs in.
- ``user:``  one username from anywhere: N × WIDE_LIMIT_FACTOR, against guessing spread
  over many addresses. A stranger adds at most N per address to it.
- ``addr:``  one client address, any username: N × WIDE_LIMIT_FACTOR, against one address
  trying many usernames, without letting one misconfigured client shut a shared address.
- ``key:``   /api's API key of one username from one client address: N. An API key is its
  own credential: it works while the Web Connector password is locked for guessing. Only
  a secret shaped like an API key is checked as one (then, if it is not the key, as the
  password), so guessed passwords never count against the key.

Usernames are hashed in the keys (a password typed into the username box is not stored).
An attempt is counted before the password is checked, in one statement per key (see
store.companies.count_attempt), so simultaneous guesses cannot check more passwords than
the limits allow. A failed check locks every key whose count has reached its limit, for
Settings.lockout_seconds; a locked key refuses logins unchecked. A key at its limit only
because checks are in progress (simultaneous logins of one client) makes the next login
wait for them, up to IN_PROGRESS_WAIT_SECONDS. A login that is refused, or waits, has its
count rolled back (a refusal costs nothing and counts for nothing); a login that succeeds
gives its attempt back, and clears the count of its own username and address. The slow
hash runs outside any transaction, so it never holds a database lock. Every refused login
is logged with its username and client address, never its password.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.company import Company
from qbwc_bridge.store import Store, Tx
from qbwc_bridge.store import companies as company_store

log = logging.getLogger("qbwc_bridge.logins")

# How many more attempts a username (from anywhere) or an address (any username) may make
# than one username from one address.
WIDE_LIMIT_FACTOR = 10
# How long a login waits for the checks in progress that hold its keys at their limit
# (a check is one slow hash, tens of milliseconds).
IN_PROGRESS_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A login's outcome: the company, or why not (and until when, when locked)."""

    company: Company | None
    locked_until: datetime | None = None
    reason: str = ""  # "wrong username or password", or what the lock is for
    matched: bool = False  # check_password: the secret matched (there is no company)


@dataclass(frozen=True, slots=True)
class _Key:
    key: str
    limit: int
    clears: bool  # a success clears the count (one username from one address)
    why: str  # what the lock is for, when it refuses


class _OverLimit(Exception):
    """A key refuses the attempt: locked (until when), or at its limit with checks in
    progress (``until`` None)."""

    def __init__(self, key: _Key, until: datetime | None) -> None:
        self.key, self.until = key, until


def user_key(username: str) -> str:
    digest = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
    return f"user:{digest}"


def _password_keys(username: str, address: str, limit: int) -> list[_Key]:
    user = user_key(username)
    wide = limit * WIDE_LIMIT_FACTOR
    keys = [
        _Key(f"pair:{user[5:]}@{address}", limit, True, "for this username from this address"),
        _Key(user, wide, False, "for this username"),
    ]
    if address:
        keys.append(_Key(f"addr:{address}", wide, False, "from this address"))
    return keys


def _api_key_keys(username: str, address: str, limit: int) -> list[_Key]:
    pair = f"key:{user_key(username)[5:]}@{address}"
    return [_Key(pair, limit, True, "with an API key for this username from this address")]


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
    """The company whose credentials these are, or None (see login for why not)."""
    return login(
        store, settings, username, secret, client_address, now, accept_api_key=accept_api_key
    ).company


def login(
    store: Store,
    settings: Settings,
    username: str,
    secret: str,
    client_address: str,
    now: datetime,
    *,
    accept_api_key: bool = False,
) -> LoginResult:
    """Check ``secret`` for ``username``: as the company's API key first when
    ``accept_api_key`` and it has an API key's shape, then as the Web Connector password,
    each behind its own throttle."""
    address = client_address[:100]
    window = timedelta(seconds=settings.lockout_seconds)
    limit = settings.max_failed_logins
    with store.transaction() as tx:
        found = company_store.credentials(tx, username) if len(username) <= 100 else None
        use_key = found is not None and accept_api_key and passwords.looks_like_api_key(secret)
        api_hash = company_store.api_key_hash(tx, found[0].id) if found and use_key else None
    refusals: list[_OverLimit] = []
    if found is not None and api_hash is not None:
        keys = _api_key_keys(username, address, limit)
        if _attempt(store, keys, secret, api_hash, now, window, refusals):
            return LoginResult(found[0])
    stored = found[1] if found else passwords.dummy_hash()
    keys = _password_keys(username, address, limit)
    if _attempt(store, keys, secret, stored, now, window, refusals) and found is not None:
        if passwords.needs_rehash(stored):
            with store.transaction() as tx:
                company_store.set_password_hash(tx, found[0].id, passwords.hash_password(secret))
        return LoginResult(found[0])
    return _refused(username, address, refusals, now)


def _refused(username: str, address: str, refusals: list[_OverLimit], now: datetime) -> LoginResult:
    """A refused login's result (locked, when a key refused it unchecked), logged."""
    if not refusals:
        result = LoginResult(None, reason="wrong username or password")
        why = result.reason
    else:
        refused = refusals[0]
        if refused.until is None:
            until, reason = now + timedelta(seconds=1), f"too many logins at once {refused.key.why}"
        else:
            until, reason = refused.until, f"{refused.key.limit} failed logins {refused.key.why}"
        result = LoginResult(None, locked_until=until, reason=reason)
        why = f"locked until {until.isoformat(timespec='seconds')} after {result.reason}"
    log.warning("login refused: user=%r address=%s: %s", username[:100], address or "-", why)
    return result


def check_password(
    store: Store,
    settings: Settings,
    door: str,
    username: str,
    secret: str,
    stored: str | None,
    client_address: str,
    now: datetime,
) -> LoginResult:
    """Check ``secret`` against the hash ``stored`` of a login that is not a company's (an
    API user of the REST API: ``door`` "api-user"), behind the same throttle as the Web
    Connector's logins: its username from one address, from anywhere, and its address.

    The username's keys are kept apart from the companies' usernames by ``door``; the
    address key is shared, so one address guessing at every door is stopped once.
    ``stored`` None (no such user) is checked against a dummy hash, in the same time.
    The result's ``company`` is always None: ``matched`` says whether the secret matched.
    """
    address = client_address[:100]
    window = timedelta(seconds=settings.lockout_seconds)
    keys = _password_keys(f"{door}:{username}", address, settings.max_failed_logins)
    refusals: list[_OverLimit] = []
    checked = stored if stored is not None else passwords.dummy_hash()
    if _attempt(store, keys, secret, checked, now, window, refusals) and stored is not None:
        return LoginResult(None, matched=True)
    return _refused(f"{door}:{username}", address, refusals, now)


def _attempt(
    store: Store,
    keys: list[_Key],
    secret: str,
    stored: str,
    now: datetime,
    window: timedelta,
    refusals: list[_OverLimit],
) -> bool:
    """One throttled check of ``secret`` against the hash ``stored``: counted first (or
    refused unchecked, noted in ``refusals``); given back when it matches, locking the
    keys that reached their limit when it does not."""
    waited_until = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
    while True:
        with store.transaction() as tx:
            over = _count(tx, keys, now, window)
        if over is None:
            break
        if over.until is not None or time.monotonic() > waited_until:
            refusals.append(over)
            return False
        time.sleep(_POLL_SECONDS)  # checks in progress hold the key: wait for their outcome
    matches = passwords.verify_password(secret, stored)
    with store.transaction() as tx:
        for key in sorted(keys, key=lambda k: k.key):
            if not matches:
                company_store.lock_if_failed(tx, key.key, now, limit=key.limit, window=window)
            elif key.clears:  # its own username and address: it starts afresh
                company_store.clear_failures(tx, key.key)
            else:  # the wider counts, which others' guesses fill too: this attempt back
                company_store.refund_attempt(tx, key.key)
    return matches


def _count(tx: Tx, keys: list[_Key], now: datetime, window: timedelta) -> _OverLimit | None:
    """Count one attempt under every key, or under none: the first key that refuses.

    Keys are counted in one order everywhere (sorted), so two logins sharing keys never
    wait for each other's row locks in a cycle.
    """
    try:
        with tx.begin_nested():
            for key in sorted(keys, key=lambda k: k.key):
                count, until = company_store.count_attempt(tx, key.key, now, window=window)
                if until is not None and until > now:
                    raise _OverLimit(key, until)
                if count > key.limit:
                    raise _OverLimit(key, None)
    except _OverLimit as over:
        return over
    return None
