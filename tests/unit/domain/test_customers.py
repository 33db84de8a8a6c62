"""Customer matching strategies and CustomerAdd records (domain/customers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from factories import BILLING_ADDRESS, DROP, make_order
from hypothesis import given, settings
from strategies import order_json

from qbwc_bridge.domain.company import InvalidSetting
from qbwc_bridge.domain.customers import customer_name, customer_record, qb_address
from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.domain.orders import Address
from qbwc_bridge.domain.records import CustomerRecord, QbAddress
from qbwc_bridge.domain.text import FIELD_LIMITS

STRATEGIES = ("last_first", "first_last", "company", "email", "fixed:Walk-in Customer")


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("last_first", "Smith, John"),
        ("first_last", "John Smith"),
        ("company", "Smith Supplies"),
        ("email", "john.smith@example.com"),
        ("fixed:Walk-in Customer", "Walk-in Customer"),
    ],
)
def test_strategies(strategy: str, expected: str) -> None:
    order = make_order()
    assert customer_name(order, strategy) == expected
    assert customer_record(order, strategy).name == expected


def test_company_and_email_fall_back_to_last_first() -> None:
    order = make_order(billingAddress={**BILLING_ADDRESS, "company": " ", "email": ""})
    assert customer_name(order, "company") == "Smith, John"
    assert customer_name(order, "email") == "Smith, John"


def test_names_split_from_customer_name_without_billing_names() -> None:
    order = make_order(billingAddress=DROP, CustomerName="Mary Ann  van Dyke")
    assert customer_name(order, "last_first") == "Dyke, Mary Ann van"
    assert customer_name(order, "first_last") == "Mary Ann van Dyke"
    record = customer_record(order, "last_first")
    assert (record.first_name, record.last_name) == ("Mary Ann van", "Dyke")


def test_one_word_customer_name() -> None:
    order = make_order(billingAddress=DROP, CustomerName="Madonna")
    assert customer_name(order, "last_first") == "Madonna"
    assert customer_name(order, "first_last") == "Madonna"
    assert customer_record(order, "last_first").last_name == "Madonna"


def test_only_a_last_name_in_the_billing_address() -> None:
    order = make_order(billingAddress={"lastName": "Prince"}, CustomerName="Someone Else")
    assert customer_name(order, "last_first") == "Prince"


def test_names_are_folded_and_returning_customers_match() -> None:
    billing = {"firstName": "Văn An", "lastName": "Nguyễn"}
    first = make_order(billingAddress=billing)
    again = make_order(
        OrderNumber="2002", billingAddress={"firstName": "Văn An ", "lastName": "Nguyễn"}
    )
    assert customer_name(first, "last_first") == "Nguyen, Van An"
    assert customer_name(again, "last_first") == customer_name(first, "last_first")
    polish = make_order(billingAddress={"firstName": "Łukasz", "lastName": "Kowalski"})
    assert customer_name(polish, "first_last") == "Lukasz Kowalski"


def test_colons_never_reach_a_name() -> None:
    order = make_order(billingAddress={**BILLING_ADDRESS, "company": "Smith: Parts & Co"})
    assert customer_name(order, "company") == "Smith Parts & Co"
    assert customer_name(order, "fixed:Shop:Walk-in") == "Shop Walk-in"


def test_long_names_are_cut_and_kept_distinct() -> None:
    stem = "Internationale Handelsgesellschaft Nord"
    one = make_order(billingAddress={**BILLING_ADDRESS, "company": f"{stem} Hamburg GmbH"})
    two = make_order(billingAddress={**BILLING_ADDRESS, "company": f"{stem} Bremen GmbH"})
    name_one, name_two = customer_name(one, "company"), customer_name(two, "company")
    assert len(name_one) <= 41 and len(name_two) <= 41
    assert name_one != name_two
    assert customer_name(one, "company") == name_one


def test_name_without_any_storable_character_keeps_buyers_apart() -> None:
    """Never a shared constant: that would merge different buyers into one customer."""
    order = make_order(billingAddress=DROP, CustomerName="😀 🎉")
    other = make_order(billingAddress=DROP, CustomerName="🎉", OrderNumber="1002")
    assert customer_name(order, "last_first") == "Web order 1001"
    assert customer_name(other, "last_first") == "Web order 1002"
    with_email = make_order(
        billingAddress={**BILLING_ADDRESS, "firstName": "😀", "lastName": "🎉", "email": "z@x.io"},
        CustomerName="🎉",
    )
    assert customer_name(with_email, "last_first") == "z@x.io"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Ελένη", "Παπαδοπούλου", "Papadopoyloy, Eleni"),
        ("Иван", "Петров", "Petrov, Ivan"),
        ("小明", "王", "Wang, XiaoMing"),
        ("محمد", "علي", "`ly, mhmd"),
    ],
)
def test_names_in_other_scripts_are_transliterated_not_merged(
    first: str, last: str, expected: str
) -> None:
    order = make_order(billingAddress={**BILLING_ADDRESS, "firstName": first, "lastName": last})
    assert customer_name(order, "last_first") == expected
    assert customer_name(order, "last_first") == customer_name(order, "last_first")
    emoji_company = make_order(billingAddress={**BILLING_ADDRESS, "company": "🚀"})
    assert customer_name(emoji_company, "company") == "Smith, John"


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(InvalidSetting, match="customer_match"):
        customer_name(make_order(), "nickname")


def test_customer_record_fields() -> None:
    record = customer_record(make_order(), "last_first")
    assert record == CustomerRecord(
        name="Smith, John",
        company_name="Smith Supplies",
        first_name="John",
        last_name="Smith",
        bill_address=QbAddress(
            addr1="John Smith",
            addr2="Smith Supplies",
            addr3="12 Main Street",
            addr4="Suite 4",
            city="Springfield",
            state="IL",
            postal_code="62701",
            country="United States",
        ),
        ship_address=QbAddress(
            addr1="John Smith",
            addr2="40 Elm Road",
            city="Springfield",
            state="IL",
            postal_code="62701",
            country="United States",
        ),
        phone="+1 217 555 0100",
        email="john.smith@example.com",
    )


def test_fixed_customer_carries_no_single_buyers_details() -> None:
    record = customer_record(make_order(), "fixed:Walk-in Customer")
    assert record == CustomerRecord(name="Walk-in Customer")


def test_address_layout_and_limits() -> None:
    address = Address(
        full_name="Dr. Bartholomew Featherstonehaugh-Worthington III",
        address1="Flat 3\n The Old Rectory, Long Lane",
        city="Llanfairpwllgwyngyllgogerychwyrndrobwll",
        region_name="Isle of Anglesey County Borough",
        postal_code="LL61 5UJ ext 99999",
        two_letter_iso_code="GB",
    )
    block = qb_address(address)
    assert block.addr1 == "Dr. Bartholomew Featherstonehaugh-Worthin"
    assert block.addr2 == "Flat 3 The Old Rectory, Long Lane"
    assert (block.addr3, block.addr4) == ("", "")
    assert len(block.city) == 31 and len(block.state) <= 21 and len(block.postal_code) <= 13
    assert block.country == "GB"
    assert qb_address(Address()).is_empty()


def _limits_hold(record: CustomerRecord) -> None:
    limits = {
        "name": "Name",
        "company_name": "CompanyName",
        "first_name": "FirstName",
        "last_name": "LastName",
        "phone": "Phone",
        "email": "Email",
    }
    for attr, element in limits.items():
        value: str = getattr(record, attr)
        assert len(value) <= FIELD_LIMITS[element], attr
        value.encode("cp1252")
    for block in (record.bill_address, record.ship_address):
        for attr in ("addr1", "addr2", "addr3", "addr4", "addr5"):
            assert len(getattr(block, attr)) <= FIELD_LIMITS["Addr1"]
        for attr, element in (("city", "City"), ("state", "State"), ("country", "Country")):
            assert len(getattr(block, attr)) <= FIELD_LIMITS[element]
        assert len(block.postal_code) <= FIELD_LIMITS["PostalCode"]
        for value in vars_of(block):
            value.encode("cp1252")


def vars_of(block: QbAddress) -> list[str]:
    return [getattr(block, name) for name in QbAddress.__slots__]


@settings(max_examples=60, deadline=None)
@given(order_json(max_lines=3))
def test_every_strategy_gives_a_storable_name_and_record(raw: dict[str, Any]) -> None:
    order = parse_order(raw)
    for strategy in STRATEGIES:
        record = customer_record(order, strategy)
        assert record.name
        assert ":" not in record.name and len(record.name) <= 41
        assert record.name == customer_name(order, strategy)
        _limits_hold(record)


def test_emoji_only_name_parts_are_left_out() -> None:
    order = make_order(billingAddress={"firstName": "🎉", "lastName": "Okafor"})
    assert customer_name(order, "last_first") == "Okafor"
