"""Any record the domain can produce becomes a valid, Windows-1252-safe message, and what
QuickBooks echoes back reads as what was sent."""

from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from qbxml_factories import CUSTOMERS, PAYMENTS, TXNS, txn
from qbxml_schema import qbxml_schema

from qbwc_bridge.domain.records import CustomerRecord, PaymentRecord, TxnRecord
from qbwc_bridge.domain.text import FIELD_LIMITS
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.build import Request
from qbwc_bridge.qbxml.responses import parse_response
from qbwc_bridge.qbxml.versions import QbxmlVersion
from qbwc_bridge.safexml import parse_xml

V13 = QbxmlVersion(13, 0)
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Limits that depend on the parent element rather than on the tag alone.
PATH_LIMITS = {
    ("CustomerRef", "FullName"): 209,
    ("EntityFilter", "FullName"): 209,
    ("CustomerQueryRq", "FullName"): 209,
    ("PaymentMethodRef", "FullName"): 31,
    ("ReceivePaymentAdd", "RefNumber"): 20,
    ("RefNumberFilter", "RefNumber"): 20,
}


def checked(request: Request, version: QbxmlVersion = V13, schema: str = "13.0") -> etree._Element:
    data = build.message([("1", request)], version)
    data.decode("utf-8").encode("cp1252")  # no character QuickBooks cannot store
    root = parse_xml(data)
    assert qbxml_schema(schema).validate(root.getroottree()), qbxml_schema(schema).error_log
    for element in root.iter():
        parent = element.getparent()
        key = (str(parent.tag) if parent is not None else "", str(element.tag))
        limit = PATH_LIMITS.get(key, FIELD_LIMITS.get(str(element.tag)))
        if limit is not None and element.text:
            assert len(element.text) <= limit, key
    return root


@PROPERTY_SETTINGS
@given(TXNS, st.sampled_from([("13.0", "13.0"), ("16.0", "16.0"), ("5.0", "12.0")]))
def test_any_transaction_builds_a_valid_message(rec: TxnRecord, versions: tuple[str, str]) -> None:
    version, schema = versions
    root = checked(build.txn_add(rec), QbxmlVersion.parse(version), schema)
    lines = root.findall(f".//{rec.kind.value}LineAdd")
    assert len(lines) == len(rec.lines)
    for line, element in zip(rec.lines, lines, strict=True):
        assert element.findtext("Amount") == build.format_amount(line.amount)
        assert (element.find("Quantity") is None) == (line.quantity is None)


@PROPERTY_SETTINGS
@given(CUSTOMERS)
def test_any_customer_builds_a_valid_message(rec: CustomerRecord) -> None:
    root = checked(build.customer_add(rec))
    assert root.findtext(".//CustomerAdd/Name")
    checked(build.customer_query(rec.name))


@PROPERTY_SETTINGS
@given(PAYMENTS)
def test_any_payment_builds_a_valid_message(rec: PaymentRecord) -> None:
    root = checked(build.payment_add(rec))
    assert root.findtext(".//TotalAmount") == build.format_amount(rec.total_amount)
    checked(build.payment_query(rec.customer_name, rec.ref_number, rec.txn_date))


def test_five_hundred_lines() -> None:
    root = checked(build.txn_add(txn(lines=499)))
    assert len(root.findall(".//InvoiceLineAdd")) == 500


# --- round trip ----------------------------------------------------------------------------


def echo(request_root: etree._Element, request_id: str, txn_id: str) -> bytes:
    """What QuickBooks answers to an add: the stored transaction, built from the request."""
    add = request_root.find("QBXMLMsgsRq/*/*")
    assert add is not None
    kind = str(add.tag).removesuffix("Add")
    response = etree.Element("QBXML")
    rs = etree.SubElement(
        etree.SubElement(response, "QBXMLMsgsRs"),
        f"{kind}AddRs",
        requestID=request_id,
        statusCode="0",
        statusSeverity="Info",
        statusMessage="Status OK",
    )
    ret = etree.SubElement(rs, f"{kind}Ret")
    for tag, text in [
        ("TxnID", txn_id),
        ("TimeCreated", "2024-05-01T10:00:00-05:00"),
        ("TimeModified", "2024-05-01T10:00:00-05:00"),
        ("EditSequence", "1714575600"),
    ]:
        etree.SubElement(ret, tag).text = text
    for child in add:
        if child.tag in {"CustomerRef", "TxnDate", "RefNumber", "PONumber"}:
            ret.append(copy.deepcopy(child))
    total = sum(
        (Decimal(amount.text or "0") for amount in add.iterfind(f"{kind}LineAdd/Amount")),
        Decimal("0"),
    )
    subtotal = etree.SubElement(ret, "Subtotal" if kind == "Invoice" else "TotalAmount")
    subtotal.text = build.format_amount(total)
    memo = add.find("Memo")
    if memo is not None:
        ret.append(copy.deepcopy(memo))
    return etree.tostring(response)


@PROPERTY_SETTINGS
@given(TXNS, st.text(min_size=1, max_size=20))
def test_round_trip_of_a_transaction(rec: TxnRecord, request_id: str) -> None:
    request_root = parse_xml(build.message([(request_id, build.txn_add(rec))], V13))
    sent = request_root.find("QBXMLMsgsRq/*")
    assert sent is not None
    [response] = parse_response(echo(request_root, sent.get("requestID", ""), "1A-123"))
    [record] = response.records
    assert response.request_id == sent.get("requestID")
    assert response.kind == rec.kind.value + "Add"
    assert record.txn_id == "1A-123" and record.txn_date == rec.txn_date
    assert record.customer_full_name == sent.findtext(".//CustomerRef/FullName")
    assert record.ref_number == (sent.findtext(".//RefNumber") or "")
    assert record.po_number == (sent.findtext(".//PONumber") or "")
    assert record.memo == (sent.findtext(".//Memo") or "")
    assert record.total_amount == sum(
        (Decimal(build.format_amount(line.amount)) for line in rec.lines), Decimal("0")
    )


def test_round_trip_of_a_real_shaped_invoice_validates_as_a_response() -> None:
    request_root = parse_xml(build.message([("r-1", build.txn_add(txn()))], V13))
    data = echo(request_root, "r-1", "C5-1417118624")
    assert qbxml_schema("13.0").validate(parse_xml(data).getroottree())
    [response] = parse_response(data)
    assert response.records[0].ref_number == "567-1234567"
    assert response.records[0].total_amount == Decimal("46.95")
