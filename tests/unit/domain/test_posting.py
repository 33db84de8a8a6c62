"""Mapping rules: what may be stored, how it is looked up, and the CSV import."""

from __future__ import annotations

import pytest
from factories import make_line, make_order

from qbwc_bridge.domain import mapping
from qbwc_bridge.domain.company import CompanySettings, InvalidSetting
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.posting import (
    InvalidMapping,
    MappingKind,
    MappingRule,
    Mappings,
    item_name_problem,
    make_rule,
    read_mapping_csv,
)


def test_rules_are_validated_and_folded() -> None:
    assert make_rule("SKU", " AMZ 1 ", "Widgets:Red") == MappingRule(
        MappingKind.SKU, "AMZ 1", "Widgets:Red"
    )
    assert make_rule("payment-method", "Visa", "Crédit Card").target == "Crédit Card"
    assert make_rule("txn-type", "eBay", " Sales_Receipt ").target == "sales_receipt"
    with pytest.raises(InvalidMapping, match="unknown mapping kind 'item'"):
        make_rule("item", "a", "b")
    with pytest.raises(InvalidMapping, match="ShipMethod has at most 15"):
        make_rule("shipping-method", "UPS Ground", "United Parcel Service Ground")
    with pytest.raises(InvalidMapping, match="non-empty TO"):
        make_rule("class", "Amazon", "  ")
    with pytest.raises(InvalidMapping, match="non-empty FROM"):
        make_rule("class", " ", "Online")
    with pytest.raises(InvalidMapping, match="invoice, sales_receipt, sales_order"):
        make_rule("txn-type", "eBay", "credit_memo")


def test_lookups_ignore_case_and_spacing() -> None:
    rules = Mappings.of(
        [
            make_rule("sku", "amz-red", "WIDGET-RED"),
            make_rule("shipping-method", "UPS  Ground", "UPS"),
            make_rule("class", "Amazon", "Online:Amazon"),
        ]
    )
    assert rules.item("AMZ-RED") == "WIDGET-RED"
    assert rules.item("OTHER") == "OTHER"
    assert rules.ship_method("ups ground") == "UPS"
    assert rules.ship_method("FedEx") == ""  # no mapping, no ShipMethodRef
    assert rules.class_name("amazon") == "Online:Amazon" and rules.class_name("eBay") == ""
    assert rules.payment_method("Visa") == "Visa"
    assert rules.sources_of(MappingKind.SKU, "widget-red") == ["amz-red"]


def test_the_mappings_shape_the_transaction() -> None:
    rules = Mappings.of(
        [
            make_rule("sku", "WIDGET-RED", "Widgets:Red"),
            make_rule("payment-method", "visa", "Credit Card"),
            make_rule("class", "Shopify", "Web"),
            make_rule("shipping-method", "UPS Ground", "UPS"),
            make_rule("txn-type", "Shopify", "sales_receipt"),
        ]
    )
    order = make_order()
    record = mapping.txn_record(order, CompanySettings(), rules)
    assert record.kind is TxnKind.SALES_RECEIPT
    assert record.lines[0].item == "Widgets:Red" and record.lines[1].item == "TSHIRT-M"
    assert (record.payment_method, record.class_ref, record.ship_method_ref) == (
        "Credit Card",
        "Web",
        "UPS",
    )
    assert {line.class_ref for line in record.lines} == {"Web"}
    plain = mapping.txn_record(order, CompanySettings())
    assert (plain.kind, plain.class_ref, plain.ship_method_ref) == (TxnKind.INVOICE, "", "")


def test_only_unmapped_skus_may_become_items() -> None:
    order = make_order(
        orderDetails=[make_line(sku="A"), make_line(sku="a", name="again"), make_line(sku="B")]
    )
    rules = Mappings.of([make_rule("sku", "B", "Bee")])
    (line,) = mapping.unmapped_items(order, rules)
    assert line.sku == "A"
    item = mapping.item_record(line, "Sales Income")
    assert (item.name, item.account, item.desc, item.price) == (
        "A",
        "Sales Income",
        "Red widget",
        line.price_excl_tax,
    )
    assert item_name_problem("X" * 31) is None
    assert "at most 31" in str(item_name_problem("X" * 32))
    assert "colon" in str(item_name_problem("A:B"))


def test_csv_import_is_all_or_nothing_with_line_numbers() -> None:
    good = "kind,from,to\nsku,AMZ-1,WIDGET-RED\n\npayment-method,visa,Credit Card\n"
    rules, problems = read_mapping_csv(good)
    assert not problems and [r.kind for r in rules] == [MappingKind.SKU, MappingKind.PAYMENT_METHOD]
    assert read_mapping_csv("sku,A,B\n")[0] == [MappingRule(MappingKind.SKU, "A", "B")]
    bad = (
        "kind,from,to\n"
        "sku,AMZ-1,WIDGET-RED\n"
        "colour,red,Red\n"
        "sku,amz-1,WIDGET-BLUE\n"
        "shipping-method,UPS Ground\n"
        'txn-type,"eBay, UK",refund\n'
    )
    rules, problems = read_mapping_csv(bad)
    assert [str(problem) for problem in problems] == [
        "line 3: unknown mapping kind 'colour': use one of sku, payment-method, "
        "shipping-method, class, txn-type",
        "line 4: sku 'amz-1' is mapped already on line 2",
        "line 5: 2 columns; a row has 3: kind, from, to",
        "line 6: a txn-type mapping names invoice, sales_receipt, sales_order, not 'refund'",
    ]


def test_posting_settings() -> None:
    settings = CompanySettings()
    assert (settings.posting, settings.timezone, settings.summary_delay_hours) == (
        "individual",
        "UTC",
        2,
    )
    assert settings.with_value("timezone", "Europe/Berlin").timezone == "Europe/Berlin"
    assert settings.with_value("posting", "Daily_Summary").posting == "daily_summary"
    assert settings.with_value("summary_customer", "").summary_customer == ""
    with pytest.raises(InvalidSetting, match="not a time zone name"):
        settings.with_value("timezone", "Mars/Olympus")
    with pytest.raises(InvalidSetting, match="posting must be one of individual, daily_summary"):
        settings.with_value("posting", "weekly")
