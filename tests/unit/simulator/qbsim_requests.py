"""qbXML requests written by hand for the stand-in QuickBooks tests (never the bridge's builder)."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree
from lxml.builder import E

from qbwc_bridge.safexml import parse_xml


def message(*requests: etree._Element, on_error: str = "stopOnError", version: str = "13.0") -> str:
    """A whole qbXML request message, with the `<?qbxml version?>` instruction QuickBooks needs."""
    root = E.QBXML(E.QBXMLMsgsRq(*requests, onError=on_error))
    root.addprevious(etree.ProcessingInstruction("qbxml", f'version="{version}"'))
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8").decode()


def ref(tag: str, full_name: str) -> etree._Element:
    return etree.Element(tag) if not full_name else E(tag, E.FullName(full_name))


def customer_add(name: str, request_id: str = "1", **fields: str) -> etree._Element:
    add = E.CustomerAdd(E.Name(name), *(E(tag, text) for tag, text in fields.items()))
    return E.CustomerAddRq(add, requestID=request_id)


def line(
    kind: str, item: str, quantity: str, rate: str, *, amount: str | None = None
) -> etree._Element:
    children = [ref("ItemRef", item), E.Quantity(quantity), E.Rate(rate)]
    if amount is not None:
        children = [ref("ItemRef", item), E.Amount(amount)]
    return E(f"{kind}LineAdd", *children)


def txn_add(
    kind: str,
    customer: str,
    lines: Iterable[etree._Element],
    *,
    request_id: str = "1",
    txn_date: str = "2024-05-01",
    ref_number: str | None = None,
    po_number: str | None = None,
    memo: str | None = None,
) -> etree._Element:
    """InvoiceAdd / SalesReceiptAdd / SalesOrderAdd / CreditMemoAdd in schema order."""
    head: list[etree._Element] = [ref("CustomerRef", customer), E.TxnDate(txn_date)]
    if ref_number is not None:
        head.append(E.RefNumber(ref_number))
    if po_number is not None and kind != "SalesReceipt":
        head.append(E.PONumber(po_number))
    if memo is not None:
        head.append(E.Memo(memo))
    return E(f"{kind}AddRq", E(f"{kind}Add", *head, *lines), requestID=request_id)


def payment_add(
    customer: str,
    total: str,
    applied: Iterable[tuple[str, str]] = (),
    *,
    request_id: str = "1",
    ref_number: str | None = None,
    method: str | None = "Visa",
    auto_apply: bool = False,
) -> etree._Element:
    children: list[etree._Element] = [ref("CustomerRef", customer), E.TxnDate("2024-05-02")]
    if ref_number is not None:
        children.append(E.RefNumber(ref_number))
    children.append(E.TotalAmount(total))
    if method is not None:
        children.append(ref("PaymentMethodRef", method))
    applications = [E.AppliedToTxnAdd(E.TxnID(t), E.PaymentAmount(a)) for t, a in applied]
    children += applications or [E.IsAutoApply("true" if auto_apply else "false")]
    return E.ReceivePaymentAddRq(E.ReceivePaymentAdd(*children), requestID=request_id)


def responses(text: str) -> list[etree._Element]:
    """The …Rs elements of a response message."""
    root = parse_xml(text)
    messages = root.find("QBXMLMsgsRs")
    assert messages is not None
    return list(messages)


def status(rs: etree._Element) -> tuple[int, str, str]:
    return (
        int(rs.get("statusCode", "-1")),
        rs.get("statusSeverity", ""),
        rs.get("statusMessage", ""),
    )


def element_paths(element: etree._Element) -> list[str]:
    """Distinct element-name paths below ``element``, in order of first appearance."""
    seen: dict[str, None] = {}

    def walk(node: etree._Element, prefix: str) -> None:
        for child in node:
            if isinstance(child.tag, str):
                path = f"{prefix}/{child.tag}" if prefix else child.tag
                seen.setdefault(path, None)
                walk(child, path)

    walk(element, "")
    return list(seen)


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(item == candidate for candidate in remaining) for item in needle)
