"""Inventory runs against the stand-in QuickBooks: product_updates ends with QuickBooks' numbers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from enginedriver import last_run, quickbooks, run_once
from factories import make_line, make_order_json
from oracle import require_oracle

from qbwc_bridge.config import Settings
from qbwc_bridge.engine import inventory as inventory_step
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock
from qbwc_bridge.store import Store, utcnow

USER, PASSWORD = "acme-user", "acme-password"
STOCKED = ("ItemInventory", "ItemInventoryAssembly")


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
    return Clock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))


@pytest.fixture
def engine(store: Store, settings: Settings, clock: Clock) -> RunEngine:
    company_service.add_company(store, "acme", USER, PASSWORD)
    return RunEngine(store, settings, clock=clock)


def seed(fake: FakeQuickBooks, count: int, *, prefix: str = "SKU") -> None:
    """``count`` stocked items: every 40th a sub-item (Parent:Child), every 60th an assembly."""
    for i in range(count):
        name, kind = f"{prefix}-{i:05d}", "ItemInventory"
        if i % 40 == 1:
            name = f"{prefix}-{i - 1:05d}:V{i:05d}"
        elif i % 60 == 2:
            kind = "ItemInventoryAssembly"
        fake.set_item(
            ItemStock(
                full_name=name,
                quantity_on_hand=Decimal(i % 101) + Decimal("0.5") * (i % 2),
                quantity_on_order=Decimal(i % 11),
                quantity_on_sales_order=Decimal(i % 5),
                kind=kind,  # type: ignore[arg-type]
            )
        )


def quickbooks_levels(fake: FakeQuickBooks) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {
        item.full_name: (
            item.stock.quantity_on_hand,
            item.stock.quantity_on_order,
            item.stock.quantity_on_sales_order,
        )
        for item in fake.items
        if item.stock.kind in STOCKED
    }


def table(store: Store) -> dict[str, dict[str, Any]]:
    rows = inventory_service.product_updates(store, "acme", 0, 10**7)["rows"]
    found = {row["sku"]: row for row in rows}
    assert len(found) == len(rows), "one row per SKU"
    return found


def levels(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {
        sku: (
            Decimal(row["quantity_on_hand"]),
            Decimal(row["quantity_on_order"]),
            Decimal(row["quantity_on_sales_order"]),
        )
        for sku, row in rows.items()
    }


def inventory_requests(fake: FakeQuickBooks) -> list[str]:
    return [r for r in fake.request_log if r.startswith("ItemInventory")]


def company_marks(store: Store) -> tuple[datetime | None, datetime | None]:
    with store.transaction() as tx:
        company = store.companies.by_name(tx, "acme")
        return (
            store.companies.inventory_synced_from(tx, company.id),
            store.companies.inventory_due_at(tx, company.id),
        )


def last_run_state(store: Store) -> dict[str, Any]:
    run = last_run(store)
    assert run.inventory_state is not None
    return {**dataclasses.asdict(run.inventory_state), "last_error": run.last_error}


@dataclass
class Driven:
    requests: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    last_error: str = ""


def drive(
    engine: RunEngine,
    fake: FakeQuickBooks,
    *,
    before_page: Callable[[int], None] = lambda page: None,
    answer: Callable[[str], str] | None = None,
) -> Driven:
    """One run like the Web Connector's, with a hook before each message reaches QuickBooks."""
    auth = engine.authenticate(USER, PASSWORD)
    assert auth.answer == "", auth
    fake.begin_session()
    driven, hcp = Driven(), fake.hcp_response()
    for page in range(1000):
        request = engine.next_request(auth.ticket, hcp, r"C:\Company\Sample.QBW", "US", 13, 0)
        hcp = ""
        if not request:
            break
        driven.requests.append(request)
        before_page(page)
        response = (answer or fake.process)(request)
        driven.progress.append(engine.record_response(auth.ticket, response, "", ""))
        if driven.progress[-1] < 0 or driven.progress[-1] >= 100:
            break
    driven.last_error = engine.last_error(auth.ticket)
    engine.close(auth.ticket)
    return driven


def test_ten_thousand_items_then_exactly_the_37_changed_ones(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = FakeQuickBooks(clock=clock)
    seed(fake, 10_250)
    stocked = quickbooks_levels(fake)
    assemblies = sum(1 for item in fake.items if item.stock.kind == "ItemInventoryAssembly")
    assert assemblies > 100 and any(":" in sku for sku in stocked)
    fake.set_item(ItemStock(full_name="Shipping", kind="ItemOtherCharge"))
    clock.advance(hours=3)

    # No order is queued, but the first inventory query is due: authenticate has work.
    first = drive(engine, fake)
    assert first.progress[-1] == 100 and first.progress == sorted(first.progress), first
    page = inventory_step.PAGE_SIZE
    item_pages = math.ceil((len(stocked) - assemblies) / page)
    assert len(first.requests) == item_pages + math.ceil(assemblies / page)
    assert len(inventory_requests(fake)) == len(first.requests)
    assert all(f"<MaxReturned>{page}</MaxReturned>" in r for r in first.requests)
    assert "FromModifiedDate" not in "".join(first.requests), "the first query is a full one"

    rows = table(store)
    assert levels(rows) == stocked  # sub-items and assemblies included, Shipping not
    assert sorted(row["cursor"] for row in rows.values()) == list(range(1, len(stocked) + 1))
    sample = fake.item("SKU-00040:V00041")
    assert sample is not None
    assert rows[sample.full_name]["qb_list_id"] == sample.list_id
    synced_from, due_at = company_marks(store)
    assert synced_from is not None and due_at == synced_from + timedelta(minutes=60)

    # Not due yet: nothing to do.
    clock.advance(minutes=30)
    assert engine.authenticate(USER, PASSWORD).answer == "none"

    # 37 items change in QuickBooks; 5 more are edited without a quantity change.
    clock.advance(minutes=31)
    changed = sorted(stocked)[100:137]
    for sku in changed:
        old = fake.item(sku)
        assert old is not None
        fake.set_item(
            ItemStock(
                full_name=sku,
                quantity_on_hand=old.stock.quantity_on_hand + 3,
                quantity_on_sales_order=old.stock.quantity_on_sales_order + 1,
                quantity_on_order=old.stock.quantity_on_order,
                kind=old.stock.kind,
            )
        )
    for sku in sorted(stocked)[500:505]:
        old = fake.item(sku)
        assert old is not None
        fake.set_item(old.stock)
    before = max(row["cursor"] for row in rows.values())

    second = drive(engine, fake)
    assert second.progress[-1] == 100, second
    assert len(second.requests) == 2, "one page of items, one of assemblies"
    state = last_run_state(store)
    assert state["fetched"] == 42 and state["changed"] == 37
    expected_from = synced_from - inventory_step.CLOCK_SKEW_MARGIN
    assert state["modified_from"] == expected_from
    assert all(
        f"<FromModifiedDate>{expected_from.strftime('%Y-%m-%dT%H:%M:%S')}+00:00" in r
        for r in second.requests
    )

    after = table(store)
    touched = {sku for sku, row in after.items() if row["cursor"] > before}
    assert touched == set(changed)
    assert sorted(after[sku]["cursor"] for sku in touched) == list(range(before + 1, before + 38))
    assert levels(after) == quickbooks_levels(fake)
    untouched = set(after) - touched
    assert all(after[sku] == rows[sku] for sku in untouched)


def test_inventory_follows_the_order_batch_in_the_same_run(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    orders = [
        make_order_json(OrderNumber=f"INV{i}", orderDetails=[make_line(quantity=2)])
        for i in range(3)
    ]
    order_service.enqueue(store, "acme", orders)
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100 and result.progress == sorted(result.progress), result
    log = list(fake.request_log)
    first_inventory = next(i for i, r in enumerate(log) if r.startswith("ItemInventory"))
    assert all(r.startswith("ItemInventory") for r in log[first_inventory:])
    assert sum(r.startswith("InvoiceAdd") for r in log[:first_inventory]) == 3
    # the order part of the run ends at 90 %: inventory pages fill the rest
    assert result.progress[result.exchanges - len(inventory_requests(fake)) - 1] == 90
    rows = table(store)
    assert rows["WIDGET-RED"]["quantity_on_hand"] == "94"  # 100 less the 3 sales of 2
    assert levels(rows) == quickbooks_levels(fake)


def test_on_demand_query_makes_authenticate_answer_work(store: Store, settings: Settings) -> None:
    clock = Clock(utcnow() + timedelta(seconds=1))
    company_service.add_company(store, "acme", USER, PASSWORD)
    engine = RunEngine(store, settings, clock=clock)
    fake = quickbooks(clock=clock)
    assert run_once(engine, fake, USER, PASSWORD).progress[-1] == 100
    clock.advance(minutes=1)
    assert engine.authenticate(USER, PASSWORD).answer == "none"
    inventory_service.request_inventory_now(store, "acme")
    clock.advance(seconds=1)
    sent_before = len(inventory_requests(fake))
    again = run_once(engine, fake, USER, PASSWORD)
    assert again.answer == "" and again.progress[-1] == 100
    assert len(inventory_requests(fake)) == sent_before + 2
    clock.advance(minutes=1)
    assert engine.authenticate(USER, PASSWORD).answer == "none"


def test_the_interval_is_the_company_setting(engine: RunEngine, store: Store, clock: Clock) -> None:
    company_service.set_company_setting(store, "acme", "inventory_every_minutes", "5")
    fake = quickbooks(clock=clock)
    run_once(engine, fake, USER, PASSWORD)
    clock.advance(minutes=4)
    assert engine.authenticate(USER, PASSWORD).answer == "none"
    clock.advance(minutes=2)
    assert run_once(engine, fake, USER, PASSWORD).answer == ""


def test_an_expired_iterator_starts_the_query_again(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = FakeQuickBooks(clock=clock, iterator_ttl_seconds=60)
    seed(fake, 1_800)

    def stall(page: int) -> None:
        if page == 2:  # the Web Connector was slow: the iterator expires in QuickBooks
            clock.advance(seconds=120)
            fake.set_item(ItemStock(full_name="SKU-00000", quantity_on_hand=Decimal(7)))

    driven = drive(engine, fake, before_page=stall)
    assert driven.progress[-1] == 100, driven
    assert driven.progress == sorted(driven.progress)
    state = last_run_state(store)
    assert state["restarts"] == 1 and not state["failed"]
    assert state["last_error"] in ("", None)
    starts = [r for r in driven.requests if 'iterator="Start"' in r]
    assert len(starts) == 3  # items, items again after the expiry, assemblies
    assert levels(table(store)) == quickbooks_levels(fake)
    assert table(store)["SKU-00000"]["quantity_on_hand"] == "7"
    assert company_marks(store)[0] is not None


def test_an_iterator_that_keeps_expiring_fails_without_moving_the_since_mark(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = FakeQuickBooks(clock=clock, iterator_ttl_seconds=60)
    seed(fake, 1_200)
    driven = drive(engine, fake, before_page=lambda page: clock.advance(seconds=90))
    assert driven.progress[-1] == 100
    state = last_run_state(store)
    assert state["failed"] and state["restarts"] == inventory_step.MAX_RESTARTS
    assert "3391" in driven.last_error and "inventory" in driven.last_error
    synced_from, due_at = company_marks(store)
    assert synced_from is None and due_at is not None
    # The next query is a full one again, and this time completes.
    clock.advance(minutes=61)
    sent_before = len(fake.request_log)
    again = drive(engine, fake)
    assert again.progress[-1] == 100 and not last_run_state(store)["failed"]
    assert "FromModifiedDate" not in "".join(again.requests)
    assert len(fake.request_log) > sent_before
    assert levels(table(store)) == quickbooks_levels(fake)


def test_nothing_changed_answers_status_1_and_touches_nothing(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    clock.advance(hours=1)
    run_once(engine, fake, USER, PASSWORD)
    before = table(store)
    first_mark = company_marks(store)[0]
    clock.advance(minutes=70)
    driven = drive(engine, fake)
    assert driven.progress == [94, 100]
    assert table(store) == before
    state = last_run_state(store)
    assert state["fetched"] == 0 and state["changed"] == 0 and not state["failed"]
    second_mark = company_marks(store)[0]
    assert first_mark is not None and second_mark == first_mark + timedelta(minutes=70)


def test_sales_in_quickbooks_show_up_at_the_daily_full_query(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)
    clock.advance(hours=1)
    run_once(engine, fake, USER, PASSWORD)
    sold = fake.item("GIZMO-XL")
    assert sold is not None
    # a sale in QuickBooks moves the quantity but leaves TimeModified alone
    fake.set_item(
        ItemStock("GIZMO-XL", quantity_on_hand=Decimal(60), time_modified=sold.time_modified)
    )
    clock.advance(minutes=61)
    drive(engine, fake)
    assert table(store)["GIZMO-XL"]["quantity_on_hand"] == "100"  # same day: incremental
    clock.now = clock.now.replace(hour=0, minute=5) + timedelta(days=1)
    full = drive(engine, fake)
    assert "FromModifiedDate" not in "".join(full.requests)
    assert table(store)["GIZMO-XL"]["quantity_on_hand"] == "60"
    assert last_run_state(store)["changed"] == 1


def test_an_edition_without_assemblies_is_not_an_error(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)

    def pro_edition(request: str) -> str:
        if "ItemInventoryAssemblyQueryRq" not in request:
            return fake.process(request)
        return (
            '<?xml version="1.0" ?><QBXML><QBXMLMsgsRs><ItemInventoryAssemblyQueryRs '
            'requestID="inv" statusCode="3250" statusSeverity="Error" statusMessage="This '
            'feature is not enabled or not available in this version of QuickBooks." />'
            "</QBXMLMsgsRs></QBXML>"
        )

    driven = drive(engine, fake, answer=pro_edition)
    assert driven.progress[-1] == 100
    assert not last_run_state(store)["failed"] and company_marks(store)[0] is not None
    assert levels(table(store)) == quickbooks_levels(fake)


def test_a_failed_item_query_is_reported_and_queried_in_full_again(
    engine: RunEngine, store: Store, clock: Clock
) -> None:
    fake = quickbooks(clock=clock)

    def broken(request: str) -> str:
        if "ItemInventoryQueryRq" not in request:
            return fake.process(request)
        return (
            '<?xml version="1.0" ?><QBXML><QBXMLMsgsRs><ItemInventoryQueryRs requestID="inv" '
            'statusCode="3250" statusSeverity="Error" statusMessage="This feature is not '
            'enabled or not available in this version of QuickBooks." /></QBXMLMsgsRs></QBXML>'
        )

    driven = drive(engine, fake, answer=broken)
    assert driven.progress[-1] == 100
    assert "3250" in driven.last_error and "Items & Inventory" in driven.last_error
    assert company_marks(store)[0] is None


@pytest.mark.oracle
def test_real_quickbooks_answers(engine: RunEngine, store: Store, clock: Clock) -> None:
    folder = require_oracle("qbxml-responses")
    full = (folder / "ItemInventoryQueryRs.flowlink-2014.xml").read_text()
    nothing = (
        folder / "ItemInventoryQueryRs-status1-x2+SalesOrderAddRs-ok+SalesOrderAddRs-3140"
        ".flowlink-2014.xml"
    ).read_text()
    # the recorded answers carry no requestID (their requests had none): still read
    status_1 = nothing.split("<SalesOrderAddRs")[0] + "</QBXMLMsgsRs></QBXML>"

    def recorded(request: str) -> str:
        return status_1 if "ItemInventoryAssemblyQueryRq" in request else full

    driven = drive(engine, FakeQuickBooks(clock=clock), answer=recorded)
    assert driven.progress == [94, 100], driven
    rows = table(store)
    assert len(rows) == 16
    shirt = rows["Haskell T-Shirt"]
    assert shirt["qb_list_id"] == "80000004-1415047582"
    assert (shirt["quantity_on_hand"], shirt["quantity_on_order"]) == ("300", "0")
    assert shirt["quantity_on_sales_order"] == "0"
    assert shirt["qb_time_modified"] == "2014-11-10T22:22:56-03:00"
    assert rows["12797"]["quantity_on_hand"] == "0"
    assert not last_run_state(store)["failed"]

    # the same answer again changes nothing; "no match" (statusCode 1) changes nothing either
    clock.advance(minutes=61)
    drive(engine, FakeQuickBooks(clock=clock), answer=recorded)
    clock.advance(minutes=61)
    drive(engine, FakeQuickBooks(clock=clock), answer=lambda request: status_1)
    assert table(store) == rows
