"""authenticate and tickets: slow hashes, lockout, expiry, and tickets bound to their company."""

from __future__ import annotations

import dataclasses
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from factories import make_order_json

from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.engine import logins
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import InvalidTicket
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(store: Store, settings: Settings, clock: Clock) -> RunEngine:
    for name in ("acme", "globex"):
        company_service.add_company(store, name, f"{name}-user", f"{name}-password")
        order_service.enqueue(store, name, [make_order_json(OrderNumber=f"{name}-1")])
    return RunEngine(store, settings, clock=clock)


def test_passwords_are_stored_as_slow_salted_hashes(store: Store, engine: RunEngine) -> None:
    with store.transaction() as tx:
        found = store.companies.credentials(tx, "acme-user")
    assert found is not None
    stored = found[1]
    assert "acme-password" not in stored
    assert stored.startswith(f"scrypt${passwords.SCRYPT_N}$")
    assert passwords.hash_password("x") != passwords.hash_password("x")  # salted


def test_verify_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(passwords.hmac, "compare_digest", spy)
    stored = passwords.hash_password("secret-1")
    assert passwords.verify_password("secret-1", stored)
    assert not passwords.verify_password("secret-2", stored)
    assert len(calls) == 2


def test_wrong_password_and_unknown_user_are_not_valid(engine: RunEngine) -> None:
    assert engine.authenticate("acme-user", "nope").answer == "nvu"
    assert engine.authenticate("nobody", "acme-password").answer == "nvu"
    assert engine.authenticate("acme-user", "nope").ticket == ""


def test_repeated_failures_lock_the_username_from_that_address(
    engine: RunEngine, clock: Clock, settings: Settings
) -> None:
    for _ in range(settings.max_failed_logins):
        assert engine.authenticate("acme-user", "guess", "10.0.0.9").answer == "nvu"
    # now even the right password is refused from there, until the lock runs out
    assert engine.authenticate("acme-user", "acme-password", "10.0.0.9").answer == "nvu"
    # the company's own Web Connector, elsewhere, is not locked out by someone's guesses
    assert engine.authenticate("acme-user", "acme-password", "10.0.0.8").answer == ""
    clock.now += timedelta(seconds=settings.lockout_seconds + 1)
    assert engine.authenticate("acme-user", "acme-password", "10.0.0.9").answer == ""


def test_failures_from_one_address_lock_that_address(engine: RunEngine, settings: Settings) -> None:
    for attempt in range(settings.max_failed_logins * logins.WIDE_LIMIT_FACTOR):
        engine.authenticate(f"user-{attempt}", "guess", "10.0.0.66")
    assert engine.authenticate("globex-user", "globex-password", "10.0.0.66").answer == "nvu"
    assert engine.authenticate("globex-user", "globex-password", "10.0.0.67").answer == ""


def test_tickets_are_random_and_long(engine: RunEngine) -> None:
    first = engine.authenticate("acme-user", "acme-password").ticket
    second = engine.authenticate("globex-user", "globex-password").ticket
    assert first != second
    assert len(first) >= 43  # 256 bits, URL-safe base64


def test_expired_ticket_is_refused_and_its_orders_return(
    engine: RunEngine, clock: Clock, settings: Settings, store: Store
) -> None:
    ticket = engine.authenticate("acme-user", "acme-password").ticket
    assert engine.next_request(ticket, "", "", "US", 13, 0)  # claims the order
    assert order_service.status(store, "acme")["counts"]["in_progress"] == 1
    clock.now += timedelta(seconds=settings.run_timeout_seconds + 5)
    with pytest.raises(InvalidTicket):
        engine.record_response(ticket, "<QBXML/>", "", "")
    with pytest.raises(InvalidTicket):
        engine.next_request(ticket, "", "", "US", 13, 0)
    # a new run (the Web Connector's next attempt) finds the company free and the order queued
    result = engine.authenticate("acme-user", "acme-password")
    assert result.answer == ""
    assert order_service.status(store, "acme")["counts"]["pending"] == 1


def test_a_ticket_only_reaches_its_own_company(engine: RunEngine, store: Store) -> None:
    acme = engine.authenticate("acme-user", "acme-password").ticket
    globex = engine.authenticate("globex-user", "globex-password").ticket
    message = engine.next_request(acme, "", "", "US", 13, 0)
    assert "acme-1" in message and "globex-1" not in message
    assert order_service.status(store, "globex")["counts"]["pending"] == 1
    engine.close(acme)
    assert "globex-1" in engine.next_request(globex, "", "", "US", 13, 0)


def test_a_new_login_takes_over_a_run_whose_web_connector_is_gone(
    store: Store, engine: RunEngine, clock: Clock
) -> None:
    """The Web Connector runs one session per application: a login while the old run has
    no request with QuickBooks means that session ended (a killed worker, a stray login)."""
    old = engine.authenticate("acme-user", "acme-password").ticket
    engine.next_request(old, "", r"C:\Books.QBW", "US", 13, 0)
    engine.record_response(old, "", "0x80040408", "QuickBooks was busy")  # answered
    assert engine.authenticate("acme-user", "acme-password").answer == "busy"  # still calling
    clock.now += timedelta(seconds=6)  # silent since: gone
    new = engine.authenticate("acme-user", "acme-password")
    assert new.answer == ""
    with pytest.raises(InvalidTicket, match="ended"):
        engine.next_request(old, "", r"C:\Books.QBW", "US", 13, 0)  # the old run is over
    counts = store_counts(store, "acme")
    assert (counts["pending"], counts["in_progress"]) == (1, 0)  # back for the new run


def test_two_logins_at_once_leave_one_run_and_the_other_busy(
    engine: RunEngine, clock: Clock
) -> None:
    """Two Web Connectors with one .qwc: the second login is not taken for the first
    session's end while that session calls back to back."""
    first = engine.authenticate("acme-user", "acme-password").ticket
    assert engine.authenticate("acme-user", "acme-password").answer == "busy"
    assert engine.next_request(first, "", r"C:\Books.QBW", "US", 13, 0)  # the first works on
    # A login that never asked for work and is silent has gone: a new one takes over.
    stale = engine.authenticate("globex-user", "globex-password").ticket
    clock.now += timedelta(seconds=6)
    assert engine.authenticate("globex-user", "globex-password").answer == ""
    with pytest.raises(InvalidTicket, match="ended"):
        engine.next_request(stale, "", r"C:\Books.QBW", "US", 13, 0)


def test_a_login_while_quickbooks_works_on_a_request_is_busy_never_none(
    engine: RunEngine, clock: Clock
) -> None:
    ticket = engine.authenticate("acme-user", "acme-password").ticket
    assert engine.next_request(ticket, "", r"C:\Books.QBW", "US", 13, 0)  # with QuickBooks now
    assert engine.authenticate("acme-user", "acme-password").answer == "busy"
    clock.now += timedelta(minutes=4)  # longer than the Web Connector waits for an answer
    assert engine.authenticate("acme-user", "acme-password").answer == ""


def test_closing_without_a_run_says_why(engine: RunEngine) -> None:
    assert "login was refused" in engine.close("")
    assert "No run was started" in engine.close("not-a-ticket")


def store_counts(store: Store, company: str) -> dict[str, int]:
    return order_service.status(store, company)["counts"]


def test_client_version_answers_go_on_and_the_version_reaches_company_show(
    store: Store, engine: RunEngine, settings: Settings
) -> None:
    assert engine.client_version("1.5.0.0", "10.0.0.7") == ""
    engine.authenticate("acme-user", "acme-password", "10.0.0.7")
    assert company_service.show_company(store, "acme")["web_connector_version"] == "1.5.0.0"
    strict = RunEngine(store, dataclasses.replace(settings, min_web_connector_version="2.1.0.30"))
    assert strict.client_version("1.5.0.0").startswith("W:")


def test_get_last_error_after_a_connection_error_reads_cleanly(engine: RunEngine) -> None:
    ticket = engine.authenticate("acme-user", "acme-password").ticket
    engine.connection_error(ticket, "0x80040408", "Could not start QuickBooks.")
    message = engine.last_error(ticket)
    assert "(0x80040408: Could not start QuickBooks)." in message and ".)" not in message
