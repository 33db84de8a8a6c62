"""The stand-in QuickBooks keeps state, refuses what QuickBooks refuses, and fails on purpose."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from lxml.builder import E
from oracle import require_oracle
from qbsim_requests import customer_add, line, message, payment_add, responses, status, txn_add

from qbwc_bridge.simulator import (
    FakeQuickBooks,
    ItemStock,
    LatencyModel,
    QuickBooksFailure,
    QuickBooksParseError,
    ResponseLost,
)
from qbwc_bridge.simulator.quickbooks import PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=-4)))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def shop(clock: Callable[[], datetime] | None = None, **items: int) -> FakeQuickBooks:
    stock = {name: ItemStock(name, Decimal(qty)) for name, qty in items.items()}
    stock["Shipping"] = ItemStock("Shipping", kind="ItemOtherCharge")
    return FakeQuickBooks(items=stock, clock=clock)


def only(text: str) -> etree._Element:
    (rs,) = responses(text)
    return rs


# ----------------------------------------------------------------- customers


def test_customer_add_then_query_by_full_name_case_insensitively() -> None:
    quickbooks = shop()
    added = only(quickbooks.process(message(customer_add("Lee, Ann", CompanyName="ACME"))))
    assert status(added)[0] == 0
    list_id = added.findtext("CustomerRet/ListID") or ""
    assert list_id.startswith("8000") and "-" in list_id
    found = only(quickbooks.process(message(E.CustomerQueryRq(E.FullName("LEE, ANN")))))
    assert found.findtext("CustomerRet/ListID") == list_id
    assert found.findtext("CustomerRet/CompanyName") == "ACME"


def test_name_in_use_is_3100_case_insensitively_and_adds_nothing() -> None:
    quickbooks = shop()
    quickbooks.process(message(customer_add("Ann Lee")))
    rs = only(quickbooks.process(message(customer_add("ANN LEE"))))
    assert status(rs) == (
        3100,
        "Error",
        'The name "ANN LEE" of the list element is already in use.',
    )
    assert [c.full_name for c in quickbooks.customers] == ["Ann Lee"]


@pytest.mark.parametrize(
    ("field", "limit"),
    [("Name", 41), ("CompanyName", 41), ("FirstName", 25), ("LastName", 25), ("Phone", 21)],
)
def test_too_long_customer_field_is_3070(field: str, limit: int) -> None:
    quickbooks = shop()
    value = "x" * (limit + 1)
    request = customer_add(value) if field == "Name" else customer_add("Ann", **{field: value})
    rs = only(quickbooks.process(message(request)))
    assert status(rs) == (
        3070,
        "Error",
        f'The string "{value}" in the field "{field}" is too long.',
    )
    assert quickbooks.customers == ()
    ok = (
        customer_add("y" * limit)
        if field == "Name"
        else customer_add("Ann", **{field: "y" * limit})
    )
    assert status(only(quickbooks.process(message(ok))))[0] == 0


@pytest.mark.parametrize(("tag", "limit"), [("City", 31), ("State", 21), ("PostalCode", 13)])
def test_too_long_address_field_is_3070(tag: str, limit: int) -> None:
    request = E.CustomerAddRq(
        E.CustomerAdd(E.Name("Ann"), E.BillAddress(E(tag, "9" * (limit + 1))))
    )
    rs = only(shop().process(message(request)))
    assert status(rs)[0] == 3070 and f'field "{tag}"' in status(rs)[2]


def test_text_outside_windows_1252_is_stored_as_question_marks() -> None:
    quickbooks = shop()
    quickbooks.process(message(customer_add("Nguyễn Łukasz Café")))
    (customer,) = quickbooks.customers
    assert customer.full_name == "Nguy?n ?ukasz Café"


def test_filtered_customer_query_without_match_is_status_1() -> None:
    quickbooks = shop()
    quickbooks.process(message(customer_add("Ann")))
    query = E.CustomerQueryRq(E.NameFilter(E.MatchCriterion("StartsWith"), E.Name("Zed")))
    rs = only(quickbooks.process(message(query)))
    assert status(rs) == (1, "Info", "A query request did not find a matching object in QuickBooks")
    query = E.CustomerQueryRq(E.NameFilter(E.MatchCriterion("StartsWith"), E.Name("an")))
    assert only(quickbooks.process(message(query))).findtext("CustomerRet/Name") == "Ann"


# ----------------------------------------------------------------- transactions


def test_invoice_totals_and_inspection_view() -> None:
    quickbooks = shop(SKU1=10)
    quickbooks.add_customer("Ann")
    lines = [
        line("Invoice", "SKU1", "3", "19.99"),
        line("Invoice", "Shipping", "1", "5", amount="4.95"),
        E.InvoiceLineAdd(E.ItemRef(E.FullName("SKU1")), E.Quantity("1"), E.Rate("0.333")),
    ]
    request = txn_add("Invoice", "Ann", lines, ref_number="1001", po_number="112-1", memo="web")
    rs = only(quickbooks.process(message(request)))
    assert rs.findtext("InvoiceRet/Subtotal") == "65.25"
    assert rs.findtext("InvoiceRet/BalanceRemaining") == "65.25"
    assert rs.findtext("InvoiceRet/IsPaid") == "false"
    (invoice,) = quickbooks.invoices()
    assert (invoice.ref_number, invoice.po_number, invoice.memo) == ("1001", "112-1", "web")
    assert invoice.customer == "Ann" and invoice.total == Decimal("65.25")
    assert [ln.amount for ln in invoice.lines] == [
        Decimal("59.97"),
        Decimal("4.95"),
        Decimal("0.33"),
    ]
    item = quickbooks.item("SKU1")
    assert item is not None and item.stock.quantity_on_hand == 6


def test_unknown_customer_or_item_is_3140_and_stores_nothing() -> None:
    quickbooks = shop(SKU1=1)
    quickbooks.add_customer("Ann")
    unknown_item = txn_add("Invoice", "Ann", [line("Invoice", "SKU-9", "1", "1.00")])
    rs = only(quickbooks.process(message(unknown_item)))
    assert status(rs) == (
        3140,
        "Error",
        'There is an invalid reference to QuickBooks Item "SKU-9" in the Invoice.  QuickBooks '
        "error message: Invalid argument.  The specified record does not exist in the list.",
    )
    unknown_customer = txn_add("SalesReceipt", "Bob", [line("SalesReceipt", "SKU1", "1", "1.00")])
    rs = only(quickbooks.process(message(unknown_customer)))
    assert status(rs)[0] == 3140 and 'Customer "Bob" in the SalesReceipt.' in status(rs)[2]
    assert quickbooks.invoices() == () and quickbooks.sales_receipts() == ()
    item = quickbooks.item("SKU1")
    assert item is not None and item.stock.quantity_on_hand == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("ref_number", "123456789012"), ("po_number", "P" * 26), ("memo", "m" * 4096)],
)
def test_too_long_transaction_field_is_3070_and_atomic(field: str, value: str) -> None:
    quickbooks = shop(SKU1=1)
    quickbooks.add_customer("Ann")
    lines = [line("Invoice", "SKU1", "1", "1.00")]
    rs = only(quickbooks.process(message(txn_add("Invoice", "Ann", lines, **{field: value}))))
    assert status(rs)[0] == 3070 and value in status(rs)[2]
    assert quickbooks.invoices() == ()
    customer = quickbooks.customer("Ann")
    assert customer is not None and customer.balance == 0


def test_ref_numbers_are_not_unique_and_queries_return_all() -> None:
    quickbooks = shop(SKU1=5)
    quickbooks.add_customer("Ann")
    for _ in range(2):
        request = txn_add("Invoice", "Ann", [line("Invoice", "SKU1", "1", "2.00")], ref_number="77")
        quickbooks.process(message(request))
    rs = only(quickbooks.process(message(E.InvoiceQueryRq(E.RefNumber("77")))))
    assert len(rs.findall("InvoiceRet")) == 2
    assert rs.find("InvoiceRet/InvoiceLineRet") is None
    none = only(quickbooks.process(message(E.InvoiceQueryRq(E.RefNumber("78")))))
    assert status(none)[0] == 1


def test_transaction_query_filters() -> None:
    quickbooks = shop(SKU1=5)
    for name, day, ref in (("Ann", "2024-01-05", "A1"), ("Bob", "2024-02-05", "B1")):
        quickbooks.add_customer(name)
        lines = [line("SalesReceipt", "SKU1", "1", "2.00")]
        quickbooks.process(
            message(txn_add("SalesReceipt", name, lines, txn_date=day, ref_number=ref))
        )
    by_entity = E.SalesReceiptQueryRq(E.EntityFilter(E.FullName("bob")))
    assert (
        only(quickbooks.process(message(by_entity))).findtext("SalesReceiptRet/RefNumber") == "B1"
    )
    by_date = E.SalesReceiptQueryRq(
        E.TxnDateRangeFilter(E.FromTxnDate("2024-01-01"), E.ToTxnDate("2024-01-31"))
    )
    assert only(quickbooks.process(message(by_date))).findtext("SalesReceiptRet/RefNumber") == "A1"
    by_ref = E.SalesReceiptQueryRq(
        E.RefNumberFilter(E.MatchCriterion("EndsWith"), E.RefNumber("1"))
    )
    assert len(only(quickbooks.process(message(by_ref))).findall("SalesReceiptRet")) == 2
    limited = E.SalesReceiptQueryRq(E.MaxReturned("1"))
    assert len(only(quickbooks.process(message(limited))).findall("SalesReceiptRet")) == 1


# ----------------------------------------------------------------- payments


def paid_shop() -> tuple[FakeQuickBooks, str]:
    quickbooks = shop(SKU1=5)
    quickbooks.add_customer("Ann")
    quickbooks.add_customer("Bob")
    rs = only(
        quickbooks.process(
            message(
                txn_add("Invoice", "Ann", [line("Invoice", "SKU1", "2", "25.00")], ref_number="9")
            )
        )
    )
    return quickbooks, rs.findtext("InvoiceRet/TxnID") or ""


def test_payment_reduces_the_invoice_balance_and_is_found_again() -> None:
    quickbooks, invoice_id = paid_shop()
    rs = only(
        quickbooks.process(
            message(payment_add("Ann", "30.00", [(invoice_id, "30.00")], ref_number="ch_1"))
        )
    )
    assert rs.findtext("ReceivePaymentRet/AppliedToTxnRet/TxnID") == invoice_id
    assert rs.findtext("ReceivePaymentRet/AppliedToTxnRet/BalanceRemaining") == "20.00"
    (invoice,) = quickbooks.invoices()
    assert invoice.balance == Decimal("20.00")
    query = E.ReceivePaymentQueryRq(
        E.EntityFilter(E.FullName("Ann")),
        E.RefNumberFilter(E.MatchCriterion("StartsWith"), E.RefNumber("ch_")),
        E.IncludeLineItems("true"),
    )
    found = only(quickbooks.process(message(query)))
    assert found.findtext("ReceivePaymentRet/TotalAmount") == "30.00"
    assert found.findtext("ReceivePaymentRet/AppliedToTxnRet/Amount") == "30.00"
    without_lines = only(quickbooks.process(message(E.ReceivePaymentQueryRq(E.RefNumber("ch_1")))))
    assert without_lines.find("ReceivePaymentRet/AppliedToTxnRet") is None
    paid = only(quickbooks.process(message(payment_add("Ann", "20.00", [(invoice_id, "20.00")]))))
    assert status(paid)[0] == 0
    assert quickbooks.invoices()[0].balance == 0
    query = E.InvoiceQueryRq(E.TxnID(invoice_id), E.IncludeLinkedTxns("true"))
    invoice_rs = only(quickbooks.process(message(query)))
    assert invoice_rs.findtext("InvoiceRet/IsPaid") == "true"
    assert len(invoice_rs.findall("InvoiceRet/LinkedTxn")) == 2


def test_payment_errors() -> None:
    quickbooks, invoice_id = paid_shop()
    unknown_txn = only(quickbooks.process(message(payment_add("Ann", "1.00", [("FFF-1", "1.00")]))))
    assert status(unknown_txn)[:2] == (3120, "Error")
    assert 'Object "FFF-1" specified in the request cannot be found.' in status(unknown_txn)[2]
    other_customer = only(
        quickbooks.process(message(payment_add("Bob", "1.00", [(invoice_id, "1.00")])))
    )
    assert status(other_customer)[0] == 3120
    unknown_customer = only(
        quickbooks.process(message(payment_add("Zed", "1.00", [(invoice_id, "1.00")])))
    )
    assert status(unknown_customer)[0] == 3140
    too_much = only(
        quickbooks.process(message(payment_add("Ann", "60.00", [(invoice_id, "60.00")])))
    )
    assert status(too_much)[:2] == (3180, "Error")
    long_ref = only(
        quickbooks.process(
            message(payment_add("Ann", "1.00", [(invoice_id, "1.00")], ref_number="r" * 21))
        )
    )
    assert status(long_ref)[0] == 3070
    assert quickbooks.payments == ()
    assert quickbooks.invoices()[0].balance == Decimal("50.00")


def test_payment_methods_can_be_restricted() -> None:
    quickbooks = FakeQuickBooks(payment_methods=["Visa"])
    quickbooks.add_customer("Ann")
    rs = only(quickbooks.process(message(payment_add("Ann", "5.00", method="Bitcoin"))))
    assert status(rs)[0] == 3140 and 'PaymentMethod "Bitcoin"' in status(rs)[2]
    assert (
        status(only(quickbooks.process(message(payment_add("Ann", "5.00", method="visa")))))[0] == 0
    )
    assert quickbooks.payments[0].payment_method == "Visa"


def test_auto_apply_pays_open_invoices_oldest_first() -> None:
    quickbooks = FakeQuickBooks()
    first = quickbooks.add_invoice("Ann", Decimal("10.00"))
    second = quickbooks.add_invoice("Ann", Decimal("10.00"))
    quickbooks.process(message(payment_add("Ann", "15.00", auto_apply=True)))
    balances = {txn.txn_id: txn.balance for txn in quickbooks.invoices()}
    assert balances == {first.txn_id: Decimal(0), second.txn_id: Decimal("5.00")}


# ----------------------------------------------------------------- message level


def test_stop_on_error_leaves_later_requests_unanswered() -> None:
    quickbooks = shop()
    text = quickbooks.process(
        message(customer_add("Ann", "1"), customer_add("Ann", "2"), customer_add("Bob", "3"))
    )
    assert [rs.get("requestID") for rs in responses(text)] == ["1", "2"]
    assert [c.full_name for c in quickbooks.customers] == ["Ann"]
    assert quickbooks.request_log == ("CustomerAddRq", "CustomerAddRq")


def test_continue_on_error_answers_every_request() -> None:
    quickbooks = shop()
    text = quickbooks.process(
        message(
            customer_add("Ann", "1"),
            customer_add("Ann", "2"),
            customer_add("Bob", "3"),
            on_error="continueOnError",
        )
    )
    assert [status(rs)[0] for rs in responses(text)] == [0, 3100, 0]
    assert [c.full_name for c in quickbooks.customers] == ["Ann", "Bob"]


def test_warnings_do_not_stop_the_message() -> None:
    text = shop().process(
        message(E.CustomerQueryRq(E.FullName("nobody")), customer_add("Ann", "2"))
    )
    assert [status(rs)[:2] for rs in responses(text)] == [(500, "Warn"), (0, "Info")]


@pytest.mark.parametrize(
    "text",
    [
        "<QBXML><QBXMLMsgsRq>",
        message(customer_add("Ann 😀")),
        message(customer_add("Ann &#x1F600;")).replace("&amp;#x1F600;", "&#x1F600;"),
        message(customer_add("Ann"), version="14.0"),
        pytest.param(
            message(E.CustomerAddRq(E.CustomerAdd(E.Phone("1"), E.Name("Ann")))),
            marks=pytest.mark.oracle,
        ),
        message(customer_add("Ann")).replace('<?qbxml version="13.0"?>', ""),
        message(customer_add("Ann")).replace("Ann", "An\ud83dn"),
    ],
    ids=[
        "malformed",
        "emoji",
        "emoji-reference",
        "version-above-max",
        "wrong-order",
        "no-version",
        "lone-surrogate",
    ],
)
def test_unparseable_messages_fail_as_quickbooks_does(
    text: str, request: pytest.FixtureRequest
) -> None:
    if request.node.get_closest_marker("oracle"):
        require_oracle("xsd", "qbxml130", "qbxmlops130.xsd")  # element order is Intuit's XSD
    quickbooks = shop()
    with pytest.raises(QuickBooksParseError) as raised:
        quickbooks.process(text)
    assert (raised.value.hresult, raised.value.message) == (
        PARSE_ERROR_HRESULT,
        PARSE_ERROR_MESSAGE,
    )
    assert quickbooks.customers == () and quickbooks.request_log == ()


def test_unsupported_request_answers_1030() -> None:
    rs = only(shop().process(message(E.AccountQueryRq(requestID="x"))))
    assert rs.tag == "AccountQueryRs" and status(rs)[:2] == (1030, "Error")


def test_host_query_reports_the_supported_versions() -> None:
    rs = only(FakeQuickBooks(max_version="16.0").process(message(E.HostQueryRq(), version="16.0")))
    assert rs.findall("HostRet/SupportedQBXMLVersion")[-1].text == "16.0"


# ----------------------------------------------------------------- items and iterators


def many_items(count: int, clock: Clock) -> FakeQuickBooks:
    items = {
        f"SKU-{n:05d}": ItemStock(
            f"SKU-{n:05d}", Decimal(n), time_modified=START - timedelta(minutes=n % 7)
        )
        for n in range(count)
    }
    items["Parent:Child"] = ItemStock("Parent:Child", Decimal(1), kind="ItemInventoryAssembly")
    return FakeQuickBooks(items=items, clock=clock)


def iterate(quickbooks: FakeQuickBooks, page: int, *filters: etree._Element) -> list[str]:
    names: list[str] = []
    first = E.ItemInventoryQueryRq(E.MaxReturned(str(page)), *filters, iterator="Start")
    rs = only(quickbooks.process(message(first)))
    while True:
        names += [ret.findtext("FullName") or "" for ret in rs.iter("ItemInventoryRet")]
        if rs.get("iteratorRemainingCount") == "0":
            return names
        follow = E.ItemInventoryQueryRq(
            E.MaxReturned(str(page)), iterator="Continue", iteratorID=rs.get("iteratorID", "")
        )
        rs = only(quickbooks.process(message(follow)))
        assert status(rs)[0] == 0


class CountingDict(dict[str, Any]):
    """A dict that counts how often each key is looked up."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.lookups: Counter[str] = Counter()

    def __getitem__(self, key: str) -> Any:
        self.lookups[key] += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.lookups[key] += 1
        return super().get(key, default)


def test_iterator_pages_over_ten_thousand_items_each_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quickbooks = many_items(10_000, Clock())
    stored = CountingDict(quickbooks._items)
    monkeypatch.setattr(quickbooks, "_items", stored)
    names = iterate(quickbooks, 500)
    assert len(names) == 10_000 and len(set(names)) == 10_000
    assert names == sorted(names)
    assert quickbooks.round_trips == 20
    # Linear work: each item is filtered once and rendered once over the 20 pages, not looked
    # at again for every page.
    assert len(stored.lookups) == 10_001
    assert max(stored.lookups.values()) <= 8


def test_modified_date_filter_and_remaining_count() -> None:
    quickbooks = many_items(70, Clock())
    since = (START - timedelta(minutes=1)).isoformat(timespec="seconds")
    first = E.ItemInventoryQueryRq(E.MaxReturned("4"), E.FromModifiedDate(since), iterator="Start")
    rs = only(quickbooks.process(message(first)))
    assert len(rs.findall("ItemInventoryRet")) == 4
    assert rs.get("iteratorRemainingCount") == "16"
    assert len(iterate(quickbooks, 7, E.FromModifiedDate(since))) == 20


def test_expired_or_unknown_iterator_is_3391() -> None:
    clock = Clock()
    quickbooks = many_items(10, clock)
    rs = only(
        quickbooks.process(message(E.ItemInventoryQueryRq(E.MaxReturned("3"), iterator="Start")))
    )
    iterator_id = rs.get("iteratorID", "")
    clock.advance(301)
    follow = E.ItemInventoryQueryRq(E.MaxReturned("3"), iterator="Continue", iteratorID=iterator_id)
    expired = only(quickbooks.process(message(follow)))
    assert status(expired) == (3391, "Error", f'The iteratorID "{iterator_id}" is not valid.')
    rs = only(
        quickbooks.process(message(E.ItemInventoryQueryRq(E.MaxReturned("3"), iterator="Start")))
    )
    quickbooks.begin_session()
    follow = E.ItemInventoryQueryRq(
        E.MaxReturned("3"), iterator="Continue", iteratorID=rs.get("iteratorID", "")
    )
    assert status(only(quickbooks.process(message(follow))))[0] == 3391


def test_assembly_items_have_their_own_query() -> None:
    quickbooks = many_items(3, Clock())
    rs = only(quickbooks.process(message(E.ItemInventoryAssemblyQueryRq())))
    assert [r.findtext("FullName") for r in rs] == ["Parent:Child"]
    assert rs.findtext("ItemInventoryAssemblyRet/Sublevel") == "1"
    named = only(quickbooks.process(message(E.ItemInventoryQueryRq(E.FullName("sku-00001")))))
    assert named.findtext("ItemInventoryRet/QuantityOnHand") == "1"


def test_set_item_changes_quantities_and_time_modified() -> None:
    clock = Clock()
    quickbooks = many_items(2, clock)
    clock.advance(3600)
    quickbooks.set_item(ItemStock("SKU-00000", Decimal(42)))
    since = (START + timedelta(minutes=30)).isoformat(timespec="seconds")
    rs = only(quickbooks.process(message(E.ItemInventoryQueryRq(E.FromModifiedDate(since)))))
    assert [r.findtext("QuantityOnHand") for r in rs] == ["42"]


# ----------------------------------------------------------------- faults and latency


def test_lost_response_is_applied_but_never_returned() -> None:
    quickbooks = shop()
    quickbooks.lose_response_after(2)
    quickbooks.process(message(customer_add("Ann")))
    with pytest.raises(ResponseLost) as lost:
        quickbooks.process(message(customer_add("Bob")))
    assert "Bob" in lost.value.response
    assert [c.full_name for c in quickbooks.customers] == ["Ann", "Bob"]
    assert status(only(quickbooks.process(message(customer_add("Cy")))))[0] == 0


def test_lost_response_by_predicate() -> None:
    quickbooks = shop()
    quickbooks.lose_response_when(lambda request: "Bob" in request)
    quickbooks.process(message(customer_add("Ann")))
    with pytest.raises(ResponseLost):
        quickbooks.process(message(customer_add("Bob")))
    assert quickbooks.customer("Bob") is not None


def test_failed_message_applies_nothing() -> None:
    quickbooks = shop()
    quickbooks.fail_next_with_hresult("0x80040418", "The application is not authorized.")
    with pytest.raises(QuickBooksFailure) as failure:
        quickbooks.process(message(customer_add("Ann")))
    assert failure.value.hresult == "0x80040418"
    assert quickbooks.customers == ()
    quickbooks.process(message(customer_add("Ann")))
    assert quickbooks.round_trips == 2


def test_latency_is_modelled_not_slept(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    latency = LatencyModel(per_round_trip=2.0, per_request=0.5)
    quickbooks = FakeQuickBooks(latency=latency)
    quickbooks.process(
        message(customer_add("A", "1"), customer_add("B", "2"), customer_add("C", "3"))
    )
    assert slept == []
    assert quickbooks.modelled_seconds == pytest.approx(3.5)
    FakeQuickBooks(latency=latency, sleep=True).process(message(customer_add("A")))
    assert slept == [pytest.approx(2.5)]
