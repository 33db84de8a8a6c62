"""QuickBooks' sales transactions → JMAUser orders: the reading half of the export.

An export page (an InvoiceQuery, SalesReceiptQuery, SalesOrderQuery or CreditMemoQuery with
line items, or a TxnDeletedQuery) is read here, once, into each response's status and
iterator and the transactions it carries, each already mapped to the JMAUser order it reads
as (docs/export.md; docs/order-format.md read in reverse):

- ``OrderNumber`` the RefNumber, ``OrderDate`` the TxnDate, ``OrderType`` 2 Invoice,
  3 CreditMemo, 4 SalesOrder, 5 SalesReceipt, ``CustomerName`` the customer's FullName.
- Lines on the company's shipping, discount and tax items add up into ``ShippingExclTax``
  (the first one's Desc is ``ShippingMethod``), ``discountExclTax`` (positive: money off)
  and ``TotalTax`` (with the SalesTaxTotal QuickBooks computed); every other line with an
  item or an amount is an ``orderDetails`` entry: sku = the item's FullName, name = Desc,
  quantity (1 when QuickBooks has none), priceExclTax = Rate (else Amount / quantity).
  Lines of a group are read as lines.
- ``OrderTotal`` is TotalAmount, or for an invoice (which has none) Subtotal plus
  SalesTaxTotal.
- An address's non-empty lines (Addr1 to Addr5) are laid out as the bridge writes them:
  fullName, then company when there are four or more, then address1 and address2 (lines
  past the fourth joined to address2); City, State, PostalCode and Country become city,
  regionName, postalCode and countryName. Mapped forward again, an address the bridge
  wrote comes back as the same block.

Money, quantities and rates are numeric strings (JSON keeps them exact). Like
responses.py, anything that is not a well-formed qbXML response raises MalformedQbxml.
Pure: no database, no engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from lxml import etree

from qbwc_bridge.domain.exports import ORDER_TYPES, ChargeItems, DeletedTxn, ExportedTxn
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.errors import MalformedQbxml, MalformedXml
from qbwc_bridge.qbxml.responses import QbResponse, QbStatus
from qbwc_bridge.safexml import parse_xml

_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,20}(\.[0-9]{0,10})?|[+-]?\.[0-9]{1,10}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_CENT = Decimal("0.01")
_FIVE_PLACES = Decimal("0.00001")
_KINDS = {f"{kind.value}Ret": kind for kind in TxnKind}
_DELETED_KINDS = {kind.value: kind for kind in TxnKind}
_ADDRESS_LINES = ("Addr1", "Addr2", "Addr3", "Addr4", "Addr5")
_ADDRESS_FIELDS = (
    ("City", "city"),
    ("State", "regionName"),
    ("PostalCode", "postalCode"),
    ("Country", "countryName"),
)
DEFAULT_SHIPPING_DESC = "Shipping"  # what the mapping writes when an order names no method


@dataclass(frozen=True, slots=True)
class ExportResponse:
    """One ``…Rs`` of an export page: its status and iterator (``response``, without
    records), and what it carried."""

    response: QbResponse
    txns: tuple[ExportedTxn, ...] = ()
    deleted: tuple[DeletedTxn, ...] = ()


def read_page(data: bytes | str, items: ChargeItems) -> list[ExportResponse]:
    """Every ``…Rs`` of a qbXML response, in order, with its transactions read as orders."""
    root = _parse(data)
    if root.tag != "QBXML":
        raise MalformedQbxml(f"root element is <{str(root.tag)[:80]}>, not <QBXML>")
    messages = root.find("QBXMLMsgsRs")
    if messages is None:
        raise MalformedQbxml("no <QBXMLMsgsRs> inside <QBXML>")
    return [
        _response(element, items)
        for element in messages
        if isinstance(element.tag, str) and element.tag.endswith("Rs")
    ]


def _parse(data: bytes | str) -> etree._Element:
    try:
        return parse_xml(data)
    except MalformedXml as exc:
        raise MalformedQbxml(exc.problem, data[:200]) from exc
    except (ValueError, LookupError, etree.LxmlError) as exc:
        raise MalformedQbxml(f"unreadable XML: {exc}", data[:200]) from exc


def _response(element: etree._Element, items: ChargeItems) -> ExportResponse:
    kind = str(element.tag).removesuffix("Rs")
    code = element.get("statusCode")
    if code is None:
        raise MalformedQbxml(f"<{str(element.tag)[:80]}> has no statusCode")
    remaining = element.get("iteratorRemainingCount")
    header = QbResponse(
        request_id=element.get("requestID", ""),
        kind=kind,
        status=QbStatus(
            code=_integer(code, "statusCode"),
            severity=element.get("statusSeverity", ""),
            message=element.get("statusMessage", ""),
        ),
        iterator_id=element.get("iteratorID", ""),
        iterator_remaining=None
        if remaining is None
        else _integer(remaining, "iteratorRemainingCount"),
    )
    rets = [child for child in element if isinstance(child.tag, str)]
    if kind == "TxnDeletedQuery":
        found = (_deleted(ret) for ret in rets if ret.tag == "TxnDeletedRet")
        return ExportResponse(header, deleted=tuple(d for d in found if d is not None))
    txns = tuple(transaction(ret, items) for ret in rets if ret.tag in _KINDS)
    return ExportResponse(header, txns=txns)


def _deleted(element: etree._Element) -> DeletedTxn | None:
    kind = _DELETED_KINDS.get(_text(element, "TxnDelType"))
    txn_id = _text(element, "TxnID")
    if kind is None or not txn_id:
        return None  # a type the export did not ask for
    return DeletedTxn(
        qb_txn_id=txn_id,
        kind=kind,
        qb_time_deleted=_text(element, "TimeDeleted"),
        ref_number=_text(element, "RefNumber"),
    )


class _Fields:
    """The texts of ``paths`` below an element (the first node of each, as findtext does),
    from one compiled XPath: lxml walks the tree in C instead of handing Python an object
    for every element, which made reading a page cost more than parsing it. The texts come
    joined by a private-use character, which QuickBooks' Windows-1252 text cannot hold: one
    that does is not a QuickBooks answer."""

    _SEPARATOR = "\ue000"

    def __init__(self, *paths: str) -> None:
        joined = f", '{self._SEPARATOR}', ".join(f"string({path})" for path in paths)
        self.path = etree.XPath(f"concat({joined})")
        self.count = len(paths)

    def __call__(self, element: etree._Element) -> list[str]:
        values = str(self.path(element)).split(self._SEPARATOR)
        if len(values) != self.count:
            raise MalformedQbxml(f"<{str(element.tag)[:80]}> holds a character QuickBooks has not")
        return [value.strip() for value in values]


_ADDRESS_PARTS = (*_ADDRESS_LINES, *(tag for tag, _ in _ADDRESS_FIELDS))
_HEADER_PARTS = ("TxnID", "TimeModified", "TxnDate", "RefNumber", "CustomerRef/FullName",
                 "Subtotal", "SalesTaxTotal", "TotalAmount")  # fmt: skip
_TXN = _Fields(
    *_HEADER_PARTS,
    *(f"BillAddress/{part}" for part in _ADDRESS_PARTS),
    *(f"ShipAddress/{part}" for part in _ADDRESS_PARTS),
)
_LINE = _Fields("ItemRef/FullName", "Desc", "Quantity", "Rate", "Amount")
_LINES = {
    kind: etree.XPath(f"{kind.value}LineRet | {kind.value}LineGroupRet/{kind.value}LineRet")
    for kind in TxnKind
}


def transaction(element: etree._Element, items: ChargeItems) -> ExportedTxn:
    """One InvoiceRet / SalesReceiptRet / SalesOrderRet / CreditMemoRet as its order."""
    kind = _KINDS[str(element.tag)]
    values = _TXN(element)
    header, addresses = values[: len(_HEADER_PARTS)], values[len(_HEADER_PARTS) :]
    txn_id, modified, txn_date, ref_number, customer, subtotal, sales_tax_total, total_amount = (
        header
    )
    details: list[dict[str, str]] = []
    shipping = discount = tax = Decimal(0)
    ship_method: str | None = None
    lines = _LINES[kind](element)
    assert isinstance(lines, list)
    for line in lines:
        assert isinstance(line, etree._Element)
        item, desc, quantity, rate, amount_text = _LINE(line)
        amount = _number(amount_text, "Amount") or Decimal(0)
        charge = item.casefold()
        if item and charge == items.shipping:
            shipping += amount
            if ship_method is None:
                ship_method = "" if desc == DEFAULT_SHIPPING_DESC else desc
        elif item and charge == items.discount:
            discount -= amount
        elif item and charge == items.tax:
            tax += amount
        elif item or amount:
            details.append(_detail(item, desc, quantity, rate, amount))
    sales_tax = _number(sales_tax_total, "SalesTaxTotal") or Decimal(0)
    total = _number(total_amount, "TotalAmount")
    if total is None:
        total = (_number(subtotal, "Subtotal") or Decimal(0)) + sales_tax
    order: dict[str, Any] = {
        "OrderNumber": ref_number,
        "OrderDate": _day(txn_date, "TxnDate"),
        "OrderType": int(ORDER_TYPES[kind]),
        "CustomerName": customer,
        "billingAddress": _address(addresses[: len(_ADDRESS_PARTS)]),
        "shippingAddress": _address(addresses[len(_ADDRESS_PARTS) :]),
        "orderDetails": details,
    }
    if ship_method:
        order["ShippingMethod"] = ship_method
    order["ShippingExclTax"] = _money(shipping)
    order["discountExclTax"] = _money(discount)
    order["TotalTax"] = _money(tax + sales_tax)
    order["OrderTotal"] = _money(total)
    return ExportedTxn(qb_txn_id=txn_id, kind=kind, qb_time_modified=modified, order=order)


def _detail(
    item: str, desc: str, quantity_text: str, rate_text: str, amount: Decimal
) -> dict[str, str]:
    quantity = _number(quantity_text, "Quantity")
    rate = _number(rate_text, "Rate")
    if rate is None:
        rate = amount / quantity if quantity else amount
        rate = rate.quantize(_FIVE_PLACES, ROUND_HALF_UP).normalize() + 0
    return {
        "sku": item,
        "name": desc,
        "quantity": _quantity(quantity if quantity is not None else Decimal(1)),
        "priceExclTax": _rate(rate),
    }


def _address(values: list[str]) -> dict[str, str]:
    lines = [value for value in values[: len(_ADDRESS_LINES)] if value]
    address: dict[str, str] = {}
    if lines:
        address["fullName"] = lines.pop(0)
    if len(lines) >= 3:
        address["company"] = lines.pop(0)
    if lines:
        address["address1"] = lines.pop(0)
    if lines:
        address["address2"] = ", ".join(lines)
    for (_, key), value in zip(_ADDRESS_FIELDS, values[len(_ADDRESS_LINES) :], strict=True):
        if value:
            address[key] = value
    return address


def _text(element: etree._Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def _integer(text: str, what: str) -> int:
    if _INTEGER.fullmatch(text.strip()) is None:
        raise MalformedQbxml(f"{what} {text[:40]!r} is not an integer")
    return int(text.strip())


def _number(text: str | None, what: str) -> Decimal | None:
    value = text.strip() if text else ""
    if not value:
        return None
    if _DECIMAL.fullmatch(value) is None:
        raise MalformedQbxml(f"<{what}> {value[:40]!r} is not a number")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise MalformedQbxml(f"<{what}> {value[:40]!r} is not a number") from exc


def _day(text: str, what: str) -> str:
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise MalformedQbxml(f"<{what}> {text[:40]!r} is not a date") from exc
    return day.isoformat()


def _money(value: Decimal) -> str:
    return f"{value.quantize(_CENT, ROUND_HALF_UP) + 0:f}"


def _quantity(value: Decimal) -> str:
    """``2``, ``2.5``, ``0.001``: no trailing zeros."""
    return f"{value.normalize() + 0:f}"


def _rate(value: Decimal) -> str:
    """``12.50``, ``103.00``, ``1.23456``: at least the cents, as a price reads."""
    normalized = value.normalize() + 0
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normalized = normalized.quantize(_CENT)
    return f"{normalized:f}"
