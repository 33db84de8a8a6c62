"""The posting rules' requests (item checks and adds, deletes, checks by TxnID, mapped
ClassRef and ShipMethodRef) are what Intuit's schemas accept in every version the bridge
speaks, and the stand-in's answers to them are what the schema allows."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree
from oracle import require_oracle
from qbxml_factories import txn
from qbxml_schema import qbxml_schema

from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.records import NonInventoryItemRecord
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.build import Request
from qbwc_bridge.qbxml.responses import parse_response
from qbwc_bridge.qbxml.versions import SUPPORTED, QbxmlVersion
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock

V13 = QbxmlVersion(13, 0)


def mapped(kind: TxnKind) -> Request:
    record = txn(kind)
    lines = tuple(replace(line, class_ref="Online:Amazon") for line in record.lines)
    return build.txn_add(
        replace(record, lines=lines, class_ref="Online:Amazon", ship_method_ref="UPS")
    )


def posting_requests() -> list[Request]:
    return [
        *(mapped(kind) for kind in TxnKind),
        build.item_query("WIDGET-RED", "Parent:Child SKU"),
        build.item_non_inventory_add(
            NonInventoryItemRecord("NEW-MUG", "Sales Income", "Blue mug", Decimal("7.25"))
        ),
        build.item_non_inventory_add(NonInventoryItemRecord("NO-PRICE", "Sales")),
        *(build.txn_query_by_id(kind, "1A-1712345678") for kind in TxnKind),
        build.payment_query_by_id("1B-1712345678"),
        *(build.txn_del(kind.value, "1A-1712345678") for kind in TxnKind),
        build.txn_del(build.TXN_DEL_PAYMENT, "1B-1712345678"),
    ]


def schema_for(version: QbxmlVersion) -> str:
    if version >= QbxmlVersion(16, 0):
        return "16.0"
    return "13.0" if version >= QbxmlVersion(12, 0) else "12.0"


@pytest.mark.parametrize("version", SUPPORTED, ids=str)
def test_every_posting_request_validates(version: QbxmlVersion) -> None:
    requests = [(str(n), request) for n, request in enumerate(posting_requests())]
    message = build.message(requests, version)
    schema = qbxml_schema(schema_for(version))
    assert schema.validate(parse_xml(message).getroottree()), schema.error_log


def test_mapped_references_are_where_the_schema_puts_them() -> None:
    rq = parse_xml(build.message([("1", mapped(TxnKind.SALES_RECEIPT))], V13))
    add = rq.find(".//SalesReceiptAdd")
    assert add is not None
    tags = [child.tag for child in add]
    assert tags.index("ClassRef") == tags.index("CustomerRef") + 1
    assert tags.index("PaymentMethodRef") < tags.index("ShipMethodRef") < tags.index("Memo")
    line = add.find("SalesReceiptLineAdd")
    assert line is not None
    assert [child.tag for child in line][-2:] == ["ClassRef", "Amount"]
    with pytest.raises(ValueError, match="deletes only"):
        build.txn_del("Check", "1")


def test_a_query_by_txn_id_asks_for_nothing_else() -> None:
    rq = parse_xml(build.message([("1", build.txn_query_by_id(TxnKind.INVOICE, "9-1"))], V13))
    query = rq.find(".//InvoiceQueryRq")
    assert query is not None
    assert [(c.tag, c.text) for c in query] == [("TxnID", "9-1"), ("IncludeLineItems", "false")]


def test_the_stand_ins_answers_validate_and_read_back() -> None:
    schema = etree.XMLSchema(file=str(require_oracle("xsd", "qbxml130", "qbxmlops130.xsd")))
    fake = FakeQuickBooks(
        items={
            "WIDGET-RED": ItemStock("WIDGET-RED", Decimal(5)),
            "Shipping": ItemStock("Shipping", kind="ItemOtherCharge"),
            "Discount": ItemStock("Discount", kind="ItemDiscount"),
            "Tax": ItemStock("Tax", kind="ItemSalesTax"),
            "Install": ItemStock("Install", kind="ItemService", sales_desc="Fitting"),
        }
    )
    added = fake.process(
        build.message(
            [
                (
                    "1",
                    build.item_non_inventory_add(
                        NonInventoryItemRecord("NEW-MUG", "Sales Income", "Mug", Decimal("7.25"))
                    ),
                ),
                ("2", build.item_non_inventory_add(NonInventoryItemRecord("NEW-MUG", "Sales"))),
                ("3", build.item_non_inventory_add(NonInventoryItemRecord("X", "Nowhere"))),
            ],
            V13,
        ).decode()
    )
    assert schema.validate(parse_xml(added).getroottree()), schema.error_log
    first, again, unknown = parse_response(added)
    assert first.status.code == 0 and first.records[0].full_name == "NEW-MUG"
    assert again.status.code == 3100
    assert unknown.status.code == 3140 and "Account" in unknown.status.message
    names = ("WIDGET-RED", "Shipping", "Discount", "Tax", "Install", "NEW-MUG", "GONE")
    found = fake.process(build.message([("1", build.item_query(*names))], V13).decode())
    assert schema.validate(parse_xml(found).getroottree()), schema.error_log
    (answer,) = parse_response(found)
    assert answer.status.code == 500 and "GONE" in answer.status.message
    assert [r.ret_kind for r in answer.records] == [
        "ItemInventoryRet",
        "ItemOtherChargeRet",
        "ItemDiscountRet",
        "ItemSalesTaxRet",
        "ItemServiceRet",
        "ItemNonInventoryRet",
    ]
    everything = fake.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="continueOnError">'
        "<ItemQueryRq/></QBXMLMsgsRq></QBXML>"
    )
    assert schema.validate(parse_xml(everything).getroottree()), schema.error_log
    assert len(parse_response(everything)[0].records) == 6


def test_txn_del_deletes_payments_and_sales_as_quickbooks_does() -> None:
    schema = etree.XMLSchema(file=str(require_oracle("xsd", "qbxml130", "qbxmlops130.xsd")))
    fake = FakeQuickBooks()
    invoice = fake.add_invoice("Ann", Decimal("30.00"), ref_number="1001")
    paid = fake.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">'
        "<ReceivePaymentAddRq><ReceivePaymentAdd><CustomerRef><FullName>Ann</FullName>"
        "</CustomerRef><TotalAmount>10.00</TotalAmount><AppliedToTxnAdd>"
        f"<TxnID>{invoice.txn_id}</TxnID><PaymentAmount>10.00</PaymentAmount>"
        "</AppliedToTxnAdd></ReceivePaymentAdd></ReceivePaymentAddRq></QBXMLMsgsRq></QBXML>"
    )
    (payment_id,) = [r.txn_id for r in parse_response(paid)[0].records]
    refused = fake.process(
        build.message([("1", build.txn_del("Invoice", invoice.txn_id))], V13).decode()
    )
    assert parse_response(refused)[0].status.code == 3180  # a payment is applied to it
    deleted = fake.process(
        build.message(
            [
                ("1", build.txn_del(build.TXN_DEL_PAYMENT, payment_id)),
                ("2", build.txn_del("Invoice", invoice.txn_id)),
                ("3", build.txn_del("Invoice", invoice.txn_id)),
                ("4", build.txn_del("SalesReceipt", "NOPE-1")),
            ],
            V13,
        ).decode()
    )
    assert schema.validate(parse_xml(deleted).getroottree()), schema.error_log
    codes = [response.status.code for response in parse_response(deleted)]
    assert codes == [0, 0, 3120, 3120]
    assert not fake.payments and not fake.invoices()
    assert fake.customer("Ann").balance == 0  # type: ignore[union-attr]
    assert [gone.txn_id for gone in fake.deleted_transactions] == [invoice.txn_id]


def test_unknown_classes_and_ship_methods_are_3140() -> None:
    fake = FakeQuickBooks()
    record = txn(TxnKind.INVOICE)
    fake.add_customer(record.customer_name)
    for line in record.lines:
        fake.set_item(ItemStock(line.item, kind="ItemService"))
    request = mapped(TxnKind.INVOICE)
    first = parse_response(fake.process(build.message([("1", request)], V13).decode()))[0]
    assert first.status.code == 3140 and 'QuickBooks Class "Online:Amazon"' in first.status.message
    fake.add_class("Online:Amazon")
    second = parse_response(fake.process(build.message([("1", request)], V13).decode()))[0]
    assert second.status.code == 3140 and 'QuickBooks ShipMethod "UPS"' in second.status.message
    fake.add_ship_method("UPS")
    third = parse_response(fake.process(build.message([("1", request)], V13).decode()))[0]
    assert third.status.code == 0 and fake.classes == ("Online:Amazon",)
