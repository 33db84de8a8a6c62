"""The stand-in QuickBooks answers in the shape of Intuit's schema and of real QuickBooks output."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from lxml.builder import E
from oracle import require_oracle
from qbsim_requests import (
    customer_add,
    element_paths,
    is_subsequence,
    line,
    message,
    payment_add,
    responses,
    status,
    txn_add,
)

from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator import FakeQuickBooks, ItemStock

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(require_oracle("xsd", "qbxml130", "qbxmlops130.xsd")))


def real(name: str) -> etree._Element:
    return parse_xml(require_oracle("qbxml-responses", name).read_bytes())


def real_request(*parts: str) -> str:
    return require_oracle("qbxml-requests", *parts).read_text(encoding="utf-8")


def assert_valid(schema: etree.XMLSchema, text: str) -> None:
    tree = parse_xml(text).getroottree()
    assert schema.validate(tree), schema.error_log


def assert_same_shape(mine: etree._Element, theirs: etree._Element, omitted: set[str]) -> None:
    """Every element of the real Ret, minus deliberate omissions, appears in ours in order."""
    their_paths = [path for path in element_paths(theirs) if path.split("/")[0] not in omitted]
    assert is_subsequence(their_paths, element_paths(mine)), (their_paths, element_paths(mine))


def spree_shop() -> FakeQuickBooks:
    items = {
        "SPREE-T-SHIRT": ItemStock("SPREE-T-SHIRT", Decimal(300), sales_desc="Awesome Spree"),
        "Kit:Box": ItemStock("Kit:Box", Decimal(2), kind="ItemInventoryAssembly"),
    }
    return FakeQuickBooks(items=items)


def address() -> list[etree._Element]:
    return [
        E.Addr1("1234 Awesome Street"),
        E.City("Hollywood"),
        E.State("CA"),
        E.PostalCode("90210"),
        E.Country("USA"),
    ]


def invoice_like_flowlink(kind: str) -> etree._Element:
    """The request behind flowlink's recorded InvoiceAddRs / SalesOrderAddRs, in schema order."""
    head = [
        E.CustomerRef(E.FullName("spree@example.com")),
        E.TxnDate("2014-02-03"),
        E.RefNumber("R1TT46883"),
        E.BillAddress(*address()),
        E.ShipAddress(*address()),
    ]
    if kind == "SalesOrder":
        head.append(E.PONumber("R15408534641"))
    head.append(E.ShipDate("2014-02-03"))
    shirt = E(
        f"{kind}LineAdd",
        E.ItemRef(E.FullName("SPREE-T-SHIRT")),
        E.Desc("SPREE-T-SHIRT"),
        E.Quantity("2"),
        E.Rate("103.00"),
    )
    return E(f"{kind}AddRq", E(f"{kind}Add", *head, shirt), requestID="1")


def test_customer_add_matches_the_real_quickbooks_pro_answer(schema: etree.XMLSchema) -> None:
    quickbooks = FakeQuickBooks()
    answer = quickbooks.process(real_request("CustomerAddRq.qbxml5.consolibyte-2008.xml"))
    assert_valid(schema, answer)
    (rs,) = responses(answer)
    (theirs,) = real("CustomerAddRs.QBPro2006.consolibyte-2008.xml").iter("CustomerAddRs")
    assert rs.get("requestID") == theirs.get("requestID")
    assert status(rs) == status(theirs)
    # Company defaults for sales tax are not modelled.
    assert_same_shape(rs[0], theirs[0], omitted={"SalesTaxCodeRef", "ItemSalesTaxRef"})


def test_customer_query_matches_the_real_answer(schema: etree.XMLSchema) -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.process(message(customer_add("Ann Lee", FirstName="Ann", LastName="Lee")))
    answer = quickbooks.process(message(E.CustomerQueryRq(E.FullName("ann lee"), requestID="7")))
    assert_valid(schema, answer)
    (rs,) = responses(answer)
    (theirs,) = real("CustomerQueryRs.consolibyte-2008.xml").iter("CustomerQueryRs")
    assert status(rs) == status(theirs)
    omitted = {"SalesTaxCodeRef", "ItemSalesTaxRef", "Salutation", "MiddleName", "ShipAddress"}
    omitted |= {"Phone"}
    assert_same_shape(rs[0], theirs[0], omitted)


@pytest.mark.parametrize("kind", ["Invoice", "SalesOrder"])
def test_sales_transactions_match_the_real_answers(schema: etree.XMLSchema, kind: str) -> None:
    quickbooks = spree_shop()
    quickbooks.add_customer("spree@example.com")
    answer = quickbooks.process(message(invoice_like_flowlink(kind)))
    assert_valid(schema, answer)
    (rs,) = responses(answer)
    recorded = {
        "Invoice": "InvoiceAddRs.flowlink-2014.xml",
        "SalesOrder": "ItemInventoryQueryRs-status1-x2+SalesOrderAddRs-ok+SalesOrderAddRs-3140"
        ".flowlink-2014.xml",
    }[kind]
    theirs = next(real(recorded).iter(f"{kind}AddRs"))
    assert status(rs) == status(theirs)
    assert_same_shape(rs[0], theirs[0], omitted=set())
    ret = rs[0]
    assert ret.findtext(f"{kind}LineRet/Amount") == "206.00"
    assert ret.findtext("Subtotal") == "206.00"


def test_payment_add_matches_the_real_answer(schema: etree.XMLSchema) -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.add_customer("spree@example.com")
    request = payment_add("spree@example.com", "210.00", ref_number="R154817935", method="Check")
    answer = quickbooks.process(message(request))
    assert_valid(schema, answer)
    (rs,) = responses(answer)
    (theirs,) = real("ReceivePaymentAddRs.flowlink-2014.xml").iter("ReceivePaymentAddRs")
    assert status(rs) == status(theirs)
    assert_same_shape(rs[0], theirs[0], omitted=set())
    assert rs[0].findtext("UnusedPayment") == "210.00"


def test_item_inventory_query_matches_the_real_answer(schema: etree.XMLSchema) -> None:
    answer = spree_shop().process(message(E.ItemInventoryQueryRq(requestID="1")))
    assert_valid(schema, answer)
    (rs,) = responses(answer)
    theirs = real("ItemInventoryQueryRs.flowlink-2014.xml").find("QBXMLMsgsRs/ItemInventoryQueryRs")
    assert theirs is not None
    assert status(rs) == status(theirs)
    real_with_desc = next(ret for ret in theirs if ret.find("SalesDesc") is not None)
    assert_same_shape(rs[0], real_with_desc, omitted=set())


def test_errors_use_quickbooks_wording() -> None:
    recorded = real(
        "ItemInventoryQueryRs-status1-x2+SalesOrderAddRs-ok+SalesOrderAddRs-3140.flowlink-2014.xml"
    )
    their_no_match = status(next(recorded.iter("ItemInventoryQueryRs")))
    their_3140 = status(list(recorded.iter("SalesOrderAddRs"))[1])
    their_500 = status(
        next(real("CustomerQueryRs-500-warn.qbwc-gem-test.xml").iter("CustomerQueryRs"))
    )
    their_3120 = status(
        next(
            real("CustomerQueryRs-3120-object-not-found.qbwc-gem-test.xml").iter("CustomerQueryRs")
        )
    )
    quickbooks = FakeQuickBooks()
    answer = quickbooks.process(
        message(
            E.ItemInventoryQueryRq(requestID="1"),
            txn_add(
                "SalesOrder",
                "nononononoImNotThereAlrightDylan",
                [line("SalesOrder", "SKU-9", "1", "1.00")],
                request_id="2",
            ),
            E.CustomerQueryRq(E.FullName("bleech"), requestID="3"),
            E.CustomerQueryRq(E.ListID("8000001B-1405768916"), requestID="4"),
            on_error="continueOnError",
        )
    )
    assert [status(rs) for rs in responses(answer)] == [
        their_no_match,
        their_3140,
        their_500,
        their_3120,
    ]


def test_hcp_response_is_valid_and_shaped_like_a_real_one(schema: etree.XMLSchema) -> None:
    text = FakeQuickBooks(max_version="12.0", country="CA").hcp_response()
    assert_valid(schema, text)
    mine = parse_xml(text)
    theirs = real(
        "HostQueryRs+CompanyQueryRs+PreferencesQueryRs.strHCPResponse."
        "QBPremierMfgWholesale2012.qbws-2014.xml"
    )
    assert [rs.tag for rs in mine[0]] == [rs.tag for rs in theirs[0]]
    host_mine, host_theirs = mine.find(".//HostRet"), theirs.find(".//HostRet")
    assert host_mine is not None and host_theirs is not None
    assert_same_shape(host_mine, host_theirs, omitted=set())
    versions = [v.text for v in host_mine.iter("SupportedQBXMLVersion")]
    assert versions[0] == "1.0" and versions[-1] == "12.0"
    assert host_mine.findtext("Country") == "CA"


INTUIT_SAMPLES = [
    ("intuit-sdk-samples", "HostQueryRq.xml"),
    ("intuit-sdk-samples", "CompanyQueryRq.xml"),
    ("intuit-sdk-samples", "PreferencesQueryRq.xml"),
    ("intuit-sdk-samples", "InvoiceQueryRq.xml"),
    ("intuit-sdk-samples", "ItemInventoryQueryRq.xml"),
    ("intuit-sdk-samples", "ReceivePaymentQueryRq.xml"),
    ("intuit-sdk-samples", "legacy", "CustomerAddRq.xml"),
    ("intuit-sdk-samples", "legacy", "ReceivePaymentAddRq.xml"),
    ("CustomerAddRq.qbxml5.consolibyte-2008.xml",),
    ("ItemInventoryQueryRq.qbxml5.flowlink.xml",),
]


@pytest.mark.parametrize("parts", INTUIT_SAMPLES, ids=lambda parts: "/".join(parts))
def test_real_request_samples_are_answered_without_error(
    schema: etree.XMLSchema, parts: tuple[str, ...]
) -> None:
    quickbooks = spree_shop()
    quickbooks.add_invoice(
        "Ecker Designs:Office Repairs", Decimal("150.00"), txn_id="44F3-1071525107"
    )
    quickbooks.add_customer("Someone")
    answer = quickbooks.process(real_request(*parts))
    assert_valid(schema, answer)
    for rs in responses(answer):
        code, severity, text = status(rs)
        assert severity != "Error", text
        assert code in (0, 1)


def test_legacy_payment_sample_reduces_the_seeded_invoice() -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.add_invoice(
        "Ecker Designs:Office Repairs", Decimal("150.00"), txn_id="44F3-1071525107"
    )
    quickbooks.process(real_request("intuit-sdk-samples", "legacy", "ReceivePaymentAddRq.xml"))
    (invoice,) = quickbooks.invoices()
    assert invoice.balance == Decimal("50.00")
    (payment,) = quickbooks.payments
    assert payment.customer == "Ecker Designs:Office Repairs"
    assert payment.payment_method == "Cash"


def test_legacy_customer_sample_creates_a_job_under_its_customer() -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.process(real_request("intuit-sdk-samples", "legacy", "CustomerAddRq.xml"))
    job = quickbooks.customer("Joe Customer:Equipment Installation")
    assert job is not None and job.sublevel == 1
    parent = quickbooks.customer("joe customer")
    assert parent is not None and job.parent_list_id == parent.list_id
    assert parent.bill_address == {
        "Addr1": "123 Main St.",
        "City": "Mountain View",
        "State": "CA",
        "PostalCode": "94566",
    }


def test_every_answer_kind_validates(schema: etree.XMLSchema) -> None:
    """Queries with line items and linked payments, credit memos, receipts: all schema-valid."""
    quickbooks = spree_shop()
    quickbooks.add_customer("Ann")
    lines = [
        E.InvoiceLineAdd(E.ItemRef(E.FullName("SPREE-T-SHIRT")), E.Quantity("3"), E.Rate("9.99"))
    ]
    quickbooks.process(message(txn_add("Invoice", "Ann", lines, ref_number="1001", po_number="P")))
    invoice_id = quickbooks.invoices()[0].txn_id
    quickbooks.process(message(payment_add("Ann", "10.00", [(invoice_id, "10.00")])))
    for kind in ("SalesReceipt", "CreditMemo", "SalesOrder"):
        kit = E(f"{kind}LineAdd", E.ItemRef(E.FullName("Kit:Box")), E.Amount("5.00"))
        quickbooks.process(message(txn_add(kind, "Ann", [kit], memo="m")))
    queries = [
        E(f"{kind}QueryRq", E.IncludeLineItems("true"), requestID=kind)
        for kind in ("SalesReceipt", "CreditMemo", "SalesOrder")
    ]
    answer = quickbooks.process(
        message(
            E.InvoiceQueryRq(
                E.RefNumber("1001"),
                E.IncludeLineItems("true"),
                E.IncludeLinkedTxns("true"),
                requestID="i",
            ),
            E.ReceivePaymentQueryRq(
                E.TxnID(quickbooks.payments[0].txn_id), E.IncludeLineItems("true")
            ),
            E.ItemInventoryAssemblyQueryRq(requestID="a"),
            E.CustomerQueryRq(E.MaxReturned("5"), requestID="c"),
            *queries,
        )
    )
    assert_valid(schema, answer)
    assert all(status(rs)[0] == 0 for rs in responses(answer))


def test_oracle_response_folder_is_what_the_shape_tests_read() -> None:
    folder = require_oracle("qbxml-responses")
    assert isinstance(folder, Path) and any(folder.glob("*flowlink*"))
