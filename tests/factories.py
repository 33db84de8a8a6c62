"""Plain builders of valid JMAUser order JSON (and Orders) for tests of every layer."""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.domain.orders import Order

CENT = Decimal("0.01")


class _Drop:
    """Pass as an override value to leave that key out of the order."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()

BILLING_ADDRESS: dict[str, Any] = {
    "firstName": "John",
    "lastName": "Smith",
    "company": "Smith Supplies",
    "address1": "12 Main Street",
    "address2": "Suite 4",
    "city": "Springfield",
    "regionName": "IL",
    "postalCode": "62701",
    "countryName": "United States",
    "twoLetterIsoCode": "US",
    "email": "john.smith@example.com",
    "phoneNumber": "+1 217 555 0100",
}

SHIPPING_ADDRESS: dict[str, Any] = {
    **BILLING_ADDRESS,
    "company": "",
    "address1": "40 Elm Road",
    "address2": "",
}


def make_line(**overrides: Any) -> dict[str, Any]:
    """One valid orderDetails element (WIDGET-RED, 2 x 12.50)."""
    line: dict[str, Any] = {
        "name": "Red widget",
        "sku": "WIDGET-RED",
        "quantity": 2,
        "priceExclTax": "12.50",
        "priceInclTax": "13.50",
    }
    return _apply(line, overrides)


def make_payment(**overrides: Any) -> dict[str, Any]:
    """One valid JMAPayment (10.00 by Visa)."""
    payment: dict[str, Any] = {
        "PaymentAmount": "10.00",
        "CreditCardName": "Visa",
        "PaymentDate": "2024-03-05",
        "ReferenceNumber": "PAY-1",
    }
    return _apply(payment, overrides)


def make_order_json(**overrides: Any) -> dict[str, Any]:
    """A valid JMAUser order; keyword arguments replace top-level keys (DROP removes one).

    Unless OrderTotal is overridden it is recomputed from the final lines, shipping, discount
    and tax, so overriding those keeps the order valid.
    """
    order: dict[str, Any] = {
        "OrderNumber": "1001",
        "OrderDate": "2024-03-05T10:15:00-05:00",
        "OrderType": 0,
        "CustomerName": "John Smith",
        "ChannelName": "Shopify",
        "billingAddress": copy.deepcopy(BILLING_ADDRESS),
        "shippingAddress": copy.deepcopy(SHIPPING_ADDRESS),
        "orderDetails": [
            make_line(),
            make_line(
                name="T-shirt",
                sku="TSHIRT-M",
                quantity=1,
                priceExclTax="20.00",
                priceInclTax=DROP,
                options=[{"name": "Size", "value": "M"}, {"name": "Colour", "value": "Blue"}],
            ),
        ],
        "ShippingMethod": "UPS Ground",
        "ShippingExclTax": "5.00",
        "discountExclTax": "2.00",
        "TotalTax": "3.60",
        "OrderTotal": "51.60",
        "creditCardName": "Visa",
        "Payments": [],
    }
    order = _apply(order, overrides)
    if "OrderTotal" not in overrides:
        total = computed_total(order)
        if total is not None:
            order["OrderTotal"] = str(total)
    return order


def make_order(**overrides: Any) -> Order:
    """The parsed Order of ``make_order_json(**overrides)``."""
    return parse_order(make_order_json(**overrides))


def computed_total(order: dict[str, Any]) -> Decimal | None:
    """Lines + shipping - discount + tax of order JSON, or None when a part is not a number."""
    try:
        lines = sum(
            (
                (_decimal(line["quantity"]) * _decimal(line["priceExclTax"])).quantize(CENT)
                for line in order["orderDetails"]
            ),
            Decimal("0"),
        )
        return (
            lines
            + _decimal(order.get("ShippingExclTax") or 0)
            - _decimal(order.get("discountExclTax") or 0)
            + _decimal(order["TotalTax"])
        )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None


def _decimal(value: Any) -> Decimal:
    if value is None or isinstance(value, bool | dict | list):
        raise TypeError(value)
    return Decimal(str(value))


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {key: value for key, value in merged.items() if value is not DROP}
