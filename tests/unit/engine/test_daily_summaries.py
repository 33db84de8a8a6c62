"""Daily summaries end to end: one sales receipt and one credit memo per day and channel,
posted once the day is over in the company's time zone, to the cent."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from enginedriver import quickbooks, run_once
from factories import make_line, make_order_json, make_payment

from qbwc_bridge.config import Settings
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import posting as posting_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.store import Store

USER, PASSWORD = "acme-user", "acme-password"
# 2024-03-09 ends in New York at 2024-03-10 00:00 EST (05:00 UTC); with the default delay of
# two hours its summaries are due at 07:00 UTC. 2024-03-10 is 23 hours long there (DST).
DUE = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(DUE - timedelta(minutes=1))


@pytest.fixture
def engine(store: Store, settings: Settings, clock: Clock) -> RunEngine:
    company_service.add_company(store, "acme", USER, PASSWORD)
    for key, value in (("posting", "daily_summary"), ("timezone", "America/New_York")):
        company_service.set_company_setting(store, "acme", key, value)
    with store.transaction() as tx:  # these runs are about orders, not inventory
        company = store.companies.by_name(tx, "acme")
        store.companies.set_inventory_due_at(tx, company.id, DUE + timedelta(days=3650))
    return RunEngine(store, settings, clock=clock)


def orders(store: Store) -> dict[str, dict[str, object]]:
    return {o["order_number"]: o for o in order_service.status(store, "acme")["orders"]}


def sale(
    number: str, channel: str, day: str = "2024-03-09", **overrides: object
) -> dict[str, object]:
    return make_order_json(
        OrderNumber=number,
        OrderDate=f"{day}T15:00:00-05:00",
        ChannelName=channel,
        CustomerName=f"Buyer {number}",
        billingAddress={"firstName": "Buyer", "lastName": number},
        **overrides,
    )


def fake_quickbooks() -> FakeQuickBooks:
    return quickbooks(payment_methods=["Visa", "Amex", "Credit Card"])


def test_a_day_is_posted_as_one_receipt_and_one_credit_memo_per_channel(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    batch = [
        sale("1001", "Amazon", Payments=[make_payment(PaymentAmount="10.00")]),
        sale(
            "1002",
            "Amazon",
            orderDetails=[make_line(quantity=3), make_line(sku="GADGET-PRO", priceExclTax="9.99")],
            ShippingExclTax="7.00",
            discountExclTax="1.50",
            TotalTax="4.44",
        ),
        sale("1003", "Amazon", OrderType=1, TotalTax="1.00"),
        sale("1004", "eBay", creditCardName="Amex"),
        sale("1005", "Amazon", day="2024-03-10"),  # its day is not over
    ]
    order_service.enqueue(store, "acme", batch)
    fake = fake_quickbooks()
    assert run_once(engine, fake, USER, PASSWORD).answer == "none"  # not yet: 06:59 UTC
    clock.now = DUE
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100, result
    states = orders(store)
    totals = {o["OrderNumber"]: Decimal(str(o["OrderTotal"])) for o in batch}

    receipts = {r.customer: r for r in fake.sales_receipts()}
    assert set(receipts) == {"Amazon Sales", "eBay Sales"}
    amazon = receipts["Amazon Sales"]
    assert amazon.total == totals["1001"] + totals["1002"]
    assert amazon.ref_number is not None and len(amazon.ref_number) == 11
    assert amazon.ref_number.startswith("S240309") and amazon.ref_number.endswith("0")
    assert amazon.memo == (
        f"Amazon daily summary {amazon.ref_number} of 2024-03-09: 2 orders, 1001 to 1002"
    )
    lines = {(line.item, line.rate): line for line in amazon.lines}
    assert lines[("WIDGET-RED", Decimal("12.50"))].quantity == 5  # 2 + 3
    assert lines[("TSHIRT-M", Decimal("20.00"))].quantity == 1
    assert lines[("GADGET-PRO", Decimal("9.99"))].quantity == 2
    shipping = [line.amount for line in amazon.lines if line.item == "Shipping"]
    assert shipping == [Decimal("12.00")]  # 5.00 + 7.00
    assert [line.amount for line in amazon.lines if line.item == "Discount"] == [Decimal("-3.50")]
    assert [line.amount for line in amazon.lines if line.item == "Sales Tax"] == [Decimal("8.04")]
    # both Amazon sales were paid by Visa, eBay's by Amex
    assert dict(dict(amazon.fields)["PaymentMethodRef"])["FullName"] == "Visa"
    assert dict(dict(receipts["eBay Sales"].fields)["PaymentMethodRef"])["FullName"] == "Amex"

    (refunds,) = fake.credit_memos()
    assert refunds.customer == "Amazon Sales" and refunds.total == totals["1003"]
    assert refunds.ref_number is not None and refunds.ref_number.startswith("R240309")

    for number, txn in (("1001", amazon), ("1002", amazon), ("1003", refunds)):
        assert states[number]["status"] == "summarized"
        assert states[number]["qb_txn_id"] == txn.txn_id
    assert states["1001"]["payments"][0]["status"] == "summarized"  # type: ignore[index]
    assert states["1005"]["status"] == "pending"
    assert not fake.invoices()
    summaries = posting_service.list_summaries(store, "acme")
    assert [(s.channel, s.kind, s.order_count, s.status) for s in summaries] == [
        ("Amazon", "credit_memo", 1, "synced"),
        ("Amazon", "sales_receipt", 2, "synced"),
        ("eBay", "sales_receipt", 1, "synced"),
    ]


def test_orders_for_a_day_already_posted_form_a_supplementary_summary(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = DUE
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [sale("2001", "Shopify"), sale("2002", "Shopify")])
    run_once(engine, fake, USER, PASSWORD)
    order_service.enqueue(store, "acme", [sale("2003", "Shopify")])
    clock.now = DUE + timedelta(hours=5)
    run_once(engine, fake, USER, PASSWORD)
    first, second = fake.sales_receipts()
    assert (first.ref_number or "")[:-1] == (second.ref_number or "")[:-1]
    assert (first.ref_number or "")[-1] == "0" and (second.ref_number or "")[-1] == "1"
    assert second.memo is not None and second.memo.startswith("Shopify supplementary summary")
    assert second.memo.endswith("1 order, 2003")
    assert orders(store)["2003"]["qb_txn_id"] == second.txn_id


def test_a_summary_whose_answer_was_lost_is_found_not_added_again(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = DUE
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [sale("3001", "Etsy"), sale("3002", "Etsy")])
    fake.lose_response_when(lambda request: "SalesReceiptAddRq" in request)
    assert run_once(engine, fake, USER, PASSWORD).lost
    clock.now += timedelta(hours=1)  # the Web Connector never came back: the run expires
    run_once(engine, fake, USER, PASSWORD)
    (receipt,) = fake.sales_receipts()
    states = orders(store)
    assert states["3001"]["status"] == states["3002"]["status"] == "summarized"
    assert states["3001"]["qb_txn_id"] == receipt.txn_id


def test_a_summary_error_names_the_summary_and_retry_posts_it(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = DUE
    fake = fake_quickbooks()
    order_service.enqueue(
        store,
        "acme",
        [sale("4001", "Amazon"), sale("4002", "Amazon", orderDetails=[make_line(sku="AMZ-9")])],
    )
    run_once(engine, fake, USER, PASSWORD)
    (summary,) = posting_service.list_summaries(store, "acme")
    assert summary.status == "error" and summary.error is not None
    assert "map set --company acme sku AMZ-9 'QUICKBOOKS ITEM'" in summary.error
    assert f"retry --company acme {summary.order_number}" in summary.error
    assert orders(store)["4001"]["status"] == "pending"  # waits in its summary
    posting_service.set_mapping(store, "acme", "sku", "AMZ-9", "GIZMO-XL")
    assert order_service.retry(store, "acme", [summary.order_number]) == [summary.order_number]
    run_once(engine, fake, USER, PASSWORD)
    (receipt,) = fake.sales_receipts()
    assert {line.item for line in receipt.lines} >= {"WIDGET-RED", "GIZMO-XL"}
    assert orders(store)["4002"]["status"] == "summarized"


@pytest.mark.parametrize(
    ("zone", "day", "due"),
    [
        # New York springs forward on 2024-03-10: that day ends at 04:00 UTC, not 05:00.
        ("America/New_York", "2024-03-10", datetime(2024, 3, 11, 6, 0, tzinfo=UTC)),
        # Berlin falls back on 2024-10-27: that day ends at 23:00 UTC.
        ("Europe/Berlin", "2024-10-27", datetime(2024, 10, 28, 1, 0, tzinfo=UTC)),
        ("UTC", "2024-10-27", datetime(2024, 10, 28, 2, 0, tzinfo=UTC)),
    ],
)
def test_a_day_is_over_at_midnight_in_the_company_time_zone(
    engine: RunEngine, store: Store, clock: Clock, zone: str, day: str, due: datetime
) -> None:
    company_service.set_company_setting(store, "acme", "timezone", zone)
    order_service.enqueue(store, "acme", [sale("5001", "Amazon", day=day)])
    fake = fake_quickbooks()
    clock.now = due - timedelta(seconds=1)
    assert run_once(engine, fake, USER, PASSWORD).answer == "none"
    clock.now = due
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["5001"]["status"] == "summarized"


def test_orders_queued_before_the_switch_still_post_on_their_own(
    store: Store, settings: Settings, clock: Clock
) -> None:
    """Summaries formed before the company switches back to individual posting are still
    posted; its later orders go one by one."""
    company_service.add_company(store, "acme", USER, PASSWORD)
    engine = RunEngine(store, settings, clock=clock)
    company_service.set_company_setting(store, "acme", "posting", "daily_summary")
    with store.transaction() as tx:
        company = store.companies.by_name(tx, "acme")
        store.companies.set_inventory_due_at(tx, company.id, DUE + timedelta(days=3650))
    order_service.enqueue(store, "acme", [sale("6001", "Amazon")])
    clock.now = DUE + timedelta(days=1)
    fake = fake_quickbooks()
    fake.lose_response_when(lambda request: "SalesReceiptAddRq" in request)
    assert run_once(engine, fake, USER, PASSWORD).lost
    clock.now += timedelta(hours=1)  # the Web Connector never came back: the run expires
    company_service.set_company_setting(store, "acme", "posting", "individual")
    order_service.enqueue(store, "acme", [sale("6002", "Amazon")])
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    assert states["6001"]["status"] == "summarized" and states["6002"]["status"] == "synced"
    assert len(fake.sales_receipts()) == 1 and len(fake.invoices()) == 1


def test_an_order_with_a_time_counts_for_its_day_in_the_company_time_zone(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    """03:00 UTC on the 10th is 22:00 on the 9th in New York: it is in the 9th's summary;
    a date without a time stays the day it names."""
    batch = [
        sale("7001", "Amazon"),
        make_order_json(OrderNumber="7002", OrderDate="2024-03-10T03:00:00Z", ChannelName="Amazon"),
        make_order_json(OrderNumber="7003", OrderDate="2024-03-10", ChannelName="Amazon"),
        make_order_json(OrderNumber="7004", OrderDate="2024-03-10T05:00:00Z", ChannelName="Amazon"),
    ]
    order_service.enqueue(store, "acme", batch)
    clock.now = DUE
    fake = fake_quickbooks()
    run_once(engine, fake, USER, PASSWORD)
    (receipt,) = fake.sales_receipts()
    assert receipt.memo is not None and receipt.memo.endswith(
        "of 2024-03-09: 2 orders, 7001 to 7002"
    )
    states = orders(store)
    assert states["7002"]["status"] == "summarized"
    assert states["7003"]["status"] == states["7004"]["status"] == "pending"
    # the 10th is over in New York at 04:00 UTC on the 11th (DST): due at 06:00
    clock.now = datetime(2024, 3, 11, 5, 59, tzinfo=UTC)
    assert run_once(engine, fake, USER, PASSWORD).answer == "none"
    clock.now = datetime(2024, 3, 11, 6, 0, tzinfo=UTC)
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["7004"]["status"] == "summarized"
    assert (fake.sales_receipts()[1].memo or "").endswith("of 2024-03-10: 2 orders, 7003 to 7004")


def test_unposting_a_summary_deletes_it_and_the_next_run_posts_a_new_one(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = DUE
    fake = fake_quickbooks()
    batch = [
        sale("8001", "Amazon", Payments=[make_payment(PaymentAmount="10.00")]),
        sale("8002", "Amazon"),
        sale("8003", "Amazon", OrderType=1),
    ]
    order_service.enqueue(store, "acme", batch)
    run_once(engine, fake, USER, PASSWORD)
    (first,) = fake.sales_receipts()
    (refunds,) = fake.credit_memos()
    sales = next(
        s for s in posting_service.list_summaries(store, "acme") if s.kind != "credit_memo"
    )

    # an order in it cannot go alone; the summary goes by its RefNumber (or order number)
    report = posting_service.unpost(store, "acme", ["8001", sales.ref_number])
    assert report.queued == [sales.ref_number]
    assert f"unpost {sales.order_number}" in report.refused["8001"]
    run_once(engine, fake, USER, PASSWORD)
    assert [gone.txn_id for gone in fake.deleted_transactions] == [first.txn_id]
    assert list(fake.credit_memos()) == [refunds]  # the refunds' summary is not touched
    states = orders(store)
    for number in ("8001", "8002"):
        assert states[number]["status"] == "pending" and states[number]["qb_txn_id"] is None
    assert states["8001"]["payments"][0]["status"] == "pending"  # type: ignore[index]
    assert states["8003"]["status"] == "summarized"
    listed = {s.order_number: s for s in posting_service.list_summaries(store, "acme")}
    assert listed[sales.order_number].status == "unposted"
    # an undone summary is not added again: its orders are in the queue
    assert order_service.retry(store, "acme", [sales.order_number]) == []
    assert (
        "unposted already"
        in posting_service.unpost(store, "acme", [sales.order_number]).refused[sales.order_number]
    )

    run_once(engine, fake, USER, PASSWORD)
    (second,) = fake.sales_receipts()
    assert second.txn_id != first.txn_id and second.total == first.total
    assert second.ref_number is not None and second.ref_number[:-1] == (first.ref_number or "")[:-1]
    assert second.memo == (
        f"Amazon daily summary {second.ref_number} of 2024-03-09: 2 orders, 8001 to 8002"
    )
    states = orders(store)
    assert states["8001"]["status"] == states["8002"]["status"] == "summarized"
    assert states["8001"]["qb_txn_id"] == second.txn_id
    assert states["8001"]["payments"][0]["status"] == "summarized"  # type: ignore[index]


def test_a_summary_changed_in_quickbooks_is_not_unposted(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    clock.now = DUE
    # QuickBooks' own clock a second further at every look: each save has its own EditSequence
    ticks = itertools.count()
    fake = quickbooks(payment_methods=["Visa"], clock=lambda: DUE + timedelta(seconds=next(ticks)))
    order_service.enqueue(store, "acme", [sale("9001", "eBay"), sale("9002", "eBay")])
    run_once(engine, fake, USER, PASSWORD)
    (receipt,) = fake.sales_receipts()
    (summary,) = posting_service.list_summaries(store, "acme")
    fake.modify_transaction(receipt.txn_id, memo="Reconciled by Ann")
    assert posting_service.unpost(store, "acme", [summary.order_number]).queued
    run_once(engine, fake, USER, PASSWORD)
    assert not fake.deleted_transactions
    (summary,) = posting_service.list_summaries(store, "acme")
    assert summary.status == "error" and summary.error is not None
    assert summary.error.startswith("Not unposted, and nothing of it was deleted")
    assert orders(store)["9001"]["status"] == "summarized"  # still in the summary
    # keep it after all
    assert posting_service.cancel_unpost(store, "acme", [summary.ref_number]).queued
    (summary,) = posting_service.list_summaries(store, "acme")
    assert summary.status == "synced"
