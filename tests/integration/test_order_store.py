"""The order queue on SQLite and PostgreSQL: idempotent enqueue, leases, guarded transitions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from factories import make_order_json, make_payment
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.orders import OrderChange, OrderOutcome, OrderStage, OrderStatus, TxnLink
from qbwc_bridge.domain.runs import RequestKind, RequestPurpose
from qbwc_bridge.errors import LeaseLost
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, Tx
from qbwc_bridge.store.runs import CompanyBusy

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)


def _held(store: Store, tx: Tx, run_id: int) -> list[int]:
    """The ids of the orders the run holds in progress."""
    return [order.id for order in store.orders.claimed_by(tx, run_id)]


def _change(store: Store, tx: Tx, run_id: int, order_id: int, **change: Any) -> None:
    """One order's change, written as a run writes what an answer taught it."""
    store.orders.apply_changes(tx, run_id, NOW, {order_id: OrderChange(**change)}, {})


def _company(store: Store, name: str = "acme") -> int:
    return company_service.add_company(store, name, f"{name}-user", "password-1").id


def _run(store: Store, company_id: int) -> int:
    with store.transaction() as tx:
        return store.runs.open_run(
            tx,
            company_id,
            passwords.ticket_digest(passwords.new_ticket()),
            NOW,
            LATER,
            inventory_due=False,
        ).id


def _orders(n: int, prefix: str = "A") -> list[dict[str, object]]:
    return [make_order_json(OrderNumber=f"{prefix}{i:04d}") for i in range(n)]


def test_enqueue_is_idempotent_per_order_number(store: Store) -> None:
    _company(store)
    first = order_service.enqueue(store, "acme", _orders(3))
    assert (first.queued, first.unchanged) == (3, 0)
    again = order_service.enqueue(store, "acme", _orders(3))
    assert (again.queued, again.unchanged, again.updated) == (0, 3, 0)
    changed = order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="A0001", CustomerName="Jane Doe")]
    )
    assert changed.updated == 1
    assert order_service.status(store, "acme")["counts"]["pending"] == 3


def test_a_changed_order_after_sync_is_reported_not_requeued(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(1))
    run_id = _run(store, company_id)
    with store.transaction() as tx:
        assert store.orders.claim_batch(tx, company_id, run_id, 10, NOW) == 1
        order_id = _held(store, tx, run_id)[0]
        _change(
            store,
            tx,
            run_id,
            order_id,
            txn=TxnLink("1-1", "A0000", "Smith, John"),
            outcome=OrderOutcome(OrderStatus.SYNCED),
        )
    report = order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="A0000", CustomerName="Other Person")]
    )
    assert report.conflicts == ["A0000"] and report.queued == 0
    status = order_service.status(store, "acme")
    assert status["orders"][0]["status"] == "synced"
    assert status["orders"][0]["qb_txn_id"] == "1-1"


def test_invalid_file_enqueues_nothing(store: Store) -> None:
    _company(store)
    bad = make_order_json(OrderNumber="BAD-1", TotalTax="-1")
    with pytest.raises(order_service.NothingEnqueued) as raised:
        order_service.enqueue(store, "acme", [*_orders(2), bad])
    assert raised.value.problems[0].order_number == "BAD-1"
    assert raised.value.problems[0].field == "TotalTax"
    assert order_service.status(store, "acme")["counts"]["pending"] == 0
    report = order_service.enqueue(store, "acme", [*_orders(2), bad], skip_invalid=True)
    assert report.queued == 2 and len(report.problems) == 1


def test_payments_are_queued_with_their_order(store: Store) -> None:
    _company(store)
    order = make_order_json(
        OrderNumber="P1",
        Payments=[
            make_payment(PaymentAmount="10.00", ReferenceNumber="R1"),
            make_payment(PaymentAmount="10.00", ReferenceNumber="R1"),
        ],
    )
    order_service.enqueue(store, "acme", [order])
    payments = order_service.status(store, "acme")["orders"][0]["payments"]
    assert [(p["reference_number"], p["amount"], p["status"]) for p in payments] == [
        ("R1", "10.00", "pending"),
        ("R1", "10.00", "pending"),
    ]


def test_a_claim_takes_the_oldest_pending_orders_and_no_more(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(50))
    run_id = _run(store, company_id)
    with store.transaction() as tx:
        assert store.orders.claim_batch(tx, company_id, run_id, 20, NOW) == 20
        assert len(_held(store, tx, run_id)) == 20
    status = {o["order_number"]: o["status"] for o in order_service.status(store, "acme")["orders"]}
    assert sorted(n for n, s in status.items() if s != "pending") == [
        f"A{i:04d}" for i in range(20)
    ]


def test_claims_never_overlap_under_concurrency(store: Store) -> None:
    company_ids = [_company(store, f"c{i}") for i in range(2)]
    for i in range(2):
        order_service.enqueue(store, f"c{i}", _orders(60, prefix=f"c{i}-"))
    runs = [_run(store, cid) for cid in company_ids]
    # four claimers per company race: two runs' worth of rows each
    claims: dict[int, list[int]] = {}
    counts: list[int] = []
    errors: list[BaseException] = []

    def claim(company_id: int, run_id: int) -> None:
        try:
            with store.transaction() as tx:
                counts.append(store.orders.claim_batch(tx, company_id, run_id, 20, NOW))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=claim, args=(cid, rid))
        for cid, rid in zip(company_ids, runs, strict=True)
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert max(counts) <= 20 and sum(counts) == 120  # no claim takes more than it asked for
    with store.transaction() as tx:
        for run_id in runs:
            claims[run_id] = _held(store, tx, run_id)
    for run_id in runs:
        assert len(claims[run_id]) == 60  # 4 x 20 requested, 60 exist: all claimed, none twice
    assert not set(claims[runs[0]]) & set(claims[runs[1]])


def test_one_open_run_per_company(store: Store) -> None:
    company_id = _company(store)
    _run(store, company_id)
    with pytest.raises(CompanyBusy):
        _run(store, company_id)


def test_transitions_are_guarded_by_the_lease(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(2))
    run_a = _run(store, company_id)
    with store.transaction() as tx:
        store.orders.claim_batch(tx, company_id, run_a, 10, NOW)
        order_id = _held(store, tx, run_a)[0]
        store.runs.close(
            tx,
            run_a,
            __import__("qbwc_bridge.domain.runs", fromlist=["RunStatus"]).RunStatus.ABANDONED,
            NOW,
        )
        assert store.orders.release_run(tx, run_a, NOW, max_attempts=5) == 2
    run_b = _run(store, company_id)
    with store.transaction() as tx:
        store.orders.claim_batch(tx, company_id, run_b, 10, NOW)
    with pytest.raises(LeaseLost), store.transaction() as tx:
        _change(store, tx, run_a, order_id, outcome=OrderOutcome(OrderStatus.SYNCED))
    with store.transaction() as tx:
        _change(store, tx, run_b, order_id, stage=OrderStage.ADD, customer_list_id="80-1")
        (order,) = [o for o in store.orders.claimed_by(tx, run_b) if o.id == order_id]
    assert order.stage is OrderStage.ADD and order.customer_list_id == "80-1"
    assert order.attempts == 2


def test_orders_that_keep_failing_stop_after_max_attempts(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(1))
    for _ in range(3):
        run_id = _run(store, company_id)
        with store.transaction() as tx:
            store.orders.claim_batch(tx, company_id, run_id, 10, NOW)
            from qbwc_bridge.domain.runs import RunStatus

            store.runs.close(tx, run_id, RunStatus.ABANDONED, NOW)
            store.orders.release_run(tx, run_id, NOW, max_attempts=3)
    order = order_service.status(store, "acme")["orders"][0]
    assert order["status"] == "error"
    assert "Gave up after 3 runs" in order["error"]


def test_retry_puts_errored_orders_back(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(2))
    run_id = _run(store, company_id)
    with store.transaction() as tx:
        store.orders.claim_batch(tx, company_id, run_id, 10, NOW)
        for order_id in _held(store, tx, run_id):
            _change(
                store,
                tx,
                run_id,
                order_id,
                outcome=OrderOutcome(OrderStatus.ERROR, "Item missing", 3140),
            )
    assert order_service.retry(store, "acme", ["A0001"]) == ["A0001"]
    counts = order_service.status(store, "acme")["counts"]
    assert counts["pending"] == 1 and counts["error"] == 1


def test_waiting_count_counts_what_the_run_still_holds(store: Store) -> None:
    company_id = _company(store)
    order_service.enqueue(store, "acme", _orders(3))
    run_id = _run(store, company_id)
    with store.transaction() as tx:
        assert store.orders.waiting_count(tx, run_id) == 0
        store.orders.claim_batch(tx, company_id, run_id, 10, NOW)
        held = _held(store, tx, run_id)
        _change(store, tx, run_id, held[0], outcome=OrderOutcome(OrderStatus.SYNCED))
        assert store.orders.waiting_count(tx, run_id) == len(held) - 1 == 2


def _planner_rows(store: Store) -> dict[str, float]:
    with store.transaction() as tx:
        return dict(
            tx.exec_driver_sql(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN ('orders', 'payments')"
            ).all()
        )


def test_a_bulk_load_refreshes_the_planner_statistics(store: Store) -> None:
    """After a large import PostgreSQL plans with real row counts, not an empty table's."""
    _company(store)
    order_service.enqueue(store, "acme", _orders(1000))
    if not store.database.is_postgres:
        return  # SQLite plans by its indexes; nothing to refresh
    rows = _planner_rows(store)
    assert rows["orders"] >= 1000
    assert rows["payments"] >= 0  # -1 until a table is first analyzed (these orders have none)


def test_many_small_enqueues_refresh_the_statistics_too(store: Store) -> None:
    """Fifty orders at a time add up; the planner must not keep believing the queue empty."""
    _company(store)
    if store.database.is_postgres:
        with store.transaction() as tx:  # the planner has seen the queue empty
            tx.exec_driver_sql("ANALYZE orders")
            tx.exec_driver_sql("ANALYZE payments")
        assert _planner_rows(store)["orders"] <= 0
    for start in range(0, 1000, 50):
        order_service.enqueue(store, "acme", _orders(50, prefix=f"S{start:04d}-"))
    if not store.database.is_postgres:
        return
    assert _planner_rows(store)["orders"] >= 500  # analysed on the way, not only at the end
    with store.transaction() as tx:  # and a queue that has not grown since is left alone
        assert store.orders.refresh_statistics(tx) is False


def test_only_the_one_open_run_rule_reads_as_busy(store: Store) -> None:
    """Another conflict (here a repeated ticket) is a fault to see, not a busy company."""
    ticket = passwords.ticket_digest(passwords.new_ticket())
    acme, globex = _company(store, "acme"), _company(store, "globex")
    with store.transaction() as tx:
        store.runs.open_run(tx, acme, ticket, NOW, LATER, inventory_due=False)
    with pytest.raises(IntegrityError), store.transaction() as tx:
        store.runs.open_run(tx, globex, ticket, NOW, LATER, inventory_due=False)


def test_an_answer_is_kept_on_the_waiting_exchange_and_cut_to_a_diagnosable_size(
    store: Store,
) -> None:
    run_id = _run(store, _company(store))
    big = "<QBXML>" + "x" * (2 * store.runs.STORED_RESPONSE_CHARS) + "</QBXML>"
    with store.transaction() as tx:
        request_map = {"1": RequestPurpose(RequestKind.TXN_QUERY, order_id=7)}
        sent = store.runs.add_exchange(tx, run_id, "<QBXML/>", request_map, NOW)
        answered = store.runs.answer_pending(tx, run_id, big, "", "", LATER)
        assert answered is not None
        assert (answered.id, answered.seq, answered.request_map) == (sent.id, 1, sent.request_map)
        assert answered.received_at == LATER
        # Nothing waits any more: a second answer has no exchange to land on.
        assert store.runs.answer_pending(tx, run_id, "<QBXML/>", "", "", LATER) is None
        stored = tx.execute(
            text("SELECT response_xml FROM exchanges WHERE id = :id"), {"id": sent.id}
        ).scalar_one()
    assert len(stored) < len(big)
    assert stored.startswith(big[: store.runs.STORED_RESPONSE_CHARS])
    assert stored.endswith("<!-- truncated -->")


def test_the_lease_brings_the_company_and_whether_a_request_waits(store: Store) -> None:
    """One statement leases the run, reads its company and tells whether an exchange waits.

    The first exchange goes to the second run, so no exchange shares its id with its run:
    a subquery that compared the wrong columns could not pass by coincidence."""
    names = ("acme", "globex", "initech")
    tickets = {name: passwords.ticket_digest(passwords.new_ticket()) for name in names}
    companies = {name: _company(store, name) for name in tickets}
    with store.transaction() as tx:
        runs = {
            name: store.runs.open_run(
                tx, companies[name], ticket, NOW, LATER, inventory_due=False
            ).id
            for name, ticket in tickets.items()
        }
        store.runs.add_exchange(
            tx,
            runs["globex"],
            "<QBXML/>",
            {"1": RequestPurpose(RequestKind.TXN_QUERY, order_id=1)},
            NOW,
        )
        store.runs.add_exchange(
            tx,
            runs["acme"],
            "<QBXML/>",
            {"1": RequestPurpose(RequestKind.TXN_QUERY, order_id=2)},
            NOW,
        )
        # As a send does: the waiting answer is recorded (here as lost) before the next one.
        assert store.runs.answer_pending(tx, runs["acme"], "", "lost", "", NOW) is not None
        second = store.runs.add_exchange(tx, runs["acme"], "<QBXML/>", {}, NOW)

    def lease(name: str) -> tuple[bool, str, int]:
        with store.transaction() as tx:
            run, company = store.runs.lease(tx, tickets[name], NOW, LATER)
        assert run.id == runs[name] and company.id == run.company_id
        return run.awaiting_answer, company.name, company.settings.batch_max

    assert second.seq == 2  # each run numbers its own exchanges
    assert lease("acme") == (True, "acme", 250)
    assert lease("globex") == (True, "globex", 250)
    with store.transaction() as tx:
        answered = store.runs.answer_pending(tx, runs["acme"], "<QBXML/>", "", "", NOW)
        assert answered is not None and answered.id == second.id
        assert store.runs.answer_pending(tx, runs["acme"], "<QBXML/>", "", "", NOW) is None
    assert lease("acme") == (False, "acme", 250)
    assert lease("globex") == (True, "globex", 250)
    assert lease("initech") == (False, "initech", 250)  # no exchange yet
