"""Mappings, items the bridge adds, and undo, end to end through RunEngine and the stand-in
QuickBooks (which checks every request against Intuit's schema)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from enginedriver import quickbooks, run_once
from factories import make_line, make_order_json, make_payment
from sqlalchemy import select

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.company import InvalidSetting
from qbwc_bridge.domain.orders import UNPOST_REFUSED
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import posting as posting_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.store import Store, schema, utcnow

USER, PASSWORD = "acme-user", "acme-password"


@pytest.fixture
def engine(store: Store, settings: Settings) -> RunEngine:
    company_service.add_company(store, "acme", USER, PASSWORD)
    with store.transaction() as tx:  # these runs are about orders, not inventory
        company = store.companies.by_name(tx, "acme")
        store.companies.set_inventory_due_at(tx, company.id, utcnow() + timedelta(days=1))
    return RunEngine(store, settings)


def ticking_clock() -> Callable[[], datetime]:
    """QuickBooks' clock, a second further at every look: each save has its own
    TimeModified and EditSequence."""
    start = datetime(2024, 3, 6, 9, 0, tzinfo=UTC)
    ticks = itertools.count()
    return lambda: start + timedelta(seconds=next(ticks))


def fake_quickbooks(**options: object) -> FakeQuickBooks:
    return quickbooks(clock=ticking_clock(), **options)


def orders(store: Store) -> dict[str, dict[str, object]]:
    return {o["order_number"]: o for o in order_service.status(store, "acme")["orders"]}


def sent(store: Store) -> list[str]:
    """Every qbXML message the runs sent, in order."""
    with store.transaction() as tx:
        rows = tx.execute(select(schema.exchanges.c.request_xml).order_by(schema.exchanges.c.id))
        return list(rows.scalars())


def expire_open_run(store: Store) -> None:
    """The Web Connector never came back after a lost answer: its run expires."""
    with store.transaction() as tx:
        tx.exec_driver_sql("UPDATE runs SET expires_at = created_at WHERE status = 'open'")


def setting(store: Store, key: str, value: str) -> None:
    company_service.set_company_setting(store, "acme", key, value)


# --- mappings --------------------------------------------------------------------------


def test_a_sku_mapping_names_the_item_and_retry_fixes_a_missing_item(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order = make_order_json(OrderNumber="M1", orderDetails=[make_line(sku="amz-red-1")])
    order_service.enqueue(store, "acme", [order])
    run_once(engine, fake, USER, PASSWORD)
    error = str(orders(store)["M1"]["error"])
    assert "Item 'amz-red-1' does not exist in QuickBooks: create it or map the SKU" in error
    assert (
        "`qbwc-bridge map set --company acme sku amz-red-1 'QUICKBOOKS ITEM'`, then "
        "`qbwc-bridge retry --company acme M1`"
    ) in error
    assert not fake.invoices()

    posting_service.set_mapping(store, "acme", "sku", "AMZ-RED-1", "WIDGET-RED")
    assert order_service.retry(store, "acme", ["M1"]) == ["M1"]
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["M1"]["status"] == "synced"
    (invoice,) = fake.invoices()
    assert next(line.item for line in invoice.lines) == "WIDGET-RED"


def test_a_mapped_item_quickbooks_lacks_names_the_mapping(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    posting_service.set_mapping(store, "acme", "sku", "WIDGET-RED", "Widgets:Red")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="M2")])
    run_once(engine, fake, USER, PASSWORD)
    error = str(orders(store)["M2"]["error"])
    assert "SKU 'WIDGET-RED' is mapped to it" in error
    assert "map set --company acme sku WIDGET-RED 'QUICKBOOKS ITEM'" in error


def test_without_mappings_no_ship_method_or_class_is_sent(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="N1")])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["N1"]["status"] == "synced"
    text = "".join(sent(store))
    assert "ShipMethodRef" not in text and "ClassRef" not in text
    (invoice,) = fake.invoices()
    assert any(line.desc == "UPS Ground" for line in invoice.lines)  # in the Desc only


def test_class_and_ship_method_mappings_go_into_the_transaction(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    fake.add_class("Online:Shopify")
    fake.add_ship_method("UPS")
    posting_service.set_mapping(store, "acme", "class", "shopify", "Online:Shopify")
    posting_service.set_mapping(store, "acme", "shipping-method", "UPS Ground", "UPS")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="C1")])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["C1"]["status"] == "synced"
    (invoice,) = fake.invoices()
    fields = dict(invoice.fields)
    assert fields["ClassRef"] == (("FullName", "Online:Shopify"),)
    assert fields["ShipMethodRef"] == (("FullName", "UPS"),)
    assert all(dict(line.fields).get("ClassRef") for line in invoice.lines)


def test_a_class_quickbooks_lacks_fails_the_order_and_says_which_mapping(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    posting_service.set_mapping(store, "acme", "class", "Shopify", "Web Sales")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="C2")])
    run_once(engine, fake, USER, PASSWORD)
    error = str(orders(store)["C2"]["error"])
    assert error.startswith("QuickBooks error 3140: Class 'Web Sales' does not exist")
    assert "the channel 'Shopify' is mapped to it" in error
    assert "map set --company acme class Shopify 'QUICKBOOKS NAME'" in error
    fake.add_class("Web Sales")
    order_service.retry(store, "acme", ["C2"])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["C2"]["status"] == "synced"


def test_payment_method_mappings_apply_to_receipts_and_payments(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks(payment_methods=["Credit Card", "Cash"])
    posting_service.set_mapping(store, "acme", "payment-method", "visa", "Credit Card")
    receipt = make_order_json(OrderNumber="R1", OrderType=5, creditCardName="Visa")
    invoice = make_order_json(
        OrderNumber="I1",
        Payments=[make_payment(CreditCardName="VISA"), make_payment(CreditCardName="Bitcoin")],
    )
    order_service.enqueue(store, "acme", [receipt, invoice])
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    assert states["R1"]["status"] == "synced"
    (sales_receipt,) = fake.sales_receipts()
    assert dict(dict(sales_receipt.fields)["PaymentMethodRef"])["FullName"] == "Credit Card"
    payments = states["I1"]["payments"]
    assert [p["status"] for p in payments] == ["synced", "error"]  # type: ignore[index]
    assert fake.payments[0].payment_method == "Credit Card"
    error = payments[1]["error"]  # type: ignore[index]
    assert "map the card name 'Bitcoin'" in error
    assert "map set --company acme payment-method Bitcoin 'QUICKBOOKS NAME'" in error


def test_a_txn_type_mapping_decides_what_a_channels_orders_become(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="E1", ChannelName="eBay")])
    posting_service.set_mapping(store, "acme", "txn-type", "ebay", "sales_receipt")
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="E2", ChannelName="eBay")])
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    assert states["E1"]["txn_type"] == states["E2"]["txn_type"] == "SalesReceipt"
    assert sorted(r.ref_number or "" for r in fake.sales_receipts()) == ["E1", "E2"]
    assert not fake.invoices()


# --- items the bridge adds --------------------------------------------------------------


def test_missing_items_need_an_income_account_first(engine: RunEngine, store: Store) -> None:
    with pytest.raises(InvalidSetting, match="set income_account first"):
        setting(store, "create_missing_items", "non_inventory")
    setting(store, "income_account", "Sales Income")
    setting(store, "create_missing_items", "NON_INVENTORY")
    with pytest.raises(InvalidSetting, match="income_account"):
        setting(store, "income_account", "")
    with pytest.raises(InvalidSetting, match="create_missing_items must be one of"):
        setting(store, "create_missing_items", "service")


def _create_items(store: Store) -> None:
    setting(store, "income_account", "Sales Income")
    setting(store, "create_missing_items", "non_inventory")


def test_an_unknown_sku_is_added_once_before_the_transaction_that_needs_it(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    _create_items(store)
    new_line = make_line(sku="NEW-MUG", name="Blue mug", quantity=3, priceExclTax="7.25")
    first = make_order_json(
        OrderNumber="A1",
        CustomerName="First Buyer",
        billingAddress={"firstName": "First", "lastName": "Buyer"},
        orderDetails=[make_line(), new_line],
    )
    second = make_order_json(
        OrderNumber="A2",
        CustomerName="Second Buyer",
        billingAddress={"firstName": "Second", "lastName": "Buyer"},
        orderDetails=[new_line],
    )
    order_service.enqueue(store, "acme", [first, second])
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    assert states["A1"]["status"] == states["A2"]["status"] == "synced"
    assert fake.request_log.count("ItemNonInventoryAddRq") == 1
    item = fake.item("NEW-MUG")
    assert item is not None and item.stock.kind == "ItemNonInventory"
    assert (item.stock.sales_desc, item.stock.sales_price, item.stock.account) == (
        "Blue mug",
        Decimal("7.25"),
        "Sales Income",
    )
    messages = sent(store)
    adding = next(text for text in messages if "ItemNonInventoryAddRq" in text)
    assert adding.index("ItemNonInventoryAddRq") < adding.index("InvoiceAddRq")
    checks = [text for text in messages if "ItemQueryRq" in text]
    assert len(checks) == 1 and checks[0].count("<FullName>NEW-MUG</FullName>") == 1
    # a later order of that SKU finds it in QuickBooks
    third = make_order_json(OrderNumber="A3", orderDetails=[new_line])
    order_service.enqueue(store, "acme", [third])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["A3"]["status"] == "synced"
    assert fake.request_log.count("ItemNonInventoryAddRq") == 1


def test_an_item_add_whose_answer_was_lost_is_not_added_again(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    _create_items(store)
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="L1", orderDetails=[make_line(sku="LOST")])]
    )
    fake.lose_response_when(lambda request: "ItemNonInventoryAddRq" in request)
    assert run_once(engine, fake, USER, PASSWORD).lost
    expire_open_run(store)
    run_once(engine, fake, USER, PASSWORD)  # the next run finds the item and the invoice
    assert orders(store)["L1"]["status"] == "synced"
    assert fake.request_log.count("ItemNonInventoryAddRq") == 1
    assert len(fake.invoices()) == 1


def test_a_sku_too_long_for_an_item_name_says_to_map_it(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    _create_items(store)
    sku = "EXTREMELY-LONG-CHANNEL-SKU-0000001"
    order = make_order_json(OrderNumber="T1", orderDetails=[make_line(sku=sku)])
    order_service.enqueue(store, "acme", [order, make_order_json(OrderNumber="T2")])
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    error = str(states["T1"]["error"])
    assert f"SKU '{sku}' is not an item in QuickBooks" in error
    assert "at most 31" in error
    assert f"map set --company acme sku {sku} 'QUICKBOOKS ITEM'" in error
    assert states["T2"]["status"] == "synced"
    assert "ItemNonInventoryAddRq" not in fake.request_log
    posting_service.set_mapping(store, "acme", "sku", sku, "GADGET-PRO")
    order_service.retry(store, "acme", ["T1"])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["T1"]["status"] == "synced"


def test_a_refused_item_add_is_the_orders_error(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    _create_items(store)
    fake.refuse("ItemNonInventoryAddRq", 3260, "Insufficient permission level.")
    order_service.enqueue(
        store,
        "acme",
        [
            make_order_json(OrderNumber="P1", orderDetails=[make_line(sku="NOPE")]),
            make_order_json(OrderNumber="P2"),
        ],
    )
    run_once(engine, fake, USER, PASSWORD)
    states = orders(store)
    error = str(states["P1"]["error"])
    assert error.startswith("QuickBooks refused to add the item 'NOPE' for this order's SKU")
    assert "Insufficient permission level." in error
    assert states["P2"]["status"] == "synced"
    assert not [i for i in fake.invoices() if i.ref_number == "P1"]


def test_an_unknown_income_account_is_quickbooks_message(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    setting(store, "income_account", "No Such Account")
    setting(store, "create_missing_items", "non_inventory")
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="U1", orderDetails=[make_line(sku="ANEW")])]
    )
    run_once(engine, fake, USER, PASSWORD)
    error = str(orders(store)["U1"]["error"])
    assert "QuickBooks error 3140: Account 'No Such Account' does not exist" in error


# --- undo ------------------------------------------------------------------------------------


def _paid_invoice(number: str = "U1") -> dict[str, object]:
    return make_order_json(
        OrderNumber=number,
        Payments=[
            make_payment(PaymentAmount="20.00", ReferenceNumber=f"{number}-A"),
            make_payment(PaymentAmount="10.00", ReferenceNumber=f"{number}-B"),
        ],
    )


def test_unpost_deletes_the_payments_then_the_invoice_and_retry_adds_it_again(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [_paid_invoice(), make_order_json(OrderNumber="KEEP")])
    run_once(engine, fake, USER, PASSWORD)
    before = orders(store)["U1"]
    assert before["status"] == "synced" and len(fake.payments) == 2
    report = posting_service.unpost(store, "acme", ["U1"])
    assert report.queued == ["U1"] and not report.refused
    result = run_once(engine, fake, USER, PASSWORD)
    assert result.progress[-1] == 100, result
    after = orders(store)["U1"]
    assert after["status"] == "unposted" and after["qb_txn_id"] is None
    assert [p["status"] for p in after["payments"]] == ["unposted", "unposted"]  # type: ignore[attr-defined]
    assert [i.ref_number for i in fake.invoices()] == ["KEEP"]
    assert not fake.payments
    deletes = [text for text in sent(store) if "TxnDelRq" in text]
    assert [text.count("<TxnDelType>ReceivePayment</TxnDelType>") for text in deletes] == [2, 0]
    assert "<TxnDelType>Invoice</TxnDelType>" in deletes[1]
    assert [d.txn_id for d in fake.deleted_transactions] == [before["qb_txn_id"]]

    assert order_service.retry(store, "acme", ["U1"]) == ["U1"]
    run_once(engine, fake, USER, PASSWORD)
    again = orders(store)["U1"]
    assert again["status"] == "synced" and again["qb_txn_id"] != before["qb_txn_id"]
    assert [p["status"] for p in again["payments"]] == ["synced", "synced"]  # type: ignore[attr-defined]
    assert len(fake.payments) == 2 and len(fake.invoices()) == 2


def test_a_transaction_changed_in_quickbooks_is_not_unposted(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [_paid_invoice()])
    run_once(engine, fake, USER, PASSWORD)
    txn_id = str(orders(store)["U1"]["qb_txn_id"])
    fake.modify_transaction(txn_id, memo="Checked by Ann")
    posting_service.unpost(store, "acme", ["U1"])
    run_once(engine, fake, USER, PASSWORD)
    state = orders(store)["U1"]
    assert state["status"] == "error"
    error = str(state["error"])
    assert error.startswith("Not unposted, and nothing of it was deleted: Invoice U1")
    assert "was changed in QuickBooks" in error and "payment" not in error.split(".")[0]
    assert "--cancel" in error
    assert len(fake.payments) == 2 and len(fake.invoices()) == 1
    assert "TxnDelRq" not in fake.request_log
    with store.transaction() as tx:
        code = tx.execute(select(schema.orders.c.error_code)).scalar_one()
    assert code == UNPOST_REFUSED
    # the accountant keeps it after all
    assert posting_service.cancel_unpost(store, "acme", ["U1"]).queued == ["U1"]
    assert orders(store)["U1"]["status"] == "synced"


def test_a_payment_changed_in_quickbooks_keeps_the_whole_order(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [_paid_invoice()])
    run_once(engine, fake, USER, PASSWORD)
    fake.modify_payment(fake.payments[1].txn_id, memo="Bounced?")
    posting_service.unpost(store, "acme", ["U1"])
    run_once(engine, fake, USER, PASSWORD)
    error = str(orders(store)["U1"]["error"])
    assert "payment U1-B of 10.00" in error and "was changed in QuickBooks" in error
    assert len(fake.payments) == 2 and len(fake.invoices()) == 1


def test_a_transaction_deleted_by_hand_leaves_the_order_unposted_on_retry(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="H1")])
    run_once(engine, fake, USER, PASSWORD)
    txn_id = str(orders(store)["H1"]["qb_txn_id"])
    fake.modify_transaction(txn_id, memo="edited")
    posting_service.unpost(store, "acme", ["H1"])
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["H1"]["status"] == "error"
    fake.delete_transaction(txn_id)
    assert order_service.retry(store, "acme", ["H1"]) == ["H1"]  # tries the undo again
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["H1"]["status"] == "unposted"
    assert "TxnDelRq" not in fake.request_log  # nothing was left to delete


def test_a_refused_delete_is_the_orders_error(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="D1")])
    run_once(engine, fake, USER, PASSWORD)
    fake.refuse("TxnDelRq", 3260, "Insufficient permission level to perform this action.")
    posting_service.unpost(store, "acme", ["D1"])
    run_once(engine, fake, USER, PASSWORD)
    state = orders(store)["D1"]
    assert state["status"] == "error"
    assert str(state["error"]).startswith("QuickBooks refused to delete Invoice D1")
    assert "Insufficient permission level to perform this action." in str(state["error"])
    assert len(fake.invoices()) == 1


def test_a_sales_receipt_is_unposted_with_its_payments(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    receipt = make_order_json(OrderNumber="S1", OrderType=5, Payments=[make_payment()])
    order_service.enqueue(store, "acme", [receipt])
    run_once(engine, fake, USER, PASSWORD)
    posting_service.unpost(store, "acme", ["S1"])
    run_once(engine, fake, USER, PASSWORD)
    state = orders(store)["S1"]
    assert state["status"] == "unposted"
    assert [p["status"] for p in state["payments"]] == ["unposted"]  # type: ignore[attr-defined]
    assert not fake.sales_receipts()


def test_an_undo_whose_answer_was_lost_finishes_in_the_next_run(
    engine: RunEngine, store: Store
) -> None:
    fake = fake_quickbooks()
    order_service.enqueue(store, "acme", [_paid_invoice()])
    run_once(engine, fake, USER, PASSWORD)
    posting_service.unpost(store, "acme", ["U1"])
    fake.lose_response_when(lambda request: "<TxnDelType>ReceivePayment" in request)
    assert run_once(engine, fake, USER, PASSWORD).lost
    expire_open_run(store)
    run_once(engine, fake, USER, PASSWORD)
    state = orders(store)["U1"]
    assert state["status"] == "unposted"
    assert not fake.payments and not fake.invoices()


def test_only_what_the_bridge_added_can_be_unposted(engine: RunEngine, store: Store) -> None:
    fake = fake_quickbooks()
    fake.add_invoice("Smith, John", Decimal("51.60"), ref_number="1001", memo="Shopify order 1001")
    order_service.enqueue(
        store, "acme", [make_order_json(OrderNumber="1001"), make_order_json(OrderNumber="P9")]
    )
    run_once(engine, fake, USER, PASSWORD)
    assert orders(store)["1001"]["status"] == "duplicate"
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="W1")])
    report = posting_service.unpost(store, "acme", ["1001", "W1", "NOPE", "P9"])
    assert report.queued == ["P9"]
    assert "linked as a duplicate" in report.refused["1001"]
    assert "W1 is pending: nothing of it is in QuickBooks" in report.refused["W1"]
    assert "has no order NOPE" in report.refused["NOPE"]
    # an order waiting for its undo is not replaced by a changed re-send
    changed = make_order_json(OrderNumber="P9", TotalTax="9.99")
    assert order_service.enqueue(store, "acme", [changed]).conflicts == ["P9"]
