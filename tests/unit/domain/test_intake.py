"""JMAUser JSON to Order: every docs/order-format.md rule (domain/intake.py)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from factories import DROP, make_line, make_order, make_order_json, make_payment
from hypothesis import HealthCheck, given, settings
from strategies import order_json

from qbwc_bridge.domain.intake import (
    canonical_json,
    fingerprint_of,
    order_from_dict,
    order_to_dict,
    parse_date,
    parse_order,
    read_order,
)
from qbwc_bridge.domain.orders import Order, OrderType
from qbwc_bridge.errors import OrderRejected

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "orders"


def problems_of(raw: object) -> list[OrderRejected]:
    """Every problem of one decoded JSON order, as bulk intake reads them."""
    return read_order(raw)[1]


def fingerprint(order: Order) -> str:
    """What the queue compares a re-sent order by."""
    return fingerprint_of(canonical_json(order))


def rejection(raw: object) -> OrderRejected:
    with pytest.raises(OrderRejected) as caught:
        parse_order(raw)
    return caught.value


def assert_rejected(raw: object, order_number: str, field: str, problem: str) -> None:
    error = rejection(raw)
    assert (error.order_number, error.field) == (order_number, field)
    assert problem in error.problem


# --- a valid order -----------------------------------------------------------------------


def test_valid_order_is_parsed_exactly() -> None:
    order = make_order()
    assert order.order_number == "1001"
    assert order.order_date == date(2024, 3, 5)
    assert order.order_type is OrderType.WEB_ORDER
    assert order.customer_name == "John Smith"
    assert [line.sku for line in order.lines] == ["WIDGET-RED", "TSHIRT-M"]
    assert order.lines[0].quantity == 2 and order.lines[0].price_excl_tax == Decimal("12.50")
    assert order.lines[1].options[0].name == "Size" and order.lines[1].options[0].value == "M"
    assert order.shipping_excl_tax == Decimal("5.00")
    assert order.discount_excl_tax == Decimal("2.00")
    assert order.total_tax == Decimal("3.60")
    assert order.order_total == Decimal("51.60")
    assert order.billing_address.first_name == "John"
    assert order.shipping_address.address1 == "40 Elm Road"
    assert order.channel_name == "Shopify"
    assert problems_of(make_order_json()) == []


def test_keys_are_matched_case_insensitively_at_every_level() -> None:
    def recase(value: Any) -> Any:
        if isinstance(value, dict):
            return {key.upper(): recase(item) for key, item in value.items()}
        if isinstance(value, list):
            return [recase(item) for item in value]
        return value

    raw = make_order_json(Payments=[make_payment(PaymentAmount="5.00")])
    lowered = {key[:1].lower() + key[1:]: value for key, value in raw.items()}
    assert parse_order(recase(raw)) == parse_order(raw) == parse_order(lowered)
    assert parse_order(recase(raw)).payments[0].amount == Decimal("5.00")
    assert parse_order(recase(raw)).billing_address.city == "Springfield"


def test_same_key_twice_with_different_values_is_rejected() -> None:
    raw = make_order_json(orderNumber="2002")
    assert_rejected(raw, "1001", "orderNumber", "given twice")


def test_unknown_keys_are_ignored_and_strings_kept_as_sent() -> None:
    raw = make_order_json(CustomerName="Nguyễn 😀 <&>", SomethingNew={"x": 1})
    assert parse_order(raw).customer_name == "Nguyễn 😀 <&>"


def test_point_one_plus_point_two_is_exactly_point_three() -> None:
    lines = [make_line(quantity=1, priceExclTax=0.1), make_line(quantity=1, priceExclTax=0.2)]
    raw = make_order_json(
        orderDetails=lines,
        ShippingExclTax=DROP,
        discountExclTax=DROP,
        TotalTax=0,
        OrderTotal=0.3,
    )
    order = parse_order(raw)
    assert order.order_total == Decimal("0.30")
    assert order.computed_total == Decimal("0.30")
    assert isinstance(order.lines[0].price_excl_tax, Decimal)


def test_money_as_json_number_decoded_with_decimal() -> None:
    raw = json.loads(json.dumps(make_order_json()).replace('"51.60"', "51.60"), parse_float=Decimal)
    assert parse_order(raw).order_total == Decimal("51.60")


def test_trailing_zeros_beyond_cents_are_fine() -> None:
    assert make_order(TotalTax="3.6000").total_tax == Decimal("3.60")


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-05-09", date(2017, 5, 9)),
        ("2017-05-09T14:38:32", date(2017, 5, 9)),
        ("2017-05-09T23:38:32.123Z", date(2017, 5, 9)),
        ("2017-05-09T23:38:32-07:00", date(2017, 5, 9)),  # the date as written, not UTC's
        ("2017-05-09T00:30:00+02:00", date(2017, 5, 9)),
        ("2017-05-09 10:00:00", date(2017, 5, 9)),
        ("/Date(1494338312000)/", date(2017, 5, 9)),  # 2017-05-09T13:58:32Z
        ("/Date(1494338312000+1100)/", date(2017, 5, 10)),  # 00:58 next day in UTC+11
        ("/Date(1494288000000-0100)/", date(2017, 5, 8)),  # midnight UTC is 23:00 the day before
        ("/Date(-86400000)/", date(1969, 12, 31)),
    ],
)
def test_dates_in_iso_and_dotnet_form(text: str, expected: date) -> None:
    assert parse_date(text) == expected
    assert make_order(OrderDate=text).order_date == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "2017-13-01", "09/05/2017", "/Date(abc)/", "/Date(0+9960)/", ""]
)
def test_unreadable_dates_are_rejected(text: str) -> None:
    assert_rejected(make_order_json(OrderDate=text), "1001", "OrderDate", "")
    assert "date" in rejection(make_order_json(OrderDate=text)).problem.lower()


def test_order_date_is_required() -> None:
    assert_rejected(make_order_json(OrderDate=DROP), "1001", "OrderDate", "is required")


def test_order_date_of_wrong_type_is_rejected() -> None:
    assert_rejected(make_order_json(OrderDate=20170509), "1001", "OrderDate", "a date string")


# --- order-level rules -------------------------------------------------------------------


def test_order_number_is_required() -> None:
    assert_rejected(make_order_json(OrderNumber=DROP), "", "OrderNumber", "is required")


def test_order_number_must_not_be_blank() -> None:
    assert_rejected(make_order_json(OrderNumber="  "), "  ", "OrderNumber", "must not be empty")


def test_order_number_at_most_100_characters() -> None:
    number = "N" * 101
    named = "N" * 100 + "..."
    assert_rejected(make_order_json(OrderNumber=number), named, "OrderNumber", "at most 100")
    assert make_order(OrderNumber="N" * 100).order_number == "N" * 100


def test_order_number_without_control_characters() -> None:
    assert_rejected(
        make_order_json(OrderNumber="10\n01"), "10\n01", "OrderNumber", "control characters"
    )


def test_numeric_order_number_is_taken_as_text() -> None:
    assert make_order(OrderNumber=1001).order_number == "1001"


def test_order_number_of_wrong_type_is_rejected() -> None:
    assert_rejected(make_order_json(OrderNumber={"id": 1}), "", "OrderNumber", "a string")


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5, 6, "5"])
def test_order_type_codes(code: int | str) -> None:
    assert make_order(OrderType=code).order_type == OrderType(int(code))


def test_order_type_defaults_to_web_order() -> None:
    assert make_order(OrderType=DROP).order_type is OrderType.WEB_ORDER


@pytest.mark.parametrize("code", [7, -1, "refund", True, 1.5])
def test_order_type_outside_0_to_6_is_rejected(code: object) -> None:
    assert_rejected(make_order_json(OrderType=code), "1001", "OrderType", "must be one of 0")


def test_customer_name_is_required() -> None:
    assert_rejected(make_order_json(CustomerName=DROP), "1001", "CustomerName", "is required")
    assert_rejected(make_order_json(CustomerName=" "), "1001", "CustomerName", "not be empty")


def test_order_details_are_required() -> None:
    assert_rejected(make_order_json(orderDetails=DROP), "1001", "orderDetails", "is required")
    assert_rejected(make_order_json(orderDetails=[]), "1001", "orderDetails", "at least one")


def test_at_most_500_lines() -> None:
    lines = [make_line(quantity=1, priceExclTax="1.00")] * 501
    assert_rejected(make_order_json(orderDetails=lines), "1001", "orderDetails", "at most 500")
    assert len(make_order(orderDetails=lines[:500]).lines) == 500


def test_total_tax_is_required_and_not_negative() -> None:
    assert_rejected(
        make_order_json(TotalTax=DROP, OrderTotal="48.00"), "1001", "TotalTax", "is required"
    )
    assert_rejected(make_order_json(TotalTax="-1.00"), "1001", "TotalTax", "must not be negative")


def test_order_total_is_required() -> None:
    assert_rejected(make_order_json(OrderTotal=DROP), "1001", "OrderTotal", "is required")


def test_order_total_must_match_the_computed_total() -> None:
    raw = make_order_json(
        orderDetails=[make_line(quantity=4, priceExclTax="25.00")],
        ShippingExclTax=DROP,
        discountExclTax=DROP,
        TotalTax="9.50",
        OrderTotal="110.00",
    )
    error = rejection(raw)
    assert (error.order_number, error.field) == ("1001", "OrderTotal")
    assert error.problem.startswith(
        "OrderTotal 110.00 does not match the computed total 109.50 (difference 0.50)"
    )


def test_order_total_within_a_cent_is_accepted() -> None:
    assert make_order(OrderTotal="51.61").order_total == Decimal("51.61")
    assert make_order(OrderTotal="51.59").order_total == Decimal("51.59")
    assert_rejected(make_order_json(OrderTotal="51.62"), "1001", "OrderTotal", "difference 0.02")


def test_discount_must_not_be_negative() -> None:
    assert_rejected(
        make_order_json(discountExclTax="-2.00"), "1001", "discountExclTax", "must not be negative"
    )


def test_shipping_must_not_be_negative() -> None:
    assert_rejected(
        make_order_json(ShippingExclTax="-5"), "1001", "ShippingExclTax", "must not be negative"
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "nan"])
def test_money_must_be_finite(value: str) -> None:
    assert_rejected(make_order_json(TotalTax=value), "1001", "TotalTax", "finite")


@pytest.mark.parametrize("value", [True, False, {"amount": 1}, [1], "$3.60", "3,60", ""])
def test_money_of_the_wrong_kind_is_rejected(value: object) -> None:
    assert_rejected(make_order_json(TotalTax=value), "1001", "TotalTax", "must be a number")


def test_money_with_more_than_two_decimal_places_is_rejected() -> None:
    assert_rejected(make_order_json(TotalTax="3.605"), "1001", "TotalTax", "more than 2 decimal")


def test_money_beyond_quickbooks_range_is_rejected() -> None:
    assert_rejected(make_order_json(TotalTax="1e400"), "1001", "TotalTax", "larger than")


def test_float_and_int_money_are_converted_through_their_text() -> None:
    order = make_order(TotalTax=3.6, ShippingExclTax=5)
    assert order.total_tax == Decimal("3.60")
    assert order.shipping_excl_tax == Decimal("5.00")


def test_address_of_wrong_type_is_rejected() -> None:
    assert_rejected(make_order_json(billingAddress="12 Main St"), "1001", "billingAddress", "")
    assert "JSON object" in rejection(make_order_json(shippingAddress=[1])).problem


def test_address_field_of_wrong_type_is_rejected() -> None:
    raw = make_order_json(billingAddress={"city": {"name": "Springfield"}})
    assert_rejected(raw, "1001", "billingAddress.city", "must be a string, not a JSON object")


def test_null_fields_count_as_absent() -> None:
    order = make_order(ShippingMethod=None, billingAddress=None, discountExclTax=None)
    assert order.shipping_method == ""
    assert order.billing_address.city == ""
    assert order.discount_excl_tax == 0


def test_order_that_is_not_an_object_is_rejected() -> None:
    for raw in ([1, 2], "order", 5, None):
        assert_rejected(raw, "", "order", "must be a JSON object")


# --- lines -------------------------------------------------------------------------------


def line_rejection(field: str, problem: str, **line: Any) -> None:
    raw = make_order_json(orderDetails=[make_line(), make_line(**line)])
    assert_rejected(raw, "1001", f"orderDetails[1].{field}", problem)


def test_line_sku_is_required() -> None:
    line_rejection("sku", "is required", sku=DROP)
    line_rejection("sku", "must not be empty", sku="")


def test_line_quantity_must_be_positive() -> None:
    line_rejection("quantity", "is required", quantity=DROP)
    line_rejection("quantity", "greater than 0", quantity=0)
    line_rejection("quantity", "OrderType 1", quantity=-2)


def test_line_quantity_may_be_fractional_to_five_places() -> None:
    order = make_order(orderDetails=[make_line(quantity="1.5", priceExclTax="2.00")])
    assert order.lines[0].quantity == Decimal("1.5")
    line_rejection("quantity", "more than 5 decimal places", quantity="1.000001")


def test_line_price_is_required_and_not_negative() -> None:
    line_rejection("priceExclTax", "is required", priceExclTax=DROP)
    line_rejection("priceExclTax", "must not be negative", priceExclTax="-1.00")
    line_rejection("priceExclTax", "must be a number", priceExclTax="free")


def test_line_that_is_not_an_object_is_rejected() -> None:
    raw = make_order_json(orderDetails=[make_line(), "WIDGET-RED"])
    assert_rejected(raw, "1001", "orderDetails[1]", "must be a JSON object, not a string")


def test_line_options_are_read() -> None:
    options = [{"NAME": "Engraving", "Value": "For Zoë ❤", "sku": "ENG", "quantity": 1}]
    order = make_order(orderDetails=[make_line(options=options)])
    option = order.lines[0].options[0]
    assert (option.name, option.value, option.sku, option.quantity) == (
        "Engraving",
        "For Zoë ❤",
        "ENG",
        Decimal("1"),
    )


def test_line_option_of_wrong_type_is_rejected() -> None:
    line_rejection("options[0].value", "must be a string", options=[{"name": "x", "value": []}])
    line_rejection("options", "must be a JSON array", options={"name": "x"})


# --- payments ----------------------------------------------------------------------------


def test_payments_are_read_with_their_dates() -> None:
    payments = [
        make_payment(PaymentAmount="30.00", CreditCardName="Cash", ReferenceNumber="R1"),
        make_payment(PaymentAmount="21.60", PaymentDate=DROP, ReferenceNumber="R1"),
    ]
    order = make_order(Payments=payments, OrderDate="2024-02-01")
    assert [payment.amount for payment in order.payments] == [Decimal("30.00"), Decimal("21.60")]
    assert order.payments[0].payment_date == date(2024, 3, 5)
    assert order.payments[1].payment_date == date(2024, 2, 1)  # default: the OrderDate
    assert order.payments[0].credit_card_name == "Cash"


def test_payment_amount_must_be_positive() -> None:
    for amount, problem in ((DROP, "is required"), ("0", "greater than 0"), ("-5", "than 0")):
        raw = make_order_json(Payments=[make_payment(PaymentAmount=amount)])
        assert_rejected(raw, "1001", "Payments[0].PaymentAmount", problem)


def test_payment_date_must_be_readable() -> None:
    raw = make_order_json(Payments=[make_payment(), make_payment(PaymentDate="soon")])
    assert_rejected(raw, "1001", "Payments[1].PaymentDate", "is not a date")


def test_payments_must_not_exceed_order_total() -> None:
    raw = make_order_json(
        orderDetails=[make_line(quantity=4, priceExclTax="25.00")],
        ShippingExclTax=DROP,
        discountExclTax=DROP,
        TotalTax="10.00",
        Payments=[make_payment(PaymentAmount="100.00"), make_payment(PaymentAmount="20.00")],
    )
    assert_rejected(raw, "1001", "Payments", "payments total 120.00 exceed OrderTotal 110.00")


def test_payments_may_exceed_order_total_by_a_cent() -> None:
    raw = make_order_json(Payments=[make_payment(PaymentAmount="51.61")])
    assert parse_order(raw).payments[0].amount == Decimal("51.61")


# --- every problem at once ---------------------------------------------------------------


def test_order_problems_lists_every_problem_and_parse_order_raises_the_first() -> None:
    raw = make_order_json(
        CustomerName=DROP,
        OrderType=9,
        orderDetails=[make_line(sku=DROP), make_line(quantity=-1)],
        Payments=[make_payment(PaymentAmount="x")],
    )
    problems = problems_of(raw)
    assert [problem.field for problem in problems] == [
        "OrderType",
        "CustomerName",
        "orderDetails[0].sku",
        "orderDetails[1].quantity",
        "Payments[0].PaymentAmount",
    ]
    assert all(problem.order_number == "1001" for problem in problems)
    assert rejection(raw).field == "OrderType"


def test_rejection_message_names_order_field_and_problem() -> None:
    error = rejection(make_order_json(OrderNumber="A-1", OrderDate="later"))
    assert str(error).startswith("order A-1: OrderDate: ")
    assert error.as_dict()["field"] == "OrderDate"


@settings(max_examples=40, deadline=None)
@given(st_value=order_json())
def test_hostile_values_never_crash(st_value: dict[str, Any]) -> None:
    for key in list(st_value):
        hostile_values: tuple[object, ...] = ({}, [], True, None, "x", -1, "1e999999", 10**5000)
        for hostile in hostile_values:
            problems_of({**st_value, key: hostile})


# --- canonical form ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_json(max_lines=500, vary_case=True))
def test_random_valid_orders_parse_and_round_trip(raw: dict[str, Any]) -> None:
    order = parse_order(raw)
    data = order_to_dict(order)
    assert order_from_dict(json.loads(json.dumps(data))) == order
    assert fingerprint(order_from_dict(data)) == fingerprint(order)


def test_canonical_dict_normalises_money_and_dates() -> None:
    data = order_to_dict(make_order(TotalTax=3.6, OrderDate="/Date(1709596800000)/"))
    assert data["total_tax"] == "3.60"
    assert data["order_date"] == "2024-03-05"
    assert data["lines"][0]["quantity"] == "2"
    assert data["order_type"] == 0


def test_fingerprint_tells_identical_from_changed() -> None:
    original = make_order()
    assert fingerprint(make_order()) == fingerprint(original)
    assert fingerprint(make_order(TotalTax="3.6")) == fingerprint(original)
    assert fingerprint(make_order(TotalTax="3.61")) != fingerprint(original)
    assert fingerprint(make_order(CustomerName="Jon Smith")) != fingerprint(original)
    assert len(fingerprint(original)) == 64


# --- fixtures ----------------------------------------------------------------------------


def load_fixture(name: str) -> list[Any]:
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        orders: list[Any] = json.load(handle, parse_float=Decimal)
    return orders


def test_every_sample_order_is_valid() -> None:
    orders = load_fixture("sample-orders.json")
    assert len(orders) >= 12
    parsed = [parse_order(raw) for raw in orders]
    numbers = [order.order_number for order in parsed]
    assert len(set(numbers)) == len(numbers)
    assert "112-1234567-1234567" in numbers
    assert {order.order_type for order in parsed} >= {
        OrderType.WEB_ORDER,
        OrderType.WEB_REFUND,
        OrderType.SALES_ORDER,
        OrderType.SALES_RECEIPT,
    }
    two_payments = [order for order in parsed if len(order.payments) == 2]
    assert [payment.amount for payment in two_payments[0].payments] == [
        Decimal("100.00"),
        Decimal("50.00"),
    ]
    known = {"WIDGET-RED", "WIDGET-BLUE", "GADGET-PRO", "GIZMO-XL"} | {
        "TSHIRT-M",
        "TSHIRT-L",
        "MUG-CLASSIC",
        "BOOK-QB101",
    }
    assert {line.sku for order in parsed for line in order.lines} <= known


def test_every_invalid_sample_order_is_rejected_for_its_reason() -> None:
    reasons = [
        (error.field, error.problem)
        for raw in load_fixture("invalid-orders.json")
        for error in problems_of(raw)[:1]
    ]
    assert [field for field, _ in reasons] == [
        "OrderNumber",
        "OrderTotal",
        "orderDetails[0].quantity",
    ]
    assert "difference" in reasons[1][1]


def test_optional_line_amounts_must_not_be_negative() -> None:
    line_rejection("priceInclTax", "must not be negative", priceInclTax="-1.00")
    line_rejection(
        "options[0].quantity", "must not be negative", options=[{"name": "x", "quantity": -1}]
    )


def test_numeric_strings_of_absurd_size_are_rejected_not_crashing() -> None:
    assert_rejected(make_order_json(TotalTax=10**5000), "1001", "TotalTax", "too many digits")
    assert_rejected(make_order_json(OrderNumber=10**5000), "", "OrderNumber", "must be a string")
