"""The sync engine against the stand-in QuickBooks: every order exactly once, to the cent."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from enginedriver import last_run, quickbooks, run_once
from factories import make_line, make_order_json, make_payment
from sqlalchemy import select

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.orders import Resolution
from qbwc_bridge.engine import planning
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, QuickBooksParseError
from qbwc_bridge.store import Store, schema, utcnow

USER, PASSWORD = "acme-user", "acme-password"


@pytest.fixture
def engine(store: Store, settings: Settings) -> RunEngine:
    company_service.add_company(store, "acme", USER, PASSWORD)
    # keep inventory out of these runs: they are about orders
    with store.transaction() as tx:
        company = store.companies.by_name(tx, "acme")
        store.companies.set_inventory_due_at(tx, company.id, utcnow() + timedelta(days=1))
    return RunEngine(store, settings)


def _orders(store: Store) -> dict[str, dict[str, object]]:
    return {o["order_number"]: o for o in order_service.status(store, "acme")["orders"]}


def _customer_order(i: int, **overrides: object) -> dict[str, object]:
    return make_order_json(
        OrderNumber=f"10{i:02d}",
        CustomerName=f"Customer {i}",
        billingAddress={"firstName": f"First{i}", "lastName": f"Last{i}"},
        **overrides,
    )


def test_new_orders_with_payments_land_exactly_once(engine: RunEngine, store: Store) -> None:
    orders = [
        _customer_order(i, Payments=[make_payment(PaymentAmount="10.00", ReferenceNumber=f"P{i}")])
        for i in range(12)
    ]
    order_service.enqueue(store, "acme", orders)
    fake = quickbooks()
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100, result
    assert all(p1 <= p2 for p1, p2 in zip(result.progress, result.progress[1:], strict=False))
    assert result.closed.startswith("Synced 12 orders")
    run = last_run(store)  # the run's round trips are counted when it ends
    with store.transaction() as tx:
        sequence = tx.execute(select(schema.exchanges.c.seq).order_by(schema.exchanges.c.id))
        assert list(sequence.scalars()) == list(range(1, result.exchanges + 1))
    assert run.exchanges == result.exchanges
    states = _orders(store)
    assert {o["status"] for o in states.values()} == {"synced"}
    assert len(fake.invoices()) == 12 and len(fake.customers) == 12 and len(fake.payments) == 12
    expected_total = {o["OrderNumber"]: Decimal(str(o["OrderTotal"])) for o in orders}
    invoice_ids = {}
    for invoice in fake.invoices():
        assert invoice.total == expected_total[invoice.ref_number]
        assert invoice.customer.startswith("Last")
        invoice_ids[invoice.ref_number] = invoice.txn_id
        assert states[invoice.ref_number]["qb_txn_id"] == invoice.txn_id
    for payment in fake.payments:
        (applied,) = payment.applied
        assert applied.amount == Decimal("10.00")
        order_number = "10" + payment.ref_number[1:].zfill(2)  # type: ignore[index]
        assert applied.invoice_txn_id == invoice_ids[order_number]
    # a second run has nothing to do and adds nothing
    assert run_once(engine, fake, USER, PASSWORD).answer in ("none", "")
    assert len(fake.invoices()) == 12 and len(fake.payments) == 12


class QuickBooksClock:
    """The engine's clock, moved on by QuickBooks' time for each message it answers."""

    def __init__(self, seconds_per_request: float) -> None:
        self.now = utcnow()
        self.seconds_per_request = seconds_per_request
        self.answers = 0

    def __call__(self) -> datetime:
        return self.now

    def answer(self, fake: FakeQuickBooks, request: str) -> str:
        self.answers += 1
        jitter = 1.01 if self.answers % 2 else 0.99  # no two measurements quite alike
        seconds = self.seconds_per_request * jitter * request.count("requestID=")
        self.now += timedelta(seconds=seconds)
        return fake.process(request)


@pytest.mark.parametrize("seconds_per_request", [0.01, 0.05, 0.5, 2.0])
def test_messages_follow_the_measured_speed_of_quickbooks(
    engine: RunEngine, store: Store, settings: Settings, seconds_per_request: float
) -> None:
    """After the first answer, a message carries what QuickBooks handles in about 30 s,
    at most MAX_REQUESTS_PER_MESSAGE; a steady speed is written once, not at every answer."""
    order_service.enqueue(store, "acme", [_customer_order(i) for i in range(60)])
    clock = QuickBooksClock(seconds_per_request)
    paced = RunEngine(store, settings, clock=clock)
    fake = quickbooks()
    auth = paced.authenticate(USER, PASSWORD)
    fake.begin_session()
    hcp, major = fake.hcp_response(), int(fake.max_version.split(".")[0])
    sizes, speeds = [], []
    while request := paced.next_request(auth.ticket, hcp, r"C:\Sample.QBW", "US", major, 0):
        hcp = ""
        sizes.append(request.count("requestID="))
        progress = paced.record_response(auth.ticket, clock.answer(fake, request), "", "")
        with store.transaction() as tx:
            speeds.append(store.companies.by_name(tx, "acme").seconds_per_request)
        if progress >= 100:
            break
    paced.close(auth.ticket)
    assert len(fake.invoices()) == 60
    budget = planning.request_budget(seconds_per_request)
    assert budget == min(planning.MAX_REQUESTS_PER_MESSAGE, int(30 / seconds_per_request))
    assert max(sizes[1:]) <= budget, sizes
    assert speeds[-1] == pytest.approx(seconds_per_request, rel=0.03)
    assert len(set(speeds)) == 1, speeds  # measured once; a steady speed is not rewritten


def test_progress_counts_the_orders_still_waiting(engine: RunEngine, store: Store) -> None:
    """Each answer's progress is the share of the batch no longer waiting (100 at the end),
    as counted in the database, whatever the orders' outcomes: synced, error, duplicate."""
    fake = quickbooks()
    fake.add_invoice("Smith, John", Decimal("51.60"), ref_number="D1")  # this order's total
    orders = [_customer_order(i, Payments=[make_payment(PaymentAmount="1.00")]) for i in range(9)]
    orders += [
        make_order_json(OrderNumber="BAD", orderDetails=[make_line(sku="SKU-9")]),
        make_order_json(OrderNumber="D1"),
    ]
    company_service.set_company_setting(store, "acme", "orders_per_message", "2")
    order_service.enqueue(store, "acme", orders)
    auth = engine.authenticate(USER, PASSWORD)
    fake.begin_session()
    hcp, major = fake.hcp_response(), int(fake.max_version.split(".")[0])
    seen = []
    while request := engine.next_request(auth.ticket, hcp, r"C:\Sample.QBW", "US", major, 0):
        hcp = ""
        progress = engine.record_response(auth.ticket, fake.process(request), "", "")
        run = last_run(store)
        with store.transaction() as tx:
            waiting = store.orders.waiting_count(tx, run.id)
        expected = (
            100 if waiting == 0 else min(99, 100 * (run.batch_size - waiting) // run.batch_size)
        )
        assert progress == expected, (progress, waiting, run.batch_size)
        seen.append(progress)
        if progress >= 100:
            break
    engine.close(auth.ticket)
    assert seen[-1] == 100 and len(set(seen)) > 3, seen
    assert {o["status"] for o in _orders(store).values()} == {"synced", "error", "duplicate"}


def test_existing_customer_is_found_not_added(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    existing = fake.add_customer("Smith, John")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="E1")])
    run_once(engine, fake, USER, PASSWORD)
    assert [c.full_name for c in fake.customers] == ["Smith, John"]
    assert fake.invoices()[0].customer_list_id == existing.list_id
    assert "CustomerAdd" not in " ".join(fake.request_log)


def test_invoice_already_in_quickbooks_is_a_duplicate(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="D1")])
    run_once(engine, fake, USER, PASSWORD)
    assert len(fake.invoices()) == 1
    # the same order queued in a second bridge database (e.g. after a restore) is recognised
    company_service.set_company_setting(store, "acme", "txn_type", "invoice")
    with store.transaction() as tx:
        tx.exec_driver_sql("DELETE FROM orders")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="D1")])
    run_once(engine, fake, USER, PASSWORD)
    assert len(fake.invoices()) == 1
    (order,) = _orders(store).values()
    assert order["status"] == "duplicate"
    assert order["qb_txn_id"] == fake.invoices()[0].txn_id


def test_identical_payments_count_by_multiplicity(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    twin = make_payment(PaymentAmount="25.00", ReferenceNumber="SAME")
    order = make_order_json(
        OrderNumber="M1",
        Payments=[twin, twin, make_payment(PaymentAmount="1.60", ReferenceNumber="X")],
    )
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    assert sorted(p.total for p in fake.payments) == [
        Decimal("1.60"),
        Decimal("25.00"),
        Decimal("25.00"),
    ]
    # one of the twins already existed in QuickBooks: re-running the order adds only what is missing
    with store.transaction() as tx:
        tx.exec_driver_sql("DELETE FROM orders")
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    assert len(fake.payments) == 3
    payments = _orders(store)["M1"]["payments"]
    assert [p["status"] for p in payments] == ["duplicate", "duplicate", "duplicate"]  # type: ignore[index]
    assert len({p["qb_txn_id"] for p in payments}) == 3  # type: ignore[union-attr]


def test_missing_item_errors_that_order_only(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    bad = make_order_json(OrderNumber="BAD", orderDetails=[make_line(sku="SKU-9")])
    order_service.enqueue(store, "acme", [_customer_order(1), bad, _customer_order(2)])
    run_once(engine, fake, USER, PASSWORD)
    states = _orders(store)
    assert states["BAD"]["status"] == "error"
    assert "SKU-9" in str(states["BAD"]["error"]) and "create it or map the SKU" in str(
        states["BAD"]["error"]
    )
    assert states["1001"]["status"] == "synced" and states["1002"]["status"] == "synced"
    assert sorted(i.ref_number for i in fake.invoices()) == [
        "1001",
        "1002",
    ]  # nothing partial for BAD


def test_too_long_texts_are_cut_not_rejected(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    long_name = "Bartholomew-Maximilian " * 3
    order = make_order_json(
        OrderNumber="L1",
        CustomerName=long_name,
        billingAddress={
            "firstName": "Bartholomew-Maximilian-Alexander",
            "lastName": "Featherstonehaugh-Worthington",
            "address1": "x" * 80,
            "city": "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
        },
    )
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    assert _orders(store)["L1"]["status"] == "synced"
    (customer,) = fake.customers
    assert len(customer.full_name) <= 41


@pytest.mark.parametrize(
    ("order_type", "setting", "kind"),
    [
        (1, None, "CreditMemo"),
        (3, None, "CreditMemo"),
        (5, None, "SalesReceipt"),
        (4, None, "SalesOrder"),
        (0, "sales_receipt", "SalesReceipt"),
    ],
)
def test_transaction_types(
    engine: RunEngine, store: Store, order_type: int, setting: str | None, kind: str
) -> None:
    if setting:
        company_service.set_company_setting(store, "acme", "txn_type", setting)
    fake = quickbooks()
    order = make_order_json(OrderNumber="T1", OrderType=order_type)
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    (txn,) = fake.transactions(kind)  # type: ignore[arg-type]
    assert txn.total == Decimal(str(order["OrderTotal"]))
    assert _orders(store)["T1"]["status"] == "synced"
    assert _orders(store)["T1"]["txn_type"] == kind


@pytest.mark.parametrize(
    ("order_type", "kind"), [(5, "SalesReceipt"), (4, "SalesOrder"), (1, "CreditMemo")]
)
def test_payments_of_other_transactions_get_an_outcome(
    engine: RunEngine, store: Store, order_type: int, kind: str
) -> None:
    """Only invoices take ReceivePayments; no payment may stay pending after its order."""
    fake = quickbooks()
    payments = [make_payment(ReferenceNumber="P-1"), make_payment(ReferenceNumber="P-2")]
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="T1", OrderType=order_type, Payments=payments)]
    )
    run_once(engine, fake, USER, PASSWORD)
    assert not fake.payments
    order = _orders(store)["T1"]
    (txn,) = fake.transactions(kind)  # type: ignore[arg-type]
    assert order["status"] == "synced" and order["qb_txn_id"] == txn.txn_id
    outcomes = [(p["status"], p["qb_txn_id"], p["error"]) for p in order["payments"]]  # type: ignore[attr-defined]
    if kind == "SalesReceipt":  # the receipt records its payment itself
        assert outcomes == [("synced", txn.txn_id, None)] * 2
    else:
        assert [status for status, _, _ in outcomes] == ["error", "error"]
        assert all(f"became a {kind}" in error and "by hand" in error for _, _, error in outcomes)
    if kind == "SalesReceipt":  # queued again after the queue lost it: a duplicate, paid
        with store.transaction() as tx:
            tx.exec_driver_sql("DELETE FROM payments")
            tx.exec_driver_sql("DELETE FROM orders")
        order_service.enqueue(
            store, "acme", [make_order_json(OrderNumber="T1", OrderType=5, Payments=payments)]
        )
        run_once(engine, fake, USER, PASSWORD)
        again = _orders(store)["T1"]
        assert again["status"] == "duplicate" and len(fake.transactions(kind)) == 1  # type: ignore[arg-type]
        assert [(p["status"], p["qb_txn_id"]) for p in again["payments"]] == [  # type: ignore[attr-defined]
            ("duplicate", txn.txn_id)
        ] * 2


def test_amazon_order_numbers(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    first, second = "112-1234567-1234567", "113-7654321-1234567"  # same last 11 characters
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber=first, ChannelName="Amazon")])
    run_once(engine, fake, USER, PASSWORD)
    (invoice,) = fake.invoices()
    assert invoice.ref_number == first[-11:] and invoice.po_number == first
    assert first in (invoice.memo or "")
    # a different order sharing the last 11 characters is not mistaken for a duplicate
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber=second, ChannelName="Amazon")]
    )
    run_once(engine, fake, USER, PASSWORD)
    assert sorted(i.po_number or "" for i in fake.invoices()) == sorted([first, second])
    assert _orders(store)[second]["status"] == "synced"


def test_older_quickbooks_gets_qbxml_11(engine: RunEngine, store: Store) -> None:
    fake = quickbooks(max_version="11.0")
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="O1", Payments=[make_payment()])]
    )
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100
    assert _orders(store)["O1"]["status"] == "synced"
    assert company_service.show_company(store, "acme")["qbxml_version"] == "11.0"


class PoisonQuickBooks(FakeQuickBooks):
    """Cannot parse any message that carries the text POISON, like an unreadable character."""

    def process(self, request_xml: str) -> str:
        if "POISON" in request_xml:
            raise QuickBooksParseError("the test's poison marker")
        return super().process(request_xml)


def test_unparseable_message_isolates_the_culprit(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    fake.__class__ = PoisonQuickBooks
    poison = make_order_json(
        OrderNumber="P9",
        CustomerName="POISON Person",
        billingAddress={"firstName": "POISON", "lastName": "Person"},
    )
    order_service.enqueue(
        store, "acme", [_customer_order(1), poison, _customer_order(2), _customer_order(3)]
    )
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100
    states = _orders(store)
    assert states["P9"]["status"] == "error" and "0x80040400" in str(states["P9"]["error"])
    assert [states[n]["status"] for n in ("1001", "1002", "1003")] == ["synced"] * 3
    assert len(fake.invoices()) == 3


def test_lost_response_after_add_is_found_not_repeated(engine: RunEngine, store: Store) -> None:
    for lose_at in (1, 2, 3):
        fake = quickbooks()
        with store.transaction() as tx:
            tx.exec_driver_sql("DELETE FROM orders")
        order_service.enqueue(
            store,
            "acme",
            [
                _customer_order(
                    i, Payments=[make_payment(PaymentAmount="5.00", ReferenceNumber=f"R{i}")]
                )
                for i in range(3)
            ],
        )
        fake.lose_response_after(lose_at)
        first = run_once(engine, fake, USER, PASSWORD)
        assert first.lost
        with store.transaction() as tx:  # the Web Connector never came back: the run expires
            tx.exec_driver_sql("UPDATE runs SET expires_at = created_at WHERE status = 'open'")
        second = run_once(engine, fake, USER, PASSWORD)
        assert second.progress[-1] == 100, (lose_at, second)
        assert len(fake.invoices()) == 3 and len(fake.payments) == 3, lose_at
        assert {o["status"] for o in _orders(store).values()} == {"synced"}, lose_at
        assert {p["status"] for o in _orders(store).values() for p in o["payments"]} == {"synced"}  # type: ignore[attr-defined]


def test_a_request_left_unanswered_is_marked_lost_and_its_orders_checked_again(
    engine: RunEngine, store: Store
) -> None:
    """The Web Connector asks for the next request without answering the last one: that
    exchange is closed as "lost" and what it carried is checked again, never re-added blind."""
    order_service.enqueue(store, "acme", [_customer_order(i) for i in range(3)])
    fake = quickbooks()
    auth = engine.authenticate(USER, PASSWORD)
    fake.begin_session()
    hcp, major = fake.hcp_response(), int(fake.max_version.split(".")[0])
    check = engine.next_request(auth.ticket, hcp, r"C:\Company\Sample.QBW", "US", major, 0)
    engine.record_response(auth.ticket, fake.process(check), "", "")
    adds = engine.next_request(auth.ticket, "", "", "US", major, 0)
    assert "InvoiceAddRq" in adds
    fake.process(adds)  # QuickBooks applied the adds; their answer never reached the service
    again = engine.next_request(auth.ticket, "", "", "US", major, 0)
    assert "InvoiceQueryRq" in again and "InvoiceAddRq" not in again
    with store.transaction() as tx:
        answers = tx.execute(
            select(schema.exchanges.c.seq, schema.exchanges.c.hresult).order_by(
                schema.exchanges.c.seq
            )
        ).all()
    assert [tuple(row) for row in answers] == [(1, ""), (2, "lost"), (3, None)]
    engine.record_response(auth.ticket, fake.process(again), "", "")
    while request := engine.next_request(auth.ticket, "", "", "US", major, 0):
        if engine.record_response(auth.ticket, fake.process(request), "", "") >= 100:
            break
    engine.close(auth.ticket)
    assert len(fake.invoices()) == 3
    assert {o["status"] for o in _orders(store).values()} == {"synced"}


def test_two_runs_for_one_company_do_not_overlap(engine: RunEngine, store: Store) -> None:
    order_service.enqueue(store, "acme", [_customer_order(1)])
    first = engine.authenticate(USER, PASSWORD)
    assert engine.next_request(first.ticket, "", r"C:\Books.QBW", "US", 13, 0)
    second = engine.authenticate(USER, PASSWORD)  # while QuickBooks works on the first's request
    assert first.answer == "" and second.answer == "busy"
    with store.transaction() as tx:
        assert len(store.runs.open_runs(tx)) == 1


def test_payment_uses_the_customer_of_the_invoice_found(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    # Another tool entered it under its own customer name, with the order number in its memo.
    fake.add_invoice(
        "Other Tool's Name For John", Decimal("51.60"), ref_number="F1", memo="Web order F1"
    )
    order = make_order_json(
        OrderNumber="F1", Payments=[make_payment(PaymentAmount="51.60", ReferenceNumber="PAY-F1")]
    )
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    state = _orders(store)["F1"]
    assert state["status"] == "duplicate"
    (payment,) = fake.payments
    assert payment.customer == "Other Tool's Name For John"
    assert state["payments"][0]["status"] == "synced"  # type: ignore[index]
    assert fake.invoices()[0].balance == Decimal("0.00")


# --- books you can trust ------------------------------------------------------------------


def test_a_bookkeepers_invoice_with_the_same_number_is_a_conflict_until_a_person_decides(
    engine: RunEngine, store: Store
) -> None:
    fake = quickbooks()
    fake.add_invoice("Jones, Mary", Decimal("120.00"), ref_number="1001")  # typed in by hand
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="1001")])
    run_once(engine, fake, USER, PASSWORD)
    state = _orders(store)["1001"]
    assert state["status"] == "error"
    assert "resolve --company acme 1001 --add-anyway" in str(state["error"])
    assert len(fake.invoices()) == 1  # nothing added, nothing skipped silently

    order_service.resolve(store, "acme", "1001", Resolution.ADD)
    run_once(engine, fake, USER, PASSWORD)
    assert _orders(store)["1001"]["status"] == "synced"
    assert sorted(i.customer for i in fake.invoices()) == ["Jones, Mary", "Smith, John"]

    run_once(engine, fake, USER, PASSWORD)  # the added one is found as this order: no third
    assert len(fake.invoices()) == 2


def test_resolving_as_a_duplicate_links_the_transaction_quickbooks_has(
    engine: RunEngine, store: Store
) -> None:
    fake = quickbooks()
    existing = fake.add_invoice("Smith, J.", Decimal("51.60"), ref_number="1001")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="1001")])
    run_once(engine, fake, USER, PASSWORD)
    assert _orders(store)["1001"]["status"] == "error"
    with pytest.raises(BridgeError, match="has no order"):
        order_service.resolve(store, "acme", "nope", Resolution.DUPLICATE)
    order_service.resolve(store, "acme", "1001", Resolution.DUPLICATE)
    run_once(engine, fake, USER, PASSWORD)
    state = _orders(store)["1001"]
    assert (state["status"], state["qb_txn_id"]) == ("duplicate", existing.txn_id)
    assert len(fake.invoices()) == 1


def test_a_run_against_another_company_file_adds_nothing_until_paired(
    engine: RunEngine, store: Store
) -> None:
    with store.transaction() as tx:
        company = store.companies.by_name(tx, "acme")
    books = quickbooks(company_name="Acme Books")
    books.stamp_file_id(company.owner_id, company.file_id)
    order_service.enqueue(store, "acme", [_customer_order(1)])
    run_once(engine, books, USER, PASSWORD, company_file=r"C:\Books\Acme.QBW")
    assert _orders(store)["1001"]["status"] == "synced"

    # A copy of the file keeps FileID and name: only its path tells it apart.
    copy = quickbooks(company_name="Acme Books")
    copy.stamp_file_id(company.owner_id, company.file_id)
    order_service.enqueue(store, "acme", [_customer_order(2)])
    result = run_once(engine, copy, USER, PASSWORD, company_file=r"C:\Test\Acme copy.QBW")
    assert copy.invoices() == () and _orders(store)["1002"]["status"] == "pending"
    assert r"C:\Test\Acme copy.QBW" in result.last_error
    assert r"C:\Books\Acme.QBW" in result.last_error
    assert "company pair acme --accept-current-file" in result.last_error

    other = quickbooks(company_name="Globex Ltd")  # another client's books, same path
    run_once(engine, other, USER, PASSWORD, company_file=r"C:\Books\Acme.QBW")
    assert other.invoices() == ()
    assert company_service.show_company(store, "acme")["open_file"]["company_name"] == "Globex Ltd"

    company_service.pair_current_file(store, "acme")
    run_once(engine, other, USER, PASSWORD, company_file=r"C:\Books\Acme.QBW")
    assert _orders(store)["1002"]["status"] == "synced" and len(other.invoices()) == 1
    shown = company_service.show_company(store, "acme")["paired_file"]
    assert shown == {"file_id": "", "company_name": "Globex Ltd", "path": r"C:\Books\Acme.QBW"}


def test_a_status_that_never_passes_stops_after_five_runs(engine: RunEngine, store: Store) -> None:
    fake = quickbooks()
    fake.refuse("InvoiceAddRq", 3180, "There was an error when saving a Invoice transaction.")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="L1")])
    for _ in range(4):
        run_once(engine, fake, USER, PASSWORD)
        assert _orders(store)["L1"]["status"] == "pending"
    run_once(engine, fake, USER, PASSWORD)
    state = _orders(store)["L1"]
    assert state["status"] == "error" and "5 runs in a row" in str(state["error"])
    assert run_once(engine, fake, USER, PASSWORD).answer == "none"  # no sixth run


@pytest.mark.parametrize(
    ("first", "last"),
    [("Ελένη", "Παπαδοπούλου"), ("Иван", "Петров"), ("小明", "王"), ("محمد", "علي")],
)
def test_buyers_named_in_other_scripts_stay_apart_and_are_found_again(
    engine: RunEngine, store: Store, first: str, last: str
) -> None:
    fake = quickbooks()
    buyer = {"firstName": first, "lastName": last, "email": "a@example.com"}
    other = {"firstName": first[:1], "lastName": last[:1], "email": "b@example.com"}
    orders = [
        make_order_json(OrderNumber="S1", CustomerName=f"{first} {last}", billingAddress=buyer),
        make_order_json(
            OrderNumber="S2", CustomerName=f"{first[:1]} {last[:1]}", billingAddress=other
        ),
    ]
    order_service.enqueue(store, "acme", orders)
    run_once(engine, fake, USER, PASSWORD)
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="S3", CustomerName="x", billingAddress=buyer)]
    )
    run_once(engine, fake, USER, PASSWORD)
    customers = [c.full_name for c in fake.customers]
    assert len(customers) == 2 and all(name.isascii() and name.strip() for name in customers)
    assert {o["status"] for o in _orders(store).values()} == {"synced"}


def test_windows_1252_extras_reach_the_strictest_quickbooks_as_ascii(
    engine: RunEngine, store: Store
) -> None:
    """The stand-in refuses Windows-1252's 0x80-0x9F characters, as the strictest QuickBooks
    would: curly quotes, dashes, "…", "€", "™" and "Œ" go as their ASCII equivalents."""
    fake = quickbooks()
    order = make_order_json(
        OrderNumber="Q1",
        CustomerName="Zoë O’Neil",
        billingAddress={"firstName": "Zoë", "lastName": "O’Neil", "company": "Œuvre™ — €"},
        orderDetails=[
            make_line(name="“Deluxe” mug… 2-pack", priceExclTax="5.00", priceInclTax="5.00")
        ],
        ShippingMethod="UPS – Ground",
    )
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    assert _orders(store)["Q1"]["status"] == "synced"
    (invoice,) = fake.invoices()
    assert invoice.customer == "O'Neil, Zoë"
