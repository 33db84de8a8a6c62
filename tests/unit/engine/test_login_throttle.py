"""The login throttle under load and under attack: an atomic count, locks per username and
address before per username, and every refusal logged with who asked.

The parallel tests commit on connections of their own (they take ``database_url``, not
``store``), as concurrent logins do in production.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.engine import logins
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store.schema import login_failures

PASSWORD = "acme-password"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def shared(database_url: str) -> Iterator[Store]:
    """A store whose transactions commit, company acme in it."""
    store = Store.from_url(database_url)
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    yield store
    store.database.dispose()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the throttle let through to the slow hash."""
    seen: list[str] = []
    lock = threading.Lock()
    real = passwords.verify_password

    def counted(secret: str, stored: str) -> bool:
        with lock:
            seen.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(logins.passwords, "verify_password", counted)
    return seen


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call at once (released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def login(store: Store, settings: Settings, secret: str, address: str = "10.0.0.9") -> Any:
    return logins.check_login(store, settings, "acme-user", secret, address, NOW)


def test_parallel_guesses_reach_the_password_check_at_most_the_limit(
    shared: Store, settings: Settings, checks: list[str]
) -> None:
    guesses = [lambda i=i: login(shared, settings, f"guess-{i}") for i in range(40)]
    assert in_parallel(guesses) == [None] * 40
    assert len(checks) == settings.max_failed_logins
    # The right password, next: refused without a check while the lock lasts.
    assert login(shared, settings, PASSWORD) is None
    assert len(checks) == settings.max_failed_logins


def test_simultaneous_first_failures_are_all_counted(
    shared: Store, settings: Settings, checks: list[str]
) -> None:
    """Eight first failures at once, one per address: none raises, each is counted."""
    wrong = [
        lambda i=i: logins.check_login(shared, settings, "nobody", "x", f"10.0.1.{i}", NOW)
        for i in range(8)
    ]
    assert in_parallel(wrong) == [None] * 8
    assert len(checks) == 8
    failures = login_failures.c
    with shared.transaction() as tx:
        count = tx.execute(
            select(failures.failures).where(failures.key == logins.user_key("nobody"))
        ).scalar_one()
    assert count == 8


def test_a_stranger_cannot_lock_the_company_out(store: Store, settings: Settings) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    stranger, office = "203.0.113.5", "198.51.100.7"
    for attempt in range(settings.max_failed_logins * 3):
        assert login(store, settings, f"guess-{attempt}", stranger) is None
    assert login(store, settings, PASSWORD, stranger) is None  # the stranger's door is shut
    assert login(store, settings, PASSWORD, office) is not None  # the company's is not


def test_guesses_from_many_addresses_lock_the_username_at_a_higher_count(
    store: Store, settings: Settings
) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    limit = settings.max_failed_logins * logins.WIDE_LIMIT_FACTOR
    for attempt in range(limit - 1):
        assert login(store, settings, "guess", f"10.1.{attempt}.1") is None
    assert login(store, settings, PASSWORD, "10.2.0.1") is not None  # refunds its attempt
    assert login(store, settings, "guess", "10.3.0.1") is None  # the limit-th failure
    found = logins.login(store, settings, "acme-user", PASSWORD, "10.4.0.1", NOW)
    assert found.company is None and found.locked_until == NOW + timedelta(
        seconds=settings.lockout_seconds
    )
    assert "for this username" in found.reason
    later = NOW + timedelta(seconds=settings.lockout_seconds + 1)
    assert logins.check_login(store, settings, "acme-user", PASSWORD, "10.4.0.1", later)


def test_a_success_clears_its_own_address_only(store: Store, settings: Settings) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    for _ in range(settings.max_failed_logins - 1):
        login(store, settings, "typo", "10.0.0.1")
        login(store, settings, "guess", "10.0.0.2")
    assert login(store, settings, PASSWORD, "10.0.0.1") is not None
    assert login(store, settings, "typo", "10.0.0.1") is None
    assert login(store, settings, PASSWORD, "10.0.0.1") is not None  # counted afresh
    assert login(store, settings, "guess", "10.0.0.2") is None  # the fifth from there
    assert login(store, settings, PASSWORD, "10.0.0.2") is None  # locked


def test_an_api_key_is_its_own_credential(store: Store, settings: Settings) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    key = company_service.new_api_key(store, "acme")
    for attempt in range(settings.max_failed_logins):  # api_login's clock is the real one
        guess = f"guess-{attempt}"
        assert not logins.check_login(store, settings, "acme-user", guess, "10.0.0.9", utcnow())
    found = company_service.api_login(store, settings, "acme-user", key, "10.0.0.9")
    assert found.name == "acme"
    with pytest.raises(company_service.LoginLocked) as locked:
        company_service.api_login(store, settings, "acme-user", PASSWORD, "10.0.0.9")
    assert locked.value.until > locked.value.now


def test_every_refused_login_is_logged_with_username_and_address(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    caplog.set_level(logging.INFO, logger="qbwc_bridge")
    engine = RunEngine(store, settings, clock=lambda: NOW)
    for attempt in range(settings.max_failed_logins + 1):
        assert engine.authenticate("acme-user", f"secret-{attempt}", "10.9.8.7").answer == "nvu"
    refused = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert len(refused) == settings.max_failed_logins + 1
    assert all("'acme-user'" in line and "10.9.8.7" in line for line in refused)
    assert "locked until" in refused[-1]
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "secret-" not in text


def test_simultaneous_right_logins_from_one_client_all_get_in(
    shared: Store, settings: Settings
) -> None:
    """Twice the limit at once: the later ones wait for the checks in progress, not refused."""
    logins_at_once = [lambda: login(shared, settings, PASSWORD) for _ in range(10)]
    assert all(company is not None for company in in_parallel(logins_at_once))
