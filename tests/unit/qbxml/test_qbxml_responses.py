"""Every real QuickBooks response reads right; nothing else ever raises but MalformedQbxml."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import oracle_dir, require_oracle

from qbwc_bridge.errors import MalformedQbxml
from qbwc_bridge.qbxml.responses import QbResponse, parse_response


def sample(name: str) -> bytes:
    return require_oracle("qbxml-responses", name).read_bytes()


def every_sample() -> list[Path]:
    folder = oracle_dir() / "qbxml-responses"
    return sorted(folder.glob("*.xml")) if folder.is_dir() else []


def every_sample_or_the_folder() -> list[Path]:
    """The samples, or the missing folder itself: its test then skips as the others do."""
    return every_sample() or [oracle_dir() / "qbxml-responses"]


def test_the_oracle_has_the_samples_these_tests_name() -> None:
    require_oracle("qbxml-responses")
    assert len(every_sample()) >= 14


# --- one expectation per real file ---------------------------------------------------------


def test_invoice_add() -> None:
    [response] = parse_response(sample("InvoiceAddRs.flowlink-2014.xml"))
    assert (response.kind, response.request_id) == ("InvoiceAdd", "")
    assert (response.status.code, response.status.severity) == (0, "Info")
    [invoice] = response.records
    assert invoice.ret_kind == "InvoiceRet"
    assert invoice.txn_id == "C5-1417118624"
    assert invoice.ref_number == "R1TT46883"
    assert invoice.edit_sequence == "1417118624"
    assert invoice.txn_date == date(2014, 2, 3)
    assert (invoice.customer_list_id, invoice.customer_full_name) == (
        "80000013-1416570432",
        "spree@example.com",
    )
    assert invoice.total_amount == Decimal("206.00")  # Subtotal + SalesTaxTotal
    assert invoice.time_modified == "2014-11-27T18:03:44-02:00"
    assert invoice.po_number == "" and invoice.memo == "" and invoice.list_id == ""


def test_receive_payment_add() -> None:
    [response] = parse_response(sample("ReceivePaymentAddRs.flowlink-2014.xml"))
    assert response.request_id == "0bb737ee-2862-4ab7-8d35-f551f84793c9"
    [paid] = response.records
    assert (paid.ret_kind, paid.txn_id, paid.ref_number) == (
        "ReceivePaymentRet",
        "B7-1417040299",
        "R154817935",
    )
    assert paid.total_amount == Decimal("210.00")
    assert paid.txn_date == date(2014, 3, 2)
    assert paid.applied_to == ()


def test_inventory_query() -> None:
    [response] = parse_response(sample("ItemInventoryQueryRs.flowlink-2014.xml"))
    assert response.kind == "ItemInventoryQuery" and response.status.code == 0
    assert len(response.records) == 16
    assert response.iterator_id == "" and response.iterator_remaining is None
    by_name = {record.full_name: record for record in response.records}
    shirt = by_name["Haskell T-Shirt"]
    assert shirt.list_id == "80000004-1415047582"
    assert shirt.quantity_on_hand == Decimal("300")
    assert shirt.quantity_on_order == Decimal("0")
    assert shirt.quantity_on_sales_order == Decimal("0")
    assert shirt.is_active is True
    assert shirt.time_modified == "2014-11-10T22:22:56-03:00"
    assert by_name["12797"].quantity_on_hand == Decimal("0")


def test_mixed_batch_with_status_1_and_3140() -> None:
    responses = parse_response(
        sample(
            "ItemInventoryQueryRs-status1-x2+SalesOrderAddRs-ok+SalesOrderAddRs-3140.flowlink-2014.xml"
        )
    )
    assert [(r.kind, r.status.code, r.status.severity) for r in responses] == [
        ("ItemInventoryQuery", 1, "Info"),
        ("ItemInventoryQuery", 1, "Info"),
        ("SalesOrderAdd", 0, "Info"),
        ("SalesOrderAdd", 3140, "Error"),
    ]
    order = responses[2].records[0]
    assert (order.txn_id, order.ref_number, order.po_number) == (
        "4C-1415942229",
        "13",
        "R15408534641",
    )
    assert order.total_amount == Decimal("200.00")
    assert responses[3].records == ()
    assert '"nononononoImNotThereAlrightDylan"' in responses[3].status.message


def test_customer_add_and_query() -> None:
    [added] = parse_response(sample("CustomerAddRs.QBPro2006.consolibyte-2008.xml"))
    assert added.request_id == "Q3VzdG9tZXJBZGR8MTU="
    assert (added.records[0].list_id, added.records[0].name) == (
        "F0000-1215265593",
        "Shannon 171 Daniels",
    )
    [found] = parse_response(sample("CustomerQueryRs.consolibyte-2008.xml"))
    assert found.kind == "CustomerQuery"
    assert found.records[0].full_name == "ShannonAPI APIDaniels"
    assert found.records[0].customer_list_id == ""


def test_customer_batches_keep_request_ids() -> None:
    responses = parse_response(
        sample("CustomerAddRs-batch-mixed-3100-3250-3130.hotglue-qbwc-common-2026.xml")
    )
    assert [(r.request_id, r.status.code) for r in responses] == [
        ("ext-mix-1", 0),
        ("ext-mix-2", 3100),
        ("ext-mix-3", 3250),
        ("ext-mix-4", 3130),
        ("ext-mix-5", 0),
    ]
    assert responses[4].records[0].list_id == "8000274D-1785964190"
    valid = parse_response(sample("CustomerAddRs-batch-valid.hotglue-qbwc-common-2026.xml"))
    assert [r.records[0].list_id for r in valid][-1] == "8000274B-1785964187"
    assert valid[1].records[0].is_active is None


def test_errors_without_records() -> None:
    [not_found] = parse_response(sample("CustomerQueryRs-3120-object-not-found.qbwc-gem-test.xml"))
    [warn] = parse_response(sample("CustomerQueryRs-500-warn.qbwc-gem-test.xml"))
    [in_use] = parse_response(sample("ItemServiceAddRs-3100-name-in-use.consolibyte.xml"))
    assert (not_found.status.code, not_found.status.severity, not_found.request_id) == (
        3120,
        "Error",
        "",
    )
    assert (warn.status.code, warn.status.severity) == (500, "Warn")
    assert (in_use.kind, in_use.status.code) == ("ItemServiceAdd", 3100)
    assert in_use.status.message.startswith('The name "Shipping Item - QuickBooks Inte"')


def test_account_add_and_hcp_responses() -> None:
    [account] = parse_response(sample("AccountAddRs.hotglue-qbwc-common-2026.xml"))
    assert account.records[0].ret_kind == "AccountRet"
    hcp = parse_response(
        sample(
            "HostQueryRs+CompanyQueryRs+PreferencesQueryRs.strHCPResponse.QBPro2006.consolibyte-2008.xml"
        )
    )
    assert [(r.kind, r.request_id) for r in hcp] == [
        ("HostQuery", "0"),
        ("CompanyQuery", "1"),
        ("PreferencesQuery", "2"),
    ]


@pytest.mark.parametrize("path", every_sample_or_the_folder(), ids=lambda path: path.name[:60])
def test_every_sample_parses_as_bytes_and_as_text(path: Path) -> None:
    data = require_oracle("qbxml-responses", path.name).read_bytes()
    from_bytes = parse_response(data)
    assert from_bytes and from_bytes == parse_response(data.decode("utf-8"))


# --- iterators and synthesised edge cases --------------------------------------------------


def test_iterator_fields() -> None:
    data = (
        '<QBXML><QBXMLMsgsRs><ItemInventoryQueryRs requestID="9" statusCode="0" '
        'statusSeverity="Info" statusMessage="Status OK" retCount="1" '
        'iteratorRemainingCount="42" iteratorID="{ab-12}"><ItemInventoryRet>'
        "<ListID>1</ListID><FullName>A</FullName><IsActive>false</IsActive>"
        "<QuantityOnHand>-2.5</QuantityOnHand></ItemInventoryRet>"
        "</ItemInventoryQueryRs></QBXMLMsgsRs></QBXML>"
    )
    [response] = parse_response(data)
    assert (response.iterator_id, response.iterator_remaining) == ("{ab-12}", 42)
    assert response.records[0].is_active is False
    assert response.records[0].quantity_on_hand == Decimal("-2.5")


def test_applied_to_transactions() -> None:
    data = (
        '<QBXML><QBXMLMsgsRs><ReceivePaymentQueryRs statusCode="0" statusSeverity="Info">'
        "<ReceivePaymentRet><TxnID>P-1</TxnID><TotalAmount>30.00</TotalAmount>"
        "<AppliedToTxnRet><TxnID>I-1</TxnID><TxnType>Invoice</TxnType><Amount>10.00</Amount>"
        "</AppliedToTxnRet><AppliedToTxnRet><TxnID>I-2</TxnID><TxnType>Invoice</TxnType>"
        "<Amount>20.00</Amount></AppliedToTxnRet></ReceivePaymentRet>"
        "</ReceivePaymentQueryRs></QBXMLMsgsRs></QBXML>"
    )
    [response] = parse_response(data)
    assert response.records[0].applied_to == (("I-1", Decimal("10.00")), ("I-2", Decimal("20.00")))
    assert response.status.message == ""


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("<NotQBXML/>", "root element"),
        ("<QBXML><Other/></QBXML>", "QBXMLMsgsRs"),
        ("<QBXML><QBXMLMsgsRs><XRs statusSeverity='Info'/></QBXMLMsgsRs></QBXML>", "statusCode"),
        ("<QBXML><QBXMLMsgsRs><XRs statusCode='abc'/></QBXMLMsgsRs></QBXML>", "not an integer"),
        ("<QBXML><QBXMLMsgsRs><XRs statusCode='١'/></QBXMLMsgsRs></QBXML>", "not an integer"),
        (
            "<QBXML><QBXMLMsgsRs><XRs statusCode='0' iteratorRemainingCount='x'/>"
            "</QBXMLMsgsRs></QBXML>",
            "iteratorRemainingCount",
        ),
        (
            "<QBXML><QBXMLMsgsRs><XRs statusCode='0'><XRet><TxnDate>2014-13-45</TxnDate></XRet>"
            "</XRs></QBXMLMsgsRs></QBXML>",
            "not a date",
        ),
        (
            "<QBXML><QBXMLMsgsRs><XRs statusCode='0'><XRet><TotalAmount>NaN</TotalAmount></XRet>"
            "</XRs></QBXMLMsgsRs></QBXML>",
            "not a number",
        ),
        (
            "<QBXML><QBXMLMsgsRs><XRs statusCode='0'><XRet><Subtotal>1E999999999</Subtotal></XRet>"
            "</XRs></QBXMLMsgsRs></QBXML>",
            "not a number",
        ),
        ("", "Malformed"),
        ("not xml at all", "Malformed"),
        ("<QBXML>", "Malformed"),
        ("\ud800", "UTF-8"),
    ],
)
def test_malformed_responses_say_what_is_wrong(data: str, problem: str) -> None:
    with pytest.raises(MalformedQbxml, match=problem):
        parse_response(data)


HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE QBXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<QBXML><QBXMLMsgsRs><XRs statusCode='0' statusMessage='&x;'/></QBXMLMsgsRs></QBXML>",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;'
    b'&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><QBXML>&lol2;</QBXML>',
    b'<!DOCTYPE QBXML SYSTEM "http://example.com/qbxml.dtd"><QBXML/>',
    b"<QBXML>" + b"<a>" * 200 + b"</a>" * 200 + b"</QBXML>",
    b"<QBXML><QBXMLMsgsRs>" + b" " * (21 * 1024 * 1024) + b"</QBXMLMsgsRs></QBXML>",
    b"<QBXML>&undefined;</QBXML>",
    b"<?xml version='1.0' encoding='no-such-encoding'?><QBXML/>",
    b"<?xml version='1.0' encoding='utf-16'?><QBXML/>",
    b"\x00\xff\xfe<QBXML/>",
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedQbxml):
        parse_response(data)


# --- property tests ------------------------------------------------------------------------


def only_malformed(data: bytes | str) -> list[QbResponse] | None:
    try:
        return parse_response(data)
    except MalformedQbxml:
        return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_random_input_raises_nothing_but_malformed(data: bytes | str) -> None:
    only_malformed(data)


def mutations() -> st.SearchStrategy[bytes]:
    samples = [path.read_bytes() for path in every_sample()] or [b"<QBXML/>"]

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(1, 6))):
            position = draw(st.integers(0, max(len(data) - 1, 0)))
            action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
            if action == "flip" and data:
                data[position] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[position:]
            elif action == "insert":
                data[position:position] = draw(
                    st.sampled_from([b"<", b">", b"&", b'"', b"<x>", b"</QBXMLMsgsRs>", b"\xff"])
                )
            elif data:
                del data[position : position + draw(st.integers(1, 20))]
        return bytes(data)

    return mutated()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutated_real_responses_raise_nothing_but_malformed(data: bytes) -> None:
    only_malformed(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        ["statusCode", "TxnDate", "TotalAmount", "QuantityOnHand", "iteratorRemainingCount"]
    ),
    st.text(max_size=30),
)
def test_random_field_values_raise_nothing_but_malformed(field: str, value: str) -> None:
    from lxml import etree

    root = etree.Element("QBXML")
    rs = etree.SubElement(etree.SubElement(root, "QBXMLMsgsRs"), "InvoiceQueryRs", statusCode="0")
    ret = etree.SubElement(rs, "InvoiceRet")
    clean = "".join(c for c in value if c.isprintable())
    if field in {"statusCode", "iteratorRemainingCount"}:
        rs.set(field, clean)
    else:
        etree.SubElement(ret, field).text = clean
    only_malformed(etree.tostring(root))
