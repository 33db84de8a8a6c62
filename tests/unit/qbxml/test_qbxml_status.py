"""QuickBooks statuses become the right outcome and a message a person can act on."""

from __future__ import annotations

import pytest
from oracle import require_oracle

from qbwc_bridge.qbxml.responses import QbStatus, parse_response
from qbwc_bridge.qbxml.status import Outcome, classify, explain, is_transient


def responses(name: str) -> list[tuple[QbStatus, str]]:
    data = require_oracle("qbxml-responses", name).read_bytes()
    return [(response.status, response.kind) for response in parse_response(data)]


def test_real_mixed_batch_is_classified() -> None:
    batch = responses(
        "ItemInventoryQueryRs-status1-x2+SalesOrderAddRs-ok+SalesOrderAddRs-3140.flowlink-2014.xml"
    )
    assert [classify(status, kind) for status, kind in batch] == [
        Outcome.ABSENT,
        Outcome.ABSENT,
        Outcome.OK,
        Outcome.FAILED,
    ]
    status, kind = batch[3]
    assert explain(status, kind) == (
        "QuickBooks error 3140: Customer 'nononononoImNotThereAlrightDylan' does not exist in "
        "QuickBooks: it was not found or was made inactive; add or reactivate it, or check the "
        "customer matching setting"
    )
    assert not is_transient(status)


def test_real_500_on_a_query_is_absent() -> None:
    [(status, kind)] = responses("CustomerQueryRs-500-warn.qbwc-gem-test.xml")
    assert classify(status, kind) is Outcome.ABSENT


def test_real_3120_and_3100_fail() -> None:
    [(not_found, query)] = responses("CustomerQueryRs-3120-object-not-found.qbwc-gem-test.xml")
    [(in_use, add)] = responses("ItemServiceAddRs-3100-name-in-use.consolibyte.xml")
    assert classify(not_found, query) is Outcome.FAILED
    assert classify(in_use, add) is Outcome.FAILED
    assert explain(in_use, add).startswith(
        "QuickBooks error 3100: The name 'Shipping Item - QuickBooks Inte' is already in use"
    )
    assert "'8000001B-1405768916' no longer exists" in explain(not_found, query)


def test_real_3250_names_the_feature() -> None:
    batch = responses("CustomerAddRs-batch-mixed-3100-3250-3130.hotglue-qbwc-common-2026.xml")
    status, kind = batch[2]
    assert explain(status, kind).startswith(
        "QuickBooks error 3250: feature not enabled in this company file: Customer."
    )
    sales_order = QbStatus(3250, "Error", status.message)
    assert "sales orders (Edit > Preferences" in explain(sales_order, "SalesOrderAdd")
    parent = batch[3][0]
    assert explain(parent, "CustomerAdd") == f"QuickBooks error 3130: {parent.message}"


def test_real_ok_statuses() -> None:
    for name in ("InvoiceAddRs.flowlink-2014.xml", "ReceivePaymentAddRs.flowlink-2014.xml"):
        [(status, kind)] = responses(name)
        assert classify(status, kind) is Outcome.OK


@pytest.mark.parametrize(
    ("code", "severity", "kind", "outcome"),
    [
        (0, "Info", "InvoiceAdd", Outcome.OK),
        (0, "Info", "InvoiceQuery", Outcome.OK),
        (1, "Info", "ReceivePaymentQuery", Outcome.ABSENT),
        (500, "Warn", "CustomerQuery", Outcome.ABSENT),
        (530, "Warn", "InvoiceAdd", Outcome.WARNING),
        (500, "Warn", "InvoiceAdd", Outcome.WARNING),
        (3140, "Error", "InvoiceAdd", Outcome.FAILED),
        (3140, "Warn", "InvoiceAdd", Outcome.FAILED),
        (200, "Error", "InvoiceAdd", Outcome.FAILED),
        (9001, "Error", "CustomerQuery", Outcome.FAILED),
        (3120, "Error", "CustomerQuery", Outcome.FAILED),
        (12, "", "InvoiceAdd", Outcome.WARNING),
    ],
)
def test_classify(code: int, severity: str, kind: str, outcome: Outcome) -> None:
    assert classify(QbStatus(code, severity, ""), kind) is outcome


@pytest.mark.parametrize(
    ("code", "transient"),
    [(3175, True), (3176, True), (3180, True), (3200, True), (9001, True), (9100, True),
     (3140, False), (3100, False), (0, False), (500, False)],
)  # fmt: skip
def test_is_transient(code: int, transient: bool) -> None:
    assert is_transient(QbStatus(code, "Error", "")) is transient


@pytest.mark.parametrize(
    ("code", "message", "kind", "expected"),
    [
        (
            3140,
            'There is an invalid reference to QuickBooks Item "SKU-9" in the Invoice line.  '
            "QuickBooks error message: Invalid argument.",
            "InvoiceAdd",
            "QuickBooks error 3140: Item 'SKU-9' does not exist in QuickBooks: create it or map "
            "the SKU",
        ),
        (
            3140,
            'There is an invalid reference to QuickBooks Payment Method "Bitcoin" in the '
            "ReceivePayment.",
            "ReceivePaymentAdd",
            "QuickBooks error 3140: Payment Method 'Bitcoin' does not exist in QuickBooks: "
            "create it in QuickBooks or change the setting that names it",
        ),
        (
            3070,
            'The string "A very long street name indeed" in the field "Addr1" is too long.',
            "CustomerAdd",
            "QuickBooks error 3070: the Addr1 value 'A very long street name indeed' is too "
            "long for QuickBooks",
        ),
        (3070, "Too long.", "CustomerAdd", "QuickBooks error 3070: a value in the Customer is "
         "too long for QuickBooks: Too long."),
        (1234, "Something odd.", "InvoiceAdd", "QuickBooks error 1234: Something odd."),
        (4321, "", "InvoiceAdd", "QuickBooks error 4321: InvoiceAdd answered statusCode 4321 "
         "with no message"),
    ],
)  # fmt: skip
def test_explain(code: int, message: str, kind: str, expected: str) -> None:
    assert explain(QbStatus(code, "Error", message), kind) == expected


@pytest.mark.parametrize("code", [3180, 3200, 3260, 3120, 3100, 3140, 3250])
def test_every_explanation_keeps_the_prefix_and_some_guidance(code: int) -> None:
    text = explain(QbStatus(code, "Error", "QuickBooks says no."), "InvoiceAdd")
    assert text.startswith(f"QuickBooks error {code}: ")
    assert len(text) > len(f"QuickBooks error {code}: ") + 20


def test_permission_and_busy_messages() -> None:
    denied = explain(QbStatus(3260, "Error", "Insufficient permission level."), "InvoiceAdd")
    assert "permission denied" in denied and "Invoice" in denied
    busy = explain(QbStatus(3180, "Error", "There was an error when saving."), "InvoiceAdd")
    assert "tried again" in busy


@pytest.mark.parametrize(
    ("code", "message", "kind", "shown"),
    [
        (
            3140,
            'There is an invalid reference to QuickBooks Item "Men\'s TEE" in the Invoice line.',
            "InvoiceAdd",
            "Item 'Men's TEE' does not exist",
        ),
        (
            3140,
            "There is an invalid reference to QuickBooks Customer 'O'Neil, Olivia' in the Invoice.",
            "InvoiceAdd",
            "Customer 'O'Neil, Olivia' does not exist",
        ),
        (
            3100,
            'The name "O\'Neil, Olivia" of the list element is already in use.',
            "CustomerAdd",
            "The name 'O'Neil, Olivia' is already in use",
        ),
    ],
)
def test_a_quoted_value_with_an_apostrophe_is_shown_whole(
    code: int, message: str, kind: str, shown: str
) -> None:
    assert shown in explain(QbStatus(code, "Error", message), kind)
