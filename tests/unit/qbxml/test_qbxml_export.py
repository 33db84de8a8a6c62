"""The export's queries are what Intuit's schemas accept, and its reader maps every Ret shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from qbxml_schema import SCHEMA_VERSIONS, qbxml_schema

from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.exports import ChargeItems
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.errors import MalformedQbxml
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.export import read_page
from qbwc_bridge.qbxml.versions import SUPPORTED, QbxmlVersion
from qbwc_bridge.safexml import parse_xml

ITEMS = ChargeItems.of(CompanySettings(shipping_item="Freight", tax_item="State Tax"))
SINCE = datetime(2026, 3, 2, 8, 50, tzinfo=UTC)


def export_requests() -> list[build.Request]:
    return [
        *(
            build.export_query(
                kind, max_returned=100, from_modified=SINCE, iterator="Start", iterator_id=None
            )
            for kind in TxnKind
        ),
        build.export_query(
            TxnKind.INVOICE,
            max_returned=100,
            from_modified=None,
            iterator="Continue",
            iterator_id="{6D0C1E84-0000-4B8E-9D6E-2B5F6C1A7B01}",
        ),
        build.deleted_query(list(TxnKind), SINCE),
        build.deleted_query([TxnKind.INVOICE], None),
    ]


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
def test_export_queries_are_valid_in_every_version(schema_version: str) -> None:
    schema = qbxml_schema(schema_version)
    for version in SUPPORTED:
        message = build.message([(str(i), r) for i, r in enumerate(export_requests())], version)
        assert schema.validate(parse_xml(message).getroottree()), (version, schema.error_log)


def test_an_export_page_asks_for_lines_by_modified_date_with_an_iterator() -> None:
    request = export_requests()[0]
    element = parse_xml(build.message([("exp", request)], QbxmlVersion(5, 0)))[0][0]
    assert element.tag == "InvoiceQueryRq" and element.get("iterator") == "Start"
    assert [(child.tag, child.findtext("FromModifiedDate") or child.text) for child in element] == [
        ("MaxReturned", "100"),
        ("ModifiedDateRangeFilter", "2026-03-02T08:50:00+00:00"),
        ("IncludeLineItems", "true"),
    ]
    deleted = parse_xml(build.message([("d", export_requests()[-2])], QbxmlVersion(13, 0)))[0][0]
    assert [e.text for e in deleted.iter("TxnDelType")] == [k.value for k in TxnKind]
    assert deleted.findtext("DeletedDateRangeFilter/FromDeletedDate") == "2026-03-02T08:50:00+00:00"
    with pytest.raises(ValueError):
        build.deleted_query([], None)


def page(*rets: str, kind: str = "InvoiceQuery", attributes: str = "") -> str:
    return (
        '<?xml version="1.0" ?><QBXML><QBXMLMsgsRs>'
        f'<{kind}Rs requestID="exp" statusCode="0" statusSeverity="Info" '
        f'statusMessage="Status OK" {attributes}>{"".join(rets)}</{kind}Rs>'
        "</QBXMLMsgsRs></QBXML>"
    )


SALES_ORDER = """
<SalesOrderRet>
  <TxnID>1F-1700000000</TxnID><TimeCreated>2026-03-01T10:00:00-05:00</TimeCreated>
  <TimeModified>2026-03-01T11:30:00-05:00</TimeModified><EditSequence>1700000001</EditSequence>
  <CustomerRef><ListID>80000001-1</ListID><FullName>Acme:Store 4</FullName></CustomerRef>
  <TxnDate>2026-03-01</TxnDate><RefNumber>SO-77</RefNumber>
  <BillAddress><Addr1>Acme Corp</Addr1><Addr2>PO Box 7</Addr2><City>Reno</City></BillAddress>
  <Subtotal>113.00</Subtotal><SalesTaxPercentage>0.00</SalesTaxPercentage>
  <SalesTaxTotal>4.25</SalesTaxTotal><TotalAmount>117.25</TotalAmount>
  <SalesOrderLineRet><TxnLineID>1</TxnLineID><ItemRef><FullName>Parts:Bolt</FullName></ItemRef>
    <Desc>Bolt M4</Desc><Quantity>40</Quantity><Rate>0.25</Rate><Amount>10.00</Amount></SalesOrderLineRet>
  <SalesOrderLineGroupRet><TxnLineID>2</TxnLineID><ItemGroupRef><FullName>Kit</FullName></ItemGroupRef>
    <SalesOrderLineRet><TxnLineID>3</TxnLineID><ItemRef><FullName>Kit:Frame</FullName></ItemRef>
      <Quantity>2</Quantity><Amount>90.00</Amount></SalesOrderLineRet>
  </SalesOrderLineGroupRet>
  <SalesOrderLineRet><TxnLineID>4</TxnLineID><Desc>Thank you!</Desc></SalesOrderLineRet>
  <SalesOrderLineRet><TxnLineID>5</TxnLineID><ItemRef><FullName>FREIGHT</FullName></ItemRef>
    <Desc>Shipping</Desc><Amount>15.00</Amount></SalesOrderLineRet>
  <SalesOrderLineRet><TxnLineID>6</TxnLineID><ItemRef><FullName>Promo</FullName></ItemRef>
    <RatePercent>-10.00</RatePercent><Amount>-2.00</Amount></SalesOrderLineRet>
  <SalesOrderLineRet><TxnLineID>7</TxnLineID><ItemRef><FullName>State Tax</FullName></ItemRef>
    <Amount>0.00</Amount></SalesOrderLineRet>
</SalesOrderRet>"""


def test_a_sales_order_with_a_group_a_note_a_percentage_and_charges() -> None:
    (answer,) = read_page(page(SALES_ORDER, kind="SalesOrderQuery"), ITEMS)
    (txn,) = answer.txns
    assert (txn.qb_txn_id, txn.kind, txn.qb_time_modified) == (
        "1F-1700000000", TxnKind.SALES_ORDER, "2026-03-01T11:30:00-05:00",
    )  # fmt: skip
    assert txn.order == {
        "OrderNumber": "SO-77",
        "OrderDate": "2026-03-01",
        "OrderType": 4,
        "CustomerName": "Acme:Store 4",
        "billingAddress": {"fullName": "Acme Corp", "address1": "PO Box 7", "city": "Reno"},
        "shippingAddress": {},
        "orderDetails": [
            {"sku": "Parts:Bolt", "name": "Bolt M4", "quantity": "40", "priceExclTax": "0.25"},
            {"sku": "Kit:Frame", "name": "", "quantity": "2", "priceExclTax": "45.00"},
            {"sku": "Promo", "name": "", "quantity": "1", "priceExclTax": "-2.00"},
        ],
        # The default shipping Desc names no method; tax is the line plus SalesTaxTotal.
        "ShippingExclTax": "15.00",
        "discountExclTax": "0.00",
        "TotalTax": "4.25",
        "OrderTotal": "117.25",
    }
    assert answer.response.status.code == 0 and answer.response.request_id == "exp"


def test_an_invoice_totals_without_total_amount_and_iterators_are_read() -> None:
    invoice = """<InvoiceRet><TxnID>9-1</TxnID><TimeModified>2026-03-01T00:00:00Z</TimeModified>
      <CustomerRef><FullName>Doe, Jane</FullName></CustomerRef><TxnDate>2026-02-28</TxnDate>
      <Subtotal>20.00</Subtotal><SalesTaxTotal>1.60</SalesTaxTotal>
      <InvoiceLineRet><ItemRef><FullName>Discount</FullName></ItemRef><Amount>-5.00</Amount></InvoiceLineRet>
      <InvoiceLineRet><Amount>25.00</Amount></InvoiceLineRet></InvoiceRet>"""
    attributes = 'iteratorRemainingCount="7" iteratorID="{it-1}"'
    (answer,) = read_page(page(invoice, attributes=attributes), ITEMS)
    assert (answer.response.iterator_id, answer.response.iterator_remaining) == ("{it-1}", 7)
    order = answer.txns[0].order
    assert order["OrderNumber"] == "" and order["OrderTotal"] == "21.60"
    assert order["discountExclTax"] == "5.00" and order["TotalTax"] == "1.60"
    assert order["orderDetails"] == [
        {"sku": "", "name": "", "quantity": "1", "priceExclTax": "25.00"}
    ]


def test_deletions_and_empty_answers() -> None:
    deleted = """<TxnDeletedRet><TxnDelType>CreditMemo</TxnDelType><TxnID>5-1</TxnID>
      <TimeCreated>2026-01-01T00:00:00Z</TimeCreated><TimeDeleted>2026-03-01T09:00:00Z</TimeDeleted>
      <RefNumber>CM-1</RefNumber></TxnDeletedRet><TxnDeletedRet><TxnDelType>Check</TxnDelType>
      <TxnID>6-1</TxnID><TimeDeleted>2026-03-01T09:00:00Z</TimeDeleted></TxnDeletedRet>"""
    (answer,) = read_page(page(deleted, kind="TxnDeletedQuery"), ITEMS)
    assert [(d.qb_txn_id, d.kind, d.qb_time_deleted, d.ref_number) for d in answer.deleted] == [
        ("5-1", TxnKind.CREDIT_MEMO, "2026-03-01T09:00:00Z", "CM-1")
    ]
    empty = page().replace('statusCode="0"', 'statusCode="1"')
    (nothing,) = read_page(empty, ITEMS)
    assert nothing.response.status.code == 1 and nothing.txns == ()


@pytest.mark.parametrize(
    "broken",
    [
        "<QBXML><QBXMLMsgsRs><InvoiceQueryRs statusSeverity='Info'/></QBXMLMsgsRs></QBXML>",
        page("<InvoiceRet><TxnID>1</TxnID><TxnDate>2026-13-45</TxnDate></InvoiceRet>"),
        page(
            "<InvoiceRet><TxnID>1</TxnID><TxnDate>2026-01-01</TxnDate>"
            "<InvoiceLineRet><Amount>12,50</Amount></InvoiceLineRet></InvoiceRet>"
        ),
        "<NotQBXML/>",
        "<QBXML><unclosed></QBXML>",
        page(attributes='iteratorRemainingCount="many"'),
    ],
)
def test_anything_else_is_malformed(broken: str) -> None:
    with pytest.raises(MalformedQbxml):
        read_page(broken, ITEMS)
