"""Orders to QuickBooks records, docs/order-format.md (domain/mapping.py)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from factories import DROP, make_line, make_order, make_payment
from hypothesis import HealthCheck, given, settings
from strategies import order_json

from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.domain.mapping import (
    payment_record,
    payments_apply,
    txn_kind,
    txn_record,
    txn_refs,
)
from qbwc_bridge.domain.orders import OrderType, TxnKind
from qbwc_bridge.domain.records import PaymentRecord, QbAddress, TxnLine, TxnRecord
from qbwc_bridge.domain.text import FIELD_LIMITS

DEFAULTS = CompanySettings()


@pytest.mark.parametrize(
    ("order_type", "txn_type", "expected"),
    [
        (OrderType.WEB_ORDER, "invoice", TxnKind.INVOICE),
        (OrderType.WEB_ORDER, "sales_receipt", TxnKind.SALES_RECEIPT),
        (OrderType.WEB_ORDER, "sales_order", TxnKind.SALES_ORDER),
        (OrderType.WEB_REFUND, "sales_receipt", TxnKind.CREDIT_MEMO),
        (OrderType.REFUND_RECEIPT, "invoice", TxnKind.CREDIT_MEMO),
        (OrderType.INVOICE, "sales_receipt", TxnKind.INVOICE),
        (OrderType.CREDIT_MEMO, "invoice", TxnKind.CREDIT_MEMO),
        (OrderType.SALES_ORDER, "invoice", TxnKind.SALES_ORDER),
        (OrderType.SALES_RECEIPT, "invoice", TxnKind.SALES_RECEIPT),
    ],
)
def test_txn_kind(order_type: OrderType, txn_type: str, expected: TxnKind) -> None:
    settings_ = CompanySettings(txn_type=txn_type)
    assert txn_kind(make_order(OrderType=int(order_type)), settings_) is expected


def test_only_invoices_take_payments() -> None:
    assert [kind for kind in TxnKind if payments_apply(kind)] == [TxnKind.INVOICE]


@pytest.mark.parametrize(
    ("number", "ref", "po"),
    [
        ("1001", "1001", ""),
        ("12345678901", "12345678901", ""),
        ("112-1234567-1234567", "567-1234567", "112-1234567-1234567"),
        ("ORDER-" + "9" * 30, "99999999999", "9" * 25),
        ("Đơn-12345678", "Don-12345678"[-11:], "Don-12345678"),
    ],
)
def test_ref_and_po_numbers(number: str, ref: str, po: str) -> None:
    assert txn_refs(number) == (ref, po)


def test_invoice_record() -> None:
    record = txn_record(make_order(), DEFAULTS)
    assert record == TxnRecord(
        kind=TxnKind.INVOICE,
        order_number="1001",
        customer_name="Smith, John",
        txn_date=date(2024, 3, 5),
        ref_number="1001",
        po_number="",
        memo="Shopify order 1001",
        lines=(
            TxnLine("WIDGET-RED", Decimal("25.00"), "Red widget", Decimal("2"), Decimal("12.50")),
            TxnLine(
                "TSHIRT-M",
                Decimal("20.00"),
                "T-shirt (Size: M, Colour: Blue)",
                Decimal("1"),
                Decimal("20.00"),
            ),
            TxnLine("Shipping", Decimal("5.00"), "UPS Ground"),
            TxnLine("Discount", Decimal("-2.00"), "Discount"),
            TxnLine("Sales Tax", Decimal("3.60"), "Sales tax"),
        ),
        bill_address=QbAddress(
            "John Smith",
            "Smith Supplies",
            "12 Main Street",
            "Suite 4",
            "",
            "Springfield",
            "IL",
            "62701",
            "United States",
        ),
        ship_address=QbAddress(
            "John Smith", "40 Elm Road", "", "", "", "Springfield", "IL", "62701", "United States"
        ),
        ship_method="UPS Ground",
        payment_method="",
    )
    assert record.total == Decimal("51.60")


def test_amazon_order_number_goes_whole_into_po_and_memo() -> None:
    record = txn_record(
        make_order(OrderNumber="112-1234567-1234567", ChannelName="Amazon"), DEFAULTS
    )
    assert (record.ref_number, record.po_number) == ("567-1234567", "112-1234567-1234567")
    assert record.memo == "Amazon order 112-1234567-1234567"
    assert record.order_number == "112-1234567-1234567"


def test_memo_without_channel() -> None:
    assert txn_record(make_order(ChannelName=DROP), DEFAULTS).memo == "Order 1001"


def test_settings_name_the_items_and_customer() -> None:
    settings_ = CompanySettings(
        shipping_item="Freight",
        discount_item="Promo",
        tax_item="VAT",
        customer_match="fixed:Walk-in",
    )
    record = txn_record(make_order(), settings_)
    assert [line.item for line in record.lines[2:]] == ["Freight", "Promo", "VAT"]
    assert record.customer_name == "Walk-in"


def test_zero_charges_make_no_lines() -> None:
    order = make_order(ShippingExclTax=DROP, discountExclTax="0.00", TotalTax="0")
    items = [line.item for line in txn_record(order, DEFAULTS).lines]
    assert items == ["WIDGET-RED", "TSHIRT-M"]


def test_tax_line_absorbs_the_cent_intake_allows() -> None:
    record = txn_record(make_order(OrderTotal="51.61"), DEFAULTS)
    assert record.lines[-1] == TxnLine("Sales Tax", Decimal("3.61"), "Sales tax")
    assert record.total == Decimal("51.61")


def test_line_amounts_are_rounded_to_the_cent() -> None:
    order = make_order(orderDetails=[make_line(quantity="3", priceExclTax="3.33")])
    line = txn_record(order, DEFAULTS).lines[0]
    assert (line.quantity, line.rate, line.amount) == (
        Decimal("3"),
        Decimal("3.33"),
        Decimal("9.99"),
    )


def test_description_options_without_name_or_value() -> None:
    options = [{"name": "Gift wrap"}, {"value": "Blue"}, {"name": " ", "value": ""}]
    order = make_order(orderDetails=[make_line(name="Mug", options=options)])
    assert txn_record(order, DEFAULTS).lines[0].desc == "Mug (Gift wrap, Blue)"


def test_sales_receipt_carries_the_payment_method() -> None:
    order = make_order(OrderType=5, creditCardName="American Express Corporate Gold Card")
    record = txn_record(order, DEFAULTS)
    assert record.kind is TxnKind.SALES_RECEIPT
    assert record.payment_method == "American Express Corporate Gold"
    assert txn_record(make_order(), DEFAULTS).payment_method == ""


def test_long_ship_method_and_sku_are_cut_and_folded() -> None:
    order = make_order(
        ShippingMethod="Royal Mail Special Delivery",
        orderDetails=[make_line(sku="SKU-Ş-" + "X" * 200)],
    )
    record = txn_record(order, DEFAULTS)
    assert record.ship_method == "Royal Mail Spec"
    assert record.lines[0].item == ("SKU-S-" + "X" * 200)[:159]


def test_payment_record() -> None:
    order = make_order(Payments=[make_payment(ReferenceNumber="REF-" + "7" * 30)])
    payment = order.payments[0]
    record = payment_record(
        order,
        payment,
        customer_name="Smith, John",
        applied_to_txn_id="12-345",
        customer_list_id="80-1",
    )
    assert record == PaymentRecord(
        customer_name="Smith, John",
        txn_date=date(2024, 3, 5),
        total_amount=Decimal("10.00"),
        applied_to_txn_id="12-345",
        ref_number=("REF-" + "7" * 30)[:20],
        payment_method="Visa",
        memo="Payment for Shopify order 1001",
        customer_list_id="80-1",
    )


def test_payment_customer_keeps_a_quickbooks_job_name() -> None:
    order = make_order(Payments=[make_payment()])
    record = payment_record(
        order, order.payments[0], customer_name="Smith, John:Kitchen", applied_to_txn_id="1-2"
    )
    assert record.customer_name == "Smith, John:Kitchen"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, tuple):
        return [s for item in value for s in _strings(item)]
    return []


ADDRESS_LIMITS = {
    "addr1": "Addr1",
    "addr2": "Addr2",
    "addr3": "Addr3",
    "addr4": "Addr4",
    "addr5": "Addr5",
    "city": "City",
    "state": "State",
    "postal_code": "PostalCode",
    "country": "Country",
}


def _assert_within_limits(record: TxnRecord) -> None:
    assert len(record.customer_name) <= FIELD_LIMITS["Name"] and ":" not in record.customer_name
    assert len(record.ref_number) <= FIELD_LIMITS["RefNumber"]
    assert len(record.po_number) <= FIELD_LIMITS["PONumber"]
    assert len(record.memo) <= FIELD_LIMITS["Memo"]
    assert len(record.ship_method) <= FIELD_LIMITS["ShipMethod"]
    assert len(record.payment_method) <= FIELD_LIMITS["PaymentMethod"]
    for block in (record.bill_address, record.ship_address):
        for attr, element in ADDRESS_LIMITS.items():
            assert len(getattr(block, attr)) <= FIELD_LIMITS[element]
    for line in record.lines:
        assert len(line.item) <= FIELD_LIMITS["FullName"]
        assert len(line.desc) <= FIELD_LIMITS["Desc"]
        assert line.amount == line.amount.quantize(Decimal("0.01"))
    # order_number is the queue's key, not sent to QuickBooks; everything else is.
    for text in _strings(dataclasses.replace(record, order_number="")):
        text.encode("cp1252")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_json(max_lines=500), order_json(max_lines=2))
def test_mapped_total_is_exactly_order_total_and_strings_fit(
    raw: dict[str, Any], other: dict[str, Any]
) -> None:
    order = parse_order(raw)
    for txn_type in ("invoice", "sales_receipt", "sales_order"):
        record = txn_record(order, CompanySettings(txn_type=txn_type))
        assert record.total == order.order_total
        _assert_within_limits(record)
    for payment in parse_order(other).payments + order.payments:
        paid = payment_record(order, payment, customer_name="X", applied_to_txn_id="1-1")
        assert paid.total_amount == payment.amount
        assert len(paid.ref_number) <= FIELD_LIMITS["PaymentRefNumber"]
        assert len(paid.payment_method) <= FIELD_LIMITS["PaymentMethod"]
        for text in _strings(paid):
            text.encode("cp1252")
