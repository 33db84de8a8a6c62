"""qbXML response bytes → typed responses: the only place QuickBooks' answers are read.

Everything is read through the hardened parser; anything that is not a well-formed qbXML
response (wrong root, missing or non-numeric status, a number or date that is not one)
raises MalformedQbxml and nothing else, whatever the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from qbwc_bridge.errors import MalformedQbxml, MalformedXml
from qbwc_bridge.safexml import parse_xml

_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,20}(\.[0-9]{0,10})?|[+-]?\.[0-9]{1,10}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")


@dataclass(frozen=True, slots=True)
class QbStatus:
    """The status attributes of one ``…Rs``."""

    code: int
    severity: str
    message: str


@dataclass(frozen=True, slots=True)
class QbRecord:
    """The fields of one ``…Ret`` the engine needs; "" / None where QuickBooks sent nothing.

    ``total_amount`` is TotalAmount, or for an InvoiceRet (which has none) Subtotal plus
    SalesTaxTotal. ``applied_to`` lists (TxnID, Amount) of a payment's AppliedToTxnRet.
    """

    ret_kind: str
    list_id: str = ""
    txn_id: str = ""
    name: str = ""
    full_name: str = ""
    ref_number: str = ""
    po_number: str = ""
    memo: str = ""
    edit_sequence: str = ""
    txn_date: date | None = None
    total_amount: Decimal | None = None
    customer_list_id: str = ""
    customer_full_name: str = ""
    applied_to: tuple[tuple[str, Decimal], ...] = ()
    quantity_on_hand: Decimal | None = None
    quantity_on_order: Decimal | None = None
    quantity_on_sales_order: Decimal | None = None
    time_modified: str = ""
    is_active: bool | None = None
    # An item's SalesDesc (None when absent), SalesPrice, AverageCost, PurchaseCost.
    sales_desc: str | None = None
    sales_price: Decimal | None = None
    average_cost: Decimal | None = None
    purchase_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class QbResponse:
    """One ``…Rs``: ``kind`` is its stem ("InvoiceAdd"), matching the request's."""

    request_id: str
    kind: str
    status: QbStatus
    records: tuple[QbRecord, ...] = ()
    iterator_id: str = ""
    iterator_remaining: int | None = None


def parse_response(data: bytes | str) -> list[QbResponse]:
    """Every ``…Rs`` of a qbXML response, in order."""
    root = _parse(data)
    if root.tag != "QBXML":
        raise MalformedQbxml(f"root element is <{_name(root)}>, not <QBXML>", _excerpt(data))
    messages = root.find("QBXMLMsgsRs")
    if messages is None:
        raise MalformedQbxml("no <QBXMLMsgsRs> inside <QBXML>", _excerpt(data))
    return [
        _response(element)
        for element in messages
        if isinstance(element.tag, str) and element.tag.endswith("Rs")
    ]


def _parse(data: bytes | str) -> etree._Element:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedQbxml(f"text is not encodable as UTF-8: {exc.reason}") from exc
    try:
        return parse_xml(data)
    except MalformedXml as exc:
        raise MalformedQbxml(exc.problem, _excerpt(data)) from exc
    except (ValueError, LookupError, etree.LxmlError) as exc:
        raise MalformedQbxml(f"unreadable XML: {exc}", _excerpt(data)) from exc


def _excerpt(data: bytes | str) -> bytes | str:
    return data[:200]


def _name(element: etree._Element) -> str:
    return str(element.tag)[:80]


def _response(element: etree._Element) -> QbResponse:
    kind = str(element.tag).removesuffix("Rs")
    code = element.get("statusCode")
    if code is None:
        raise MalformedQbxml(f"<{_name(element)}> has no statusCode")
    remaining = element.get("iteratorRemainingCount")
    return QbResponse(
        request_id=element.get("requestID", ""),
        kind=kind,
        status=QbStatus(
            code=_integer(code, "statusCode"),
            severity=element.get("statusSeverity", ""),
            message=element.get("statusMessage", ""),
        ),
        records=tuple(
            _record(child)
            for child in element
            if isinstance(child.tag, str) and child.tag.endswith("Ret")
        ),
        iterator_id=element.get("iteratorID", ""),
        iterator_remaining=None
        if remaining is None
        else _integer(remaining, "iteratorRemainingCount"),
    )


def _integer(text: str, what: str) -> int:
    if _INTEGER.fullmatch(text.strip()) is None:
        raise MalformedQbxml(f"{what} {text[:40]!r} is not an integer")
    return int(text.strip())


def _number(text: str | None, path: str) -> Decimal | None:
    value = text.strip() if text else ""
    if not value:
        return None
    if _DECIMAL.fullmatch(value) is None:
        raise MalformedQbxml(f"<{path}> {value[:40]!r} is not a number")
    return Decimal(value)


def _decimal(element: etree._Element, path: str) -> Decimal | None:
    return _number(element.findtext(path), path)


def _day(text: str | None, path: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise MalformedQbxml(f"<{path}> {text[:40]!r} is not a date") from exc


def _boolean(text: str | None) -> bool | None:
    return {"true": True, "false": False, "1": True, "0": False}.get((text or "").strip().lower())


def _total(texts: dict[str, str]) -> Decimal | None:
    total = _number(texts.get("TotalAmount"), "TotalAmount")
    if total is not None:
        return total
    subtotal = _number(texts.get("Subtotal"), "Subtotal")
    if subtotal is None:
        return None
    return subtotal + (_number(texts.get("SalesTaxTotal"), "SalesTaxTotal") or Decimal("0"))


def _applied(element: etree._Element) -> tuple[tuple[str, Decimal], ...]:
    return tuple(
        (applied.findtext("TxnID") or "", _decimal(applied, "Amount") or Decimal("0"))
        for applied in element.iterfind("AppliedToTxnRet")
    )


def _record(element: etree._Element) -> QbRecord:
    # One pass over the children (the first of each name counts, as findtext would):
    # a page of 500 inventory items must not cost 19 path searches per item.
    texts: dict[str, str] = {}
    customer: etree._Element | None = None
    for child in element:
        tag = child.tag
        if not isinstance(tag, str) or tag in texts:
            continue
        texts[tag] = child.text or ""
        if tag == "CustomerRef":
            customer = child

    def text(name: str) -> str:
        return texts.get(name, "")

    return QbRecord(
        ret_kind=str(element.tag),
        list_id=text("ListID"),
        txn_id=text("TxnID"),
        name=text("Name"),
        full_name=text("FullName"),
        ref_number=text("RefNumber"),
        po_number=text("PONumber"),
        memo=text("Memo"),
        edit_sequence=text("EditSequence"),
        txn_date=_day(texts.get("TxnDate"), "TxnDate"),
        total_amount=_total(texts),
        customer_list_id=(customer.findtext("ListID") or "") if customer is not None else "",
        customer_full_name=(customer.findtext("FullName") or "") if customer is not None else "",
        applied_to=_applied(element) if "AppliedToTxnRet" in texts else (),
        quantity_on_hand=_number(texts.get("QuantityOnHand"), "QuantityOnHand"),
        quantity_on_order=_number(texts.get("QuantityOnOrder"), "QuantityOnOrder"),
        quantity_on_sales_order=_number(texts.get("QuantityOnSalesOrder"), "QuantityOnSalesOrder"),
        time_modified=text("TimeModified"),
        is_active=_boolean(texts.get("IsActive")),
        sales_desc=texts.get("SalesDesc"),
        sales_price=_number(texts.get("SalesPrice"), "SalesPrice"),
        average_cost=_number(texts.get("AverageCost"), "AverageCost"),
        purchase_cost=_number(texts.get("PurchaseCost"), "PurchaseCost"),
    )
