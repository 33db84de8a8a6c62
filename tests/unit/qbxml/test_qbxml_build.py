"""Built requests are what Intuit's schemas accept, in every version the bridge speaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree
from qbxml_factories import customer, payment, txn
from qbxml_schema import qbxml_schema

from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.records import TxnLine
from qbwc_bridge.errors import UnsupportedQuickBooks
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.build import Request
from qbwc_bridge.qbxml.versions import SUPPORTED, QbxmlVersion
from qbwc_bridge.safexml import parse_xml

V13 = QbxmlVersion(13, 0)


def every_request() -> list[Request]:
    return [
        build.customer_query("Doe, Jane"),
        build.customer_add(customer()),
        *(build.txn_query(kind, "567-1234567") for kind in TxnKind),
        *(build.txn_add(txn(kind)) for kind in TxnKind),
        build.payment_query("Doe, Jane", "ch_3PabcDEF", date(2024, 5, 2)),
        build.payment_query("Doe, Jane", "", date(2024, 5, 2)),
        build.payment_add(payment()),
        build.payment_add(payment(customer_list_id="80000013-1416570432")),
        build.payment_add(payment(applied_to_txn_id="")),
        build.inventory_query(
            max_returned=100,
            from_modified=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            iterator="Start",
            iterator_id=None,
        ),
        build.inventory_query(
            max_returned=100, from_modified=None, iterator="Continue", iterator_id="{abc-1}"
        ),
        build.inventory_query(
            max_returned=50, from_modified=None, iterator=None, iterator_id=None, assemblies=True
        ),
    ]


def parsed(message: bytes) -> etree._Element:
    return parse_xml(message)


def assert_valid(message: bytes, schema_version: str) -> None:
    schema = qbxml_schema(schema_version)
    tree = parsed(message).getroottree()
    assert schema.validate(tree), f"{schema.error_log}\n{message.decode()}"


@pytest.mark.parametrize("schema_version", ["12.0", "13.0", "16.0"])
def test_every_request_validates_against_intuits_schema(schema_version: str) -> None:
    version = QbxmlVersion.parse(schema_version)
    for request in every_request():
        assert_valid(build.message([("1", request)], version), schema_version)


@pytest.mark.parametrize("version", SUPPORTED, ids=str)
def test_every_supported_version_builds_valid_messages(version: QbxmlVersion) -> None:
    """Below 12.0 the 12.0 schema is a superset of what may be sent."""
    schema_version = "16.0" if version >= QbxmlVersion(16, 0) else "13.0"
    if version < QbxmlVersion(12, 0):
        schema_version = "12.0"
    requests = [(str(n), request) for n, request in enumerate(every_request())]
    assert_valid(build.message(requests, version), schema_version)


def test_older_versions_send_fewer_elements() -> None:
    invoice = build.txn_add(txn())
    new = parsed(build.message([("1", invoice)], V13))
    old = parsed(build.message([("1", invoice)], QbxmlVersion(5, 0)))
    assert new.findtext(".//BillAddress/Addr5") == "Building B"
    assert old.find(".//Addr5") is None
    assert old.findtext(".//BillAddress/Addr4") == "c/o Reception"
    new_tags = {element.tag for element in new.iter()}
    old_tags = {element.tag for element in old.iter()}
    assert old_tags == new_tags - {"Addr5"}


def test_iterator_attributes_need_qbxml_5() -> None:
    query = build.inventory_query(
        max_returned=100, from_modified=None, iterator="Continue", iterator_id="{it-1}"
    )
    new = parsed(build.message([("7", query)], V13)).find(".//ItemInventoryQueryRq")
    old = parsed(build.message([("7", query)], QbxmlVersion(4, 0))).find(".//ItemInventoryQueryRq")
    assert new is not None and old is not None
    assert (new.get("iterator"), new.get("iteratorID")) == ("Continue", "{it-1}")
    assert old.items() == [("requestID", "7")]
    assert old.findtext("MaxReturned") == "100"


def test_a_request_type_newer_than_the_version_is_refused() -> None:
    query = build.inventory_query(
        max_returned=1, from_modified=None, iterator=None, iterator_id=None, assemblies=True
    )
    with pytest.raises(UnsupportedQuickBooks, match=r"needs qbXML 2\.0"):
        build.message([("1", query)], QbxmlVersion(1, 1))


def test_message_header_request_ids_and_on_error() -> None:
    data = build.message(
        [("c-1", build.customer_query("A")), ("t-2", build.txn_query(TxnKind.INVOICE, "1"))],
        V13,
        on_error="stopOnError",
    )
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<?qbxml version="13.0"?>')
    root = parsed(data)
    messages = root.find("QBXMLMsgsRq")
    assert messages is not None and messages.get("onError") == "stopOnError"
    assert [(e.tag, e.get("requestID")) for e in messages] == [
        ("CustomerQueryRq", "c-1"),
        ("InvoiceQueryRq", "t-2"),
    ]
    assert b"minVersion" not in data and b"maxLength" not in data and b"repeat=" not in data


def test_on_error_must_be_a_qbxml_choice() -> None:
    with pytest.raises(ValueError, match="onError"):
        build.message([], V13, on_error="ignore")


def test_a_request_can_go_into_two_messages_unchanged() -> None:
    request = build.customer_query("Doe, Jane")
    first = build.message([("1", request)], V13)
    second = build.message([("2", request)], V13)
    assert first.replace(b'requestID="1"', b'requestID="2"') == second


def test_invoice_add_carries_the_order_in_schema_order() -> None:
    add = parsed(build.message([("1", build.txn_add(txn(lines=1)))], V13)).find(".//InvoiceAdd")
    assert add is not None
    assert [child.tag for child in add] == [
        "CustomerRef", "TxnDate", "RefNumber", "BillAddress", "ShipAddress", "PONumber", "Memo",
        "InvoiceLineAdd", "InvoiceLineAdd",
    ]  # fmt: skip
    first, shipping = add.findall("InvoiceLineAdd")
    assert [(c.tag, c.text) for c in first.iter() if c.text] == [
        ("FullName", "SKU-0"),
        ("Desc", "Shirt 0 (size M)"),
        ("Quantity", "2"),
        ("Rate", "10.50"),
        ("Amount", "21.00"),
    ]
    assert [c.tag for c in shipping] == ["ItemRef", "Desc", "Amount"]
    assert add.findtext("ShipMethodRef/FullName") is None


def test_sales_receipt_has_payment_method_and_no_po_number() -> None:
    add = parsed(build.message([("1", build.txn_add(txn(TxnKind.SALES_RECEIPT)))], V13))
    assert add.findtext(".//SalesReceiptAdd/PaymentMethodRef/FullName") == "Visa"
    assert add.find(".//PONumber") is None
    invoice = parsed(build.message([("1", build.txn_add(txn()))], V13))
    assert invoice.find(".//PaymentMethodRef") is None


def test_builder_cuts_records_to_each_elements_limit() -> None:
    long = replace(txn(), ref_number="ABCDEFGHIJKLMNOP", memo="x" * 5000)
    root = parsed(build.message([("1", build.txn_add(long))], V13))
    assert root.findtext(".//RefNumber") == "ABCDEFGHIJK"
    assert len(root.findtext(".//Memo") or "") == 4095


def test_builder_folds_the_strings_that_do_not_come_in_records() -> None:
    """Records hold QuickBooks text already (the mapping folded it, once); the names and
    references a query is asked with are folded here."""
    root = parsed(
        build.message(
            [
                ("1", build.customer_query("Nguyễn 😀 Łukasz")),
                ("2", build.payment_query("  Zoë 😀 ", "réf 😀", date(2024, 5, 2))),
                ("3", build.txn_query(TxnKind.INVOICE, "Đ-1")),
            ],
            V13,
        )
    )
    assert root.findtext(".//CustomerQueryRq/FullName") == "Nguyen  Lukasz"
    assert root.findtext(".//ReceivePaymentQueryRq//FullName") == "Zoë"
    assert root.findtext(".//ReceivePaymentQueryRq//RefNumber") == "réf"
    assert root.findtext(".//InvoiceQueryRq/RefNumber") == "D-1"


def test_txn_query_asks_by_ref_number_without_lines() -> None:
    for kind in TxnKind:
        rq = parsed(build.message([("1", build.txn_query(kind, "R-1"))], V13)).find(
            f".//{kind.value}QueryRq"
        )
        assert rq is not None
        assert [(c.tag, c.text) for c in rq] == [
            ("RefNumber", "R-1"),
            ("IncludeLineItems", "false"),
        ]


def test_adds_ask_quickbooks_to_return_only_what_the_engine_reads() -> None:
    """An InvoiceAdd answered in full is ~4 KB; the engine needs its TxnID and customer,
    and, for an undo, how QuickBooks stored it (EditSequence, TimeModified). (Duplicate
    checks are left whole: they mostly find nothing, so listing fields would only make the
    request bigger.)"""
    message = parsed(
        build.message([("1", build.txn_add(txn())), ("2", build.customer_add(customer()))], V13)
    )
    assert [e.text for e in message.iterfind(".//InvoiceAddRq/IncludeRetElement")] == [
        "TxnID", "RefNumber", "CustomerRef", "EditSequence", "TimeModified",
    ]  # fmt: skip
    assert [e.text for e in message.iterfind(".//CustomerAddRq/IncludeRetElement")] == [
        "ListID", "Name", "FullName",
    ]  # fmt: skip


def test_payment_query_filters_by_customer_and_reference_or_date() -> None:
    by_ref = parsed(
        build.message([("1", build.payment_query("Doe, Jane", "ch_1", date(2024, 5, 2)))], V13)
    ).find(".//ReceivePaymentQueryRq")
    by_date = parsed(
        build.message([("1", build.payment_query("Doe, Jane", "", date(2024, 5, 2)))], V13)
    ).find(".//ReceivePaymentQueryRq")
    assert by_ref is not None and by_date is not None
    assert [c.tag for c in by_ref] == ["EntityFilter", "RefNumberFilter", "IncludeLineItems"]
    assert by_ref.findtext("RefNumberFilter/MatchCriterion") == "StartsWith"
    assert by_ref.findtext("RefNumberFilter/RefNumber") == "ch_1"
    assert by_ref.findtext("IncludeLineItems") == "true"
    assert [c.tag for c in by_date] == ["TxnDateRangeFilter", "EntityFilter", "IncludeLineItems"]
    assert by_date.findtext("TxnDateRangeFilter/FromTxnDate") == "2024-05-02"
    assert by_date.findtext("TxnDateRangeFilter/ToTxnDate") == "2024-05-02"


def test_payment_add_prefers_the_customer_list_id() -> None:
    by_name = parsed(build.message([("1", build.payment_add(payment()))], V13))
    by_id = parsed(build.message([("1", build.payment_add(payment(customer_list_id="8-1")))], V13))
    assert by_name.findtext(".//CustomerRef/FullName") == "Doe, Jane"
    assert by_name.find(".//CustomerRef/ListID") is None
    assert by_id.findtext(".//CustomerRef/ListID") == "8-1"
    assert by_id.find(".//CustomerRef/FullName") is None
    applied = by_name.find(".//AppliedToTxnAdd")
    assert applied is not None
    assert [(c.tag, c.text) for c in applied] == [
        ("TxnID", "C5-1417118624"),
        ("PaymentAmount", "46.95"),
    ]
    assert by_name.findtext(".//TotalAmount") == "46.95"
    assert by_name.findtext(".//RefNumber") == "ch_3PabcDEF"


def test_inventory_query_sends_an_explicit_offset() -> None:
    since = datetime(2024, 3, 10, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
    query = build.inventory_query(
        max_returned=250, from_modified=since, iterator="Start", iterator_id=None
    )
    rq = parsed(build.message([("1", query)], V13)).find(".//ItemInventoryQueryRq")
    assert rq is not None
    assert rq.findtext("FromModifiedDate") == "2024-03-10T08:30:15-05:00"
    assert rq.findtext("MaxReturned") == "250"
    assert rq.get("iterator") == "Start" and rq.get("iteratorID") is None
    naive = build.format_datetime(datetime(2024, 3, 10, 8, 30))
    assert naive == "2024-03-10T08:30:00+00:00"


@pytest.mark.parametrize(
    ("value", "amount", "quantity", "rate"),
    [
        ("5", "5.00", "5", "5.00"),
        ("2.50", "2.50", "2.5", "2.50"),
        ("1.23456", "1.23", "1.23456", "1.23456"),
        ("0.005", "0.01", "0.005", "0.005"),
        ("-12.345", "-12.35", "-12.345", "-12.345"),
        ("-0.001", "0.00", "-0.001", "-0.001"),
        ("1E+2", "100.00", "100", "100.00"),
        ("3.1415926", "3.14", "3.14159", "3.14159"),
        ("0", "0.00", "0", "0.00"),
    ],
)
def test_number_formats(value: str, amount: str, quantity: str, rate: str) -> None:
    number = Decimal(value)
    assert (build.format_amount(number), build.format_quantity(number)) == (amount, quantity)
    assert build.format_rate(number) == rate


def test_numbers_beyond_the_schema_are_refused() -> None:
    with pytest.raises(ValueError, match="integer digits"):
        build.format_quantity(Decimal("12345678901"))
    with pytest.raises(ValueError, match="integer digits"):
        build.format_amount(Decimal("Infinity"))


def test_line_without_quantity_sends_amount_only() -> None:
    record = txn(lines=0)
    line = parsed(build.message([("1", build.txn_add(record))], V13)).find(".//InvoiceLineAdd")
    assert line is not None and [c.tag for c in line] == ["ItemRef", "Desc", "Amount"]
    only_quantity = TxnLine(item="X", amount=Decimal("3"), quantity=Decimal("3"))
    assert build._line(only_quantity) == {
        "item": "X",
        "desc": "",
        "amount": "3.00",
        "quantity": "3",
    }


def test_250_invoices_of_5_lines_make_one_message() -> None:
    """The largest batch fits one message (how fast it builds is `qbwc-bridge bench`'s job)."""
    requests = [(str(n), build.txn_add(txn(lines=4))) for n in range(250)]
    data = build.message(requests, V13)
    assert data.count(b"<InvoiceLineAdd>") == 1250
    assert data.count(b"<InvoiceAddRq ") == 250
