"""An order the bridge added, read back by the export, is the JMAUser order it came from, up
to what QuickBooks stores: text folded to Windows-1252 and cut to its limits, the RefNumber
cut to 11 characters, the customer as the bridge named it, the tax line that absorbs a cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import order_json

from qbwc_bridge.domain import customers, intake, mapping
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.exports import ORDER_TYPES, ChargeItems
from qbwc_bridge.domain.orders import Address, Order
from qbwc_bridge.domain.text import FIELD_LIMITS, fit
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.export import read_page
from qbwc_bridge.qbxml.responses import parse_response
from qbwc_bridge.qbxml.versions import QbxmlVersion
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock

V13 = QbxmlVersion(13, 0)
CHARGES = {
    "Shipping": "ItemOtherCharge",
    "Discount": "ItemDiscount",
    "Sales Tax": "ItemOtherCharge",
}


def read_back(order: Order, company: CompanySettings) -> dict[str, Any]:
    """Add the order to a fresh stand-in QuickBooks as the bridge does, then export it."""
    record = mapping.txn_record(order, company)
    fake = FakeQuickBooks()
    for name, kind in CHARGES.items():
        fake.set_item(ItemStock(full_name=name, kind=kind))  # type: ignore[arg-type]
    for line in record.lines:
        if line.item and fake.item(line.item) is None:
            fake.set_item(ItemStock(full_name=line.item, kind="ItemNonInventory"))
    fake.add_customer(record.customer_name)
    added = parse_response(
        fake.process(build.message([("1", build.txn_add(record))], V13).decode())
    )
    assert added[0].status.code == 0, added[0].status
    query = build.export_query(
        record.kind, max_returned=10, from_modified=None, iterator="Start", iterator_id=None
    )
    answer = fake.process(build.message([("exp", query)], V13).decode())
    (page,) = read_page(answer, ChargeItems.of(company))
    (txn,) = page.txns
    return txn.order


def as_address(found: dict[str, str]) -> Address:
    return Address(
        full_name=found.get("fullName", ""),
        company=found.get("company", ""),
        address1=found.get("address1", ""),
        address2=found.get("address2", ""),
        city=found.get("city", ""),
        region_name=found.get("regionName", ""),
        postal_code=found.get("postalCode", ""),
        country_name=found.get("countryName", ""),
    )


def sku(value: str) -> str:
    return fit(value, FIELD_LIMITS["FullName"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=order_json(max_lines=6),
    txn_type=st.sampled_from(("invoice", "sales_receipt", "sales_order")),
    match=st.sampled_from(("last_first", "first_last", "company", "email", "fixed:Web Sales")),
)
def test_an_added_order_reads_back_as_itself(
    raw: dict[str, Any], txn_type: str, match: str
) -> None:
    order = intake.parse_order(raw)
    company = CompanySettings(txn_type=txn_type, customer_match=match)
    charges = {name.casefold() for name in CHARGES}
    assume(all(sku(line.sku).casefold() not in charges for line in order.lines))
    found = read_back(order, company)

    ref_number = mapping.txn_refs(order.order_number).ref_number
    # A number with nothing QuickBooks can store (emoji alone) goes without a RefNumber, and
    # QuickBooks numbers the transaction itself.
    assert found["OrderNumber"] == ref_number or not ref_number
    assert found["OrderDate"] == order.order_date.isoformat()
    assert found["OrderType"] == ORDER_TYPES[mapping.txn_kind(order, company)]
    assert found["CustomerName"] == customers.customer_name(order, match)
    for key, sent in (
        ("billingAddress", order.billing_address),
        ("shippingAddress", order.shipping_address),
    ):
        # Mapped forward again, the address read back is the block QuickBooks holds.
        assert customers.qb_address(as_address(found[key])) == customers.qb_address(sent)

    # QuickBooks names an item once, whatever case a later line spells it in.
    first_spelling: dict[str, str] = {}
    for line in order.lines:
        first_spelling.setdefault(sku(line.sku).casefold(), sku(line.sku))
    expected = [
        (
            first_spelling[sku(line.sku).casefold()],
            mapping.line_description(line),
            line.quantity,
            line.price_excl_tax,
        )
        for line in order.lines
        if sku(line.sku) or line.amount  # a line with neither carries nothing back
    ]
    assert [
        (d["sku"], d["name"], Decimal(d["quantity"]), Decimal(d["priceExclTax"]))
        for d in found["orderDetails"]
    ] == expected

    lines_total = sum((line.amount for line in order.lines), Decimal(0))
    before_tax = lines_total + order.shipping_excl_tax - order.discount_excl_tax
    assert Decimal(found["ShippingExclTax"]) == order.shipping_excl_tax
    assert Decimal(found["discountExclTax"]) == order.discount_excl_tax
    assert Decimal(found["TotalTax"]) == order.order_total - before_tax  # within a cent of it
    assert abs(Decimal(found["TotalTax"]) - order.total_tax) <= Decimal("0.01") or (
        order.order_total == 0
    )
    assert Decimal(found["OrderTotal"]) == order.order_total
    method = fit(order.shipping_method, FIELD_LIMITS["Desc"]) if order.shipping_excl_tax else ""
    assert found.get("ShippingMethod", "") == ("" if method == "Shipping" else method)
