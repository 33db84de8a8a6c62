"""Exports against the stand-in QuickBooks: the feed ends with QuickBooks' transactions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from enginedriver import last_run, quickbooks, run_once
from factories import make_order_json

from qbwc_bridge.config import Settings
from qbwc_bridge.engine import export as export_step
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import exports as export_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ResponseLost, SaleLine
from qbwc_bridge.store import Store, utcnow

USER, PASSWORD = "acme-user", "acme-password"
D = Decimal


class Clock:
    """Shared by the engine and the stand-in QuickBooks; tests move it by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(store: Store, settings: Settings, clock: Clock) -> RunEngine:
    company_service.add_company(store, "acme", USER, PASSWORD)
    company_service.set_company_setting(
        store, "acme", "export_transactions", "invoice,sales_receipt,credit_memo"
    )
    return RunEngine(store, settings, clock=clock)


def feed(store: Store, since: int = 0) -> list[dict[str, Any]]:
    return list(export_service.quickbooks_transactions(store, "acme", since, 10**6)["rows"])


def by_txn(store: Store) -> dict[str, dict[str, Any]]:
    rows = feed(store)
    found = {row["qb_txn_id"]: row for row in rows}
    assert len(found) == len(rows), "one row per transaction"
    return found


def export_requests(fake: FakeQuickBooks) -> list[str]:
    exported = ("InvoiceQuery", "SalesReceiptQuery", "SalesOrderQuery", "CreditMemoQuery")
    return [r for r in fake.request_log if r.startswith(exported) or r == "TxnDeletedQueryRq"]


def counter_sale(fake: FakeQuickBooks, ref: str = "BK-1", **options: Any) -> str:
    """A sale a bookkeeper entered: two items, shipping, a discount and the tax line."""
    record = fake.add_sale(
        options.pop("kind", "Invoice"),
        options.pop("customer", "Walk-in Customer"),
        options.pop(
            "lines",
            [
                SaleLine("WIDGET-RED", D(3), D("10.00"), "Red widget"),
                SaleLine("GADGET-PRO", D("1.5"), D("4.10"), "Gadget"),
                SaleLine("Shipping", amount=D("6.00"), desc="Courier"),
                SaleLine("Discount", amount=D("-2.00"), desc="Loyalty"),
                SaleLine("Sales Tax", amount=D("2.75"), desc="Sales tax"),
            ],
        ),
        ref_number=ref,
        txn_date=date(2026, 3, 1),
        bill_address={
            "Addr1": "Jane Doe",
            "Addr2": "Doe Trading",
            "Addr3": "1 High Street",
            "Addr4": "Floor 2",
            "City": "Springfield",
            "State": "IL",
            "PostalCode": "62701",
            "Country": "US",
        },
        ship_address={"Addr1": "Jane Doe", "Addr2": "9 Dock Road", "City": "Shelbyville"},
        **options,
    )
    return record.txn_id


def test_hand_entered_and_bridge_added_sales_come_back_as_orders(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    hand = counter_sale(fake)
    receipt = counter_sale(
        fake, "SR-7", kind="SalesReceipt", lines=[SaleLine("MUG-CLASSIC", D(1), D("8.00"))]
    )
    order_service.enqueue(
        store,
        "acme",
        [
            make_order_json(OrderNumber="1001"),
            make_order_json(OrderNumber="112-1234567-1234567", OrderType=3),
        ],
    )
    clock.advance(minutes=1)

    # Orders first, then the inventory query (due at the first run), then the export.
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100 and result.progress == sorted(result.progress), result
    log = list(fake.request_log)
    first_export = log.index("ItemInventoryAssemblyQueryRq") + 1
    assert log[first_export:] == [
        "InvoiceQueryRq", "SalesReceiptQueryRq", "CreditMemoQueryRq", "TxnDeletedQueryRq",
    ]  # fmt: skip
    assert sum(r == "InvoiceAddRq" for r in log[:first_export]) == 1

    rows = by_txn(store)
    assert len(rows) == 4
    assert rows[hand] == {
        "OrderNumber": "BK-1",
        "OrderDate": "2026-03-01",
        "OrderType": 2,
        "CustomerName": "Walk-in Customer",
        "billingAddress": {
            "fullName": "Jane Doe",
            "company": "Doe Trading",
            "address1": "1 High Street",
            "address2": "Floor 2",
            "city": "Springfield",
            "regionName": "IL",
            "postalCode": "62701",
            "countryName": "US",
        },
        "shippingAddress": {
            "fullName": "Jane Doe",
            "address1": "9 Dock Road",
            "city": "Shelbyville",
        },
        "orderDetails": [
            {"sku": "WIDGET-RED", "name": "Red widget", "quantity": "3", "priceExclTax": "10.00"},
            {"sku": "GADGET-PRO", "name": "Gadget", "quantity": "1.5", "priceExclTax": "4.10"},
        ],
        "ShippingMethod": "Courier",
        "ShippingExclTax": "6.00",
        "discountExclTax": "2.00",
        "TotalTax": "2.75",
        "OrderTotal": "42.90",
        "qb_txn_id": hand,
        "qb_time_modified": "2026-03-02T09:00:00+00:00",
        "created_by_bridge": False,
        "queued_order_number": None,
        "deleted": False,
        "cursor": rows[hand]["cursor"],
        "updated_at": rows[hand]["updated_at"],
    }
    assert rows[receipt]["OrderType"] == 5 and rows[receipt]["OrderTotal"] == "8.00"
    invoice = next(t for t in fake.invoices() if t.ref_number == "1001")
    memo = fake.credit_memos()[0]
    assert rows[invoice.txn_id]["created_by_bridge"] is True
    assert rows[invoice.txn_id]["queued_order_number"] == "1001"
    assert rows[memo.txn_id]["OrderType"] == 3
    assert rows[memo.txn_id]["OrderNumber"] == "567-1234567"  # QuickBooks' RefNumber, cut
    assert rows[memo.txn_id]["queued_order_number"] == "112-1234567-1234567"
    assert rows[invoice.txn_id]["OrderTotal"] == "51.60"
    assert sorted(row["cursor"] for row in rows.values()) == [1, 2, 3, 4]

    # Not due again for an hour (export_every_minutes) and nothing queued: no work.
    clock.advance(minutes=30)
    assert engine.authenticate(USER, PASSWORD).answer == "none"
    clock.advance(minutes=31)
    again = run_once(engine, fake, USER, PASSWORD)
    assert again.answer == "" and again.progress[-1] == 100
    assert by_txn(store) == rows, "nothing changed: nothing new in the feed"


def test_a_change_takes_a_new_cursor_and_an_unchanged_reread_does_not(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    early = counter_sale(fake, "A-1")
    clock.advance(minutes=5)
    late = counter_sale(fake, "A-2")  # saved 5 minutes before the first export starts
    clock.advance(minutes=5)
    run_once(engine, fake, USER, PASSWORD)
    first = by_txn(store)
    first_state = last_run(store).export_state
    assert first_state is not None and first_state.modified_from is None, "a full first pass"

    clock.advance(minutes=61)
    changed = fake.modify_transaction(
        early, lines=[SaleLine("WIDGET-BLUE", D(2), D("7.25"), "Blue widget")]
    )
    second = run_once(engine, fake, USER, PASSWORD)
    assert second.progress[-1] == 100
    state = last_run(store).export_state
    assert state is not None and state.finished and not state.failed
    # Read again: the changed sale, and the one saved within the clock-skew margin.
    assert state.modified_from == first_state.started_at - export_step.CLOCK_SKEW_MARGIN
    assert state.fetched == 2 and state.changed == 1
    after = by_txn(store)
    assert after[late] == first[late], "read again unchanged: same row, same cursor"
    assert after[early]["cursor"] == max(row["cursor"] for row in first.values()) + 1
    assert after[early]["orderDetails"] == [
        {"sku": "WIDGET-BLUE", "name": "Blue widget", "quantity": "2", "priceExclTax": "7.25"}
    ]
    assert after[early]["qb_time_modified"] == changed.time_modified.isoformat()
    assert feed(store, since=max(row["cursor"] for row in first.values())) == [after[early]]

    # Saved again without a change: TimeModified moved, so the row did too.
    clock.advance(minutes=61)
    fake.modify_transaction(early)
    run_once(engine, fake, USER, PASSWORD)
    assert by_txn(store)[early]["cursor"] == after[early]["cursor"] + 1


def test_deletions_are_reported_once(engine: RunEngine, store: Store, clock: Clock) -> None:
    fake = quickbooks(clock=clock)
    hand = counter_sale(fake, "H-1")
    kept = counter_sale(fake, "H-2")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="W-1")])
    run_once(engine, fake, USER, PASSWORD)
    bridge = next(t for t in fake.invoices() if t.ref_number == "W-1").txn_id
    before = by_txn(store)
    assert set(before) == {hand, kept, bridge}

    clock.advance(minutes=61)
    fake.delete_transaction(hand)
    fake.delete_transaction(bridge)
    unseen = counter_sale(fake, "H-3")  # entered and deleted between two exports
    fake.delete_transaction(unseen)
    run_once(engine, fake, USER, PASSWORD)
    after = by_txn(store)
    assert set(after) == {hand, kept, bridge}, "a sale nobody read is no news"
    for txn_id in (hand, bridge):
        gone = after[txn_id]
        assert gone["deleted"] is True
        assert gone["cursor"] > max(row["cursor"] for row in before.values())
        assert {
            k: v
            for k, v in gone.items()
            if k not in ("deleted", "cursor", "updated_at", "qb_time_modified")
        } == {
            k: v
            for k, v in before[txn_id].items()
            if k not in ("deleted", "cursor", "updated_at", "qb_time_modified")
        }, "a deleted row keeps the order it was"
    assert after[bridge]["queued_order_number"] == "W-1"
    assert after[kept] == before[kept]

    # The next export reads the same deletions again (the margin): no new cursor.
    clock.advance(minutes=61)
    run_once(engine, fake, USER, PASSWORD)
    assert by_txn(store) == after


def test_a_bridge_order_deleted_before_its_first_export_is_still_reported(
    store: Store, settings: Settings, clock: Clock
) -> None:
    company_service.add_company(store, "acme", USER, PASSWORD)
    engine = RunEngine(store, settings, clock=clock)
    fake = quickbooks(clock=clock)
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="W-9")])
    assert run_once(engine, fake, USER, PASSWORD).progress[-1] == 100
    assert export_requests(fake) == ["InvoiceQueryRq"], "the duplicate check only: no export"
    txn_id = fake.invoices()[0].txn_id
    fake.delete_transaction(txn_id)
    company_service.set_company_setting(store, "acme", "export_transactions", "invoice")
    clock.advance(minutes=1)
    assert run_once(engine, fake, USER, PASSWORD).progress[-1] == 100
    (row,) = feed(store)
    assert row["qb_txn_id"] == txn_id and row["deleted"] is True
    assert row["OrderNumber"] == "W-9" and row["OrderType"] == 2
    assert row["created_by_bridge"] is True and row["queued_order_number"] == "W-9"


@dataclass
class Driven:
    requests: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    last_error: str = ""


def drive(
    engine: RunEngine,
    fake: FakeQuickBooks,
    *,
    major: int = 13,
    before_page: Callable[[str], None] = lambda request: None,
) -> Driven:
    """One run like the Web Connector's, with a hook before each message reaches QuickBooks."""
    auth = engine.authenticate(USER, PASSWORD)
    assert auth.answer == "", auth
    fake.begin_session()
    driven, hcp = Driven(), fake.hcp_response()
    for _ in range(1000):
        request = engine.next_request(auth.ticket, hcp, r"C:\Company\Sample.QBW", "US", major, 0)
        hcp = ""
        if not request:
            break
        driven.requests.append(request)
        before_page(request)
        driven.progress.append(engine.record_response(auth.ticket, fake.process(request), "", ""))
        if driven.progress[-1] < 0 or driven.progress[-1] >= 100:
            break
    driven.last_error = engine.last_error(auth.ticket)
    engine.close(auth.ticket)
    return driven


def many_sales(fake: FakeQuickBooks, invoices: int, receipts: int) -> None:
    for i in range(invoices):
        fake.add_sale(
            "Invoice",
            f"Customer {i % 7}",
            [SaleLine("WIDGET-RED", D(1 + i % 3), D("9.99"))],
            ref_number=f"I{i}",
        )
    for i in range(receipts):
        fake.add_sale(
            "SalesReceipt",
            "Cash Sales",
            [SaleLine("MUG-CLASSIC", D(2), D("4.50"))],
            ref_number=f"R{i}",
        )


def test_iterators_page_every_type_and_an_expired_one_starts_again(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock, iterator_ttl_seconds=60)
    many_sales(fake, 250, 130)
    clock.advance(minutes=1)
    export_pages: list[str] = []

    def stall(request: str) -> None:
        if "IncludeLineItems>true" in request:
            export_pages.append(request)
        if len(export_pages) == 2:  # the Web Connector was slow: the iterator expired
            clock.advance(seconds=120)

    result = drive(engine, fake, before_page=stall)
    assert result.progress[-1] == 100 and result.progress == sorted(result.progress), result

    size = export_step.PAGE_SIZE
    invoices = [r for r in export_pages if "<InvoiceQueryRq" in r]
    receipts = [r for r in export_pages if "<SalesReceiptQueryRq" in r]
    # Its iterator expired after the first page: the Continue failed, and the invoice
    # query ran again from its start.
    assert len(invoices) == 2 + math.ceil(250 / size)
    assert len(receipts) == math.ceil(130 / size)
    assert all(f"<MaxReturned>{size}</MaxReturned>" in r for r in export_pages)
    assert [('iterator="Start"' in r) for r in invoices] == [True, False, True, False, False]
    assert 'iterator="Continue"' in receipts[1] and "iteratorID=" in receipts[1]
    assert "FromModifiedDate" not in "".join(export_pages), "the first export is a full one"
    state = last_run(store).export_state
    assert state is not None and state.restarts == 1 and not state.failed and state.finished
    rows = feed(store)
    assert len(rows) == 380 and [row["cursor"] for row in rows] == list(range(1, 381))
    assert {row["OrderNumber"] for row in rows} == {f"I{i}" for i in range(250)} | {
        f"R{i}" for i in range(130)
    }


def test_an_older_quickbooks_answers_without_what_its_version_lacks(
    store: Store, settings: Settings, clock: Clock
) -> None:
    """qbXML 5.0 has no Addr5 (6.0): the same sale reads one address line shorter."""
    found: dict[str, dict[str, Any]] = {}
    for version in ("13.0", "5.0"):
        company = f"acme{version[0]}"
        user = f"user{version[0]}"
        company_service.add_company(store, company, user, PASSWORD)
        company_service.set_company_setting(store, company, "export_transactions", "invoice")
        engine = RunEngine(store, settings, clock=clock)
        fake = quickbooks(clock=clock, max_version=version)
        address = {f"Addr{i}": f"Line {i}" for i in range(1, 6)} | {"City": "Town"}
        fake.add_sale(
            "Invoice", "Old Books", [SaleLine("WIDGET-RED", D(1), D(5))], ref_number="OB-1",
            bill_address=address,
        )  # fmt: skip
        result = run_once(engine, fake, user, PASSWORD)
        assert result.progress[-1] == 100, result
        assert last_run(store, company).qbxml_version == version
        (row,) = export_service.quickbooks_transactions(store, company, 0, 10)["rows"]
        found[version] = row
    assert found["13.0"]["billingAddress"] == {
        "fullName": "Line 1",
        "company": "Line 2",
        "address1": "Line 3",
        "address2": "Line 4, Line 5",
        "city": "Town",
    }
    assert found["5.0"]["billingAddress"]["address2"] == "Line 4"
    assert {
        k: v
        for k, v in found["5.0"].items()
        if k not in ("billingAddress", "qb_txn_id", "qb_time_modified", "updated_at")
    } == {
        k: v
        for k, v in found["13.0"].items()
        if k not in ("billingAddress", "qb_txn_id", "qb_time_modified", "updated_at")
    }


def test_a_full_export_when_asked_reads_everything_and_changes_nothing(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = utcnow()  # the command asks for an export due now, by the wall clock
    fake = quickbooks(clock=clock)
    counter_sale(fake, "F-1")
    counter_sale(fake, "F-2")
    run_once(engine, fake, USER, PASSWORD)
    before = feed(store)
    clock.advance(minutes=5)
    assert engine.authenticate(USER, PASSWORD).answer == "none"

    export_service.request_export(store, "acme", full=True)
    clock.advance(seconds=1)
    driven = drive(engine, fake)
    assert driven.progress[-1] == 100
    queries = [
        r for r in driven.requests if "IncludeLineItems>true" in r or "TxnDeletedQueryRq" in r
    ]
    assert queries and "FromModifiedDate" not in "".join(queries)
    assert "FromDeletedDate" not in "".join(queries)
    state = last_run(store).export_state
    assert state is not None and state.fetched == 2 and state.changed == 0
    assert feed(store) == before

    # Asked for without --full: only what changed since the last export, less the margin.
    export_service.request_export(store, "acme")
    clock.advance(seconds=1)
    driven = drive(engine, fake)
    assert "<FromModifiedDate>" in driven.requests[0] and "<FromDeletedDate>" in driven.requests[-1]


def test_no_export_without_the_setting(store: Store, settings: Settings, clock: Clock) -> None:
    company_service.add_company(store, "acme", USER, PASSWORD)
    engine = RunEngine(store, settings, clock=clock)
    fake = quickbooks(clock=clock)
    counter_sale(fake)
    run_once(engine, fake, USER, PASSWORD)  # the first inventory query
    assert export_requests(fake) == [] and feed(store) == []
    with pytest.raises(BridgeError, match="set export_transactions first"):
        export_service.request_export(store, "acme")
    clock.advance(minutes=5)
    assert engine.authenticate(USER, PASSWORD).answer == "none"


def test_an_export_that_fails_is_read_again_by_the_next(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    counter_sale(fake, "E-1")
    run_once(engine, fake, USER, PASSWORD)
    synced = last_run(store).export_state
    assert synced is not None
    clock.advance(minutes=61)
    fake.refuse("SalesReceiptQueryRq", 3180, "There was an error when saving a Sales Receipt.")
    failed = run_once(engine, fake, USER, PASSWORD)
    assert failed.progress[-1] == 100  # the other queries still ran
    state = last_run(store).export_state
    assert state is not None and state.failed and state.finished
    assert "export of QuickBooks transactions (sales receipt) failed" in (
        last_run(store).last_error or ""
    )
    del fake._refusals["SalesReceiptQueryRq"]
    clock.advance(minutes=61)
    run_once(engine, fake, USER, PASSWORD)
    again = last_run(store).export_state
    assert (
        again is not None
        and again.modified_from == synced.started_at - export_step.CLOCK_SKEW_MARGIN
    )


def test_a_page_lost_on_its_way_back_is_read_again(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    """The Web Connector asks for the next request without answering the last page: the
    iterator moved on inside QuickBooks, so the query starts again rather than skip it."""
    fake = quickbooks(clock=clock)
    many_sales(fake, 230, 0)
    clock.advance(minutes=1)
    fake.lose_response_when(lambda xml: 'iterator="Continue"' in xml)
    auth = engine.authenticate(USER, PASSWORD)
    fake.begin_session()
    hcp, sent, progress = fake.hcp_response(), [], []
    for _ in range(100):
        request = engine.next_request(auth.ticket, hcp, r"C:\Company\Sample.QBW", "US", 13, 0)
        hcp = ""
        if not request:
            break
        sent.append(request)
        try:
            response = fake.process(request)
        except ResponseLost:
            continue  # no receiveResponseXML: the next sendRequestXML comes at once
        progress.append(engine.record_response(auth.ticket, response, "", ""))
        if progress[-1] >= 100:
            break
    engine.close(auth.ticket)
    assert progress[-1] == 100
    invoices = [r for r in sent if "<InvoiceQueryRq" in r]
    assert [('iterator="Start"' in r) for r in invoices] == [True, False, True, False, False]
    rows = feed(store)
    assert len(rows) == 230 and [row["cursor"] for row in rows] == list(range(1, 231))


def test_a_run_that_never_comes_back_leaves_the_export_to_the_next(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    many_sales(fake, 150, 0)
    clock.advance(minutes=1)
    fake.lose_response_when(lambda xml: 'iterator="Continue"' in xml)
    assert run_once(engine, fake, USER, PASSWORD).lost
    half = feed(store)
    assert len(half) == export_step.PAGE_SIZE
    with store.transaction() as tx:  # the Web Connector never came back: the run expires
        tx.exec_driver_sql("UPDATE runs SET expires_at = created_at WHERE status = 'open'")
    clock.advance(minutes=1)
    again = run_once(engine, fake, USER, PASSWORD)
    assert again.progress[-1] == 100, again
    state = last_run(store).export_state
    assert state is not None and state.modified_from is None, "still the first, full pass"
    rows = feed(store)
    assert rows[: len(half)] == half and len(rows) == 150
