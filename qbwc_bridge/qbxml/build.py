"""Typed requests → qbXML bytes: the only way the engine talks to QuickBooks.

Each builder turns a record into values for its template (``qbxml_templates/``), which fixes
element order; :func:`message` wraps requests in a ``QBXML`` document for one negotiated
version, dropping what that version lacks. Numbers are formatted to the schema's patterns here
(amounts with two decimals, quantities and rates with at most five).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from lxml import etree

from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.records import (
    CustomerRecord,
    NonInventoryItemRecord,
    PaymentRecord,
    QbAddress,
    TxnLine,
    TxnRecord,
)
from qbwc_bridge.domain.text import qb_text
from qbwc_bridge.qbxml import templates
from qbwc_bridge.qbxml.versions import QbxmlVersion

ON_ERROR_CHOICES = ("stopOnError", "continueOnError", "rollbackOnError")
_CENT = Decimal("0.01")
_FIVE_PLACES = Decimal("0.00001")
_AMOUNT_DIGITS = 13
_QUANTITY_DIGITS = 10
_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


@dataclass(frozen=True, slots=True)
class Request:
    """One request's template values; message() fills them for the negotiated version."""

    name: str
    values: templates.Values

    @property
    def kind(self) -> str:
        """The request stem, e.g. ``"InvoiceAdd"``; responses carry the same kind."""
        return self.name.removesuffix("Rq")


def _request(kind: str, values: templates.Values) -> Request:
    return Request(name=f"{kind}Rq", values=values)


# --- number and date formats -------------------------------------------------------------


def _check_digits(value: Decimal, digits: int, what: str) -> None:
    if not value.is_finite() or value.adjusted() >= digits:
        raise ValueError(f"{what} {value} does not fit qbXML's {digits} integer digits")


def format_amount(value: Decimal) -> str:
    """AMTTYPE: exactly two decimals, rounded half up (``5`` → ``"5.00"``)."""
    _check_digits(value, _AMOUNT_DIGITS, "amount")
    return f"{value.quantize(_CENT, rounding=ROUND_HALF_UP) + 0:f}"


def format_quantity(value: Decimal) -> str:
    """QUANTYPE: at most five decimals, no trailing zeros (``2.50`` → ``"2.5"``)."""
    _check_digits(value, _QUANTITY_DIGITS, "quantity")
    rounded = value.quantize(_FIVE_PLACES, rounding=ROUND_HALF_UP).normalize() + 0
    return f"{rounded:f}"


def format_rate(value: Decimal) -> str:
    """PRICETYPE: two to five decimals (``103`` → ``"103.00"``, ``1.23456`` kept)."""
    _check_digits(value, _QUANTITY_DIGITS, "rate")
    rounded = value.quantize(_FIVE_PLACES, rounding=ROUND_HALF_UP).normalize() + 0
    exponent = rounded.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        rounded = rounded.quantize(_CENT)
    return f"{rounded:f}"


def format_datetime(value: datetime) -> str:
    """DATETIMETYPE with an explicit offset; a naive time is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    offset = aware.utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{aware.strftime('%Y-%m-%dT%H:%M:%S')}{sign}{hours:02d}:{rest:02d}"


# --- values --------------------------------------------------------------------------------


def _address(prefix: str, address: QbAddress) -> dict[str, str]:
    return {
        f"{prefix}_addr1": address.addr1,
        f"{prefix}_addr2": address.addr2,
        f"{prefix}_addr3": address.addr3,
        f"{prefix}_addr4": address.addr4,
        f"{prefix}_addr5": address.addr5,
        f"{prefix}_city": address.city,
        f"{prefix}_state": address.state,
        f"{prefix}_postal_code": address.postal_code,
        f"{prefix}_country": address.country,
    }


def _line(line: TxnLine) -> dict[str, str]:
    """Quantity and Rate only together with a quantity; Amount always (Rate is a choice
    with RatePercent/PriceLevelRef before Amount in the schema, so both may appear)."""
    values = {"item": line.item, "desc": line.desc, "amount": format_amount(line.amount)}
    if line.class_ref:
        values["class_ref"] = line.class_ref
    if line.quantity is not None:
        values["quantity"] = format_quantity(line.quantity)
        if line.rate is not None:
            values["rate"] = format_rate(line.rate)
    return values


# --- builders ------------------------------------------------------------------------------


def customer_query(*full_names: str) -> Request:
    """CustomerQuery by exact FullNames: one request looks up many customers.

    QuickBooks answers the ones it has, with statusCode 500 naming one it has not.
    """
    names = [{"full_name": qb_text(name)} for name in full_names]
    return _request("CustomerQuery", {"names": names})


def customer_add(rec: CustomerRecord) -> Request:
    return _request(
        "CustomerAdd",
        {
            "name": rec.name,
            "company_name": rec.company_name,
            "first_name": rec.first_name,
            "last_name": rec.last_name,
            "phone": rec.phone,
            "email": rec.email,
            **_address("bill", rec.bill_address),
            **_address("ship", rec.ship_address),
        },
    )


def txn_query(kind: TxnKind, ref_number: str) -> Request:
    """``<Kind>Query`` by RefNumber, whole transactions (TxnID, CustomerRef, PONumber, Memo,
    totals) without line items."""
    return _request(
        f"{kind.value}Query", {"ref_number": qb_text(ref_number), "line_items": "false"}
    )


def export_query(
    kind: TxnKind,
    *,
    max_returned: int,
    from_modified: datetime | None,
    iterator: Literal["Start", "Continue"] | None,
    iterator_id: str | None,
) -> Request:
    """``<Kind>Query`` for the export: one page (MaxReturned) of the transactions modified
    since ``from_modified`` (all of them when None), with their line items."""
    if max_returned < 1:
        raise ValueError("max_returned must be at least 1")
    values: dict[str, str] = {"max_returned": str(max_returned), "line_items": "true"}
    if from_modified is not None:
        values["from_modified"] = format_datetime(from_modified)
    if iterator is not None:
        values["iterator"] = iterator
    if iterator_id:
        values["iterator_id"] = iterator_id
    return _request(f"{kind.value}Query", values)


def deleted_query(kinds: Sequence[TxnKind], from_deleted: datetime | None) -> Request:
    """TxnDeletedQuery for those transaction types, deleted since ``from_deleted`` (every
    deletion QuickBooks still remembers when None). It has no iterator: one answer."""
    if not kinds:
        raise ValueError("a TxnDeletedQuery names at least one transaction type")
    values: dict[str, str | list[dict[str, str]]] = {
        "types": [{"type": kind.value} for kind in kinds]
    }
    if from_deleted is not None:
        values["from_deleted"] = format_datetime(from_deleted)
    return _request("TxnDeletedQuery", values)


def txn_add(rec: TxnRecord) -> Request:
    """InvoiceAdd / SalesReceiptAdd / SalesOrderAdd / CreditMemoAdd.

    ShipMethodRef and ClassRef are sent only when a mapping names them: each must name an
    existing QuickBooks list entry, and an unknown one fails the whole transaction (3140);
    the ship method always goes into the shipping line's Desc. PONumber goes only to types
    that have it (not SalesReceipt) and PaymentMethodRef only to SalesReceipt: the
    templates decide.
    """
    return _request(
        f"{rec.kind.value}Add",
        {
            "customer": rec.customer_name,
            "txn_date": rec.txn_date.isoformat(),
            "ref_number": rec.ref_number,
            "po_number": rec.po_number,
            "payment_method": rec.payment_method,
            "ship_method_ref": rec.ship_method_ref,
            "class_ref": rec.class_ref,
            "memo": rec.memo,
            "lines": [_line(line) for line in rec.lines],
            **_address("bill", rec.bill_address),
            **_address("ship", rec.ship_address),
        },
    )


def txn_query_by_id(kind: TxnKind, txn_id: str) -> Request:
    """``<Kind>Query`` for one transaction by TxnID, without line items (an undo compares
    its EditSequence and TimeModified with what the bridge's add left)."""
    return _request(f"{kind.value}Query", {"txn_id": qb_text(txn_id), "line_items": "false"})


def payment_query_by_id(txn_id: str) -> Request:
    """ReceivePaymentQuery for one payment by TxnID."""
    return _request("ReceivePaymentQuery", {"txn_id": qb_text(txn_id)})


TXN_DEL_PAYMENT = "ReceivePayment"


def txn_del(txn_type: str, txn_id: str) -> Request:
    """TxnDel of one transaction: ``txn_type`` is a TxnKind's value or "ReceivePayment"."""
    allowed = {kind.value for kind in TxnKind} | {TXN_DEL_PAYMENT}
    if txn_type not in allowed:
        raise ValueError(f"the bridge deletes only {sorted(allowed)}, not {txn_type!r}")
    return _request("TxnDel", {"txn_type": txn_type, "txn_id": qb_text(txn_id)})


def item_query(*full_names: str) -> Request:
    """ItemQuery by exact FullNames, any item type: which of them QuickBooks has.

    QuickBooks answers the ones it has, with statusCode 500 naming one it has not.
    """
    names = [{"full_name": qb_text(name)} for name in full_names]
    return _request("ItemQuery", {"names": names})


def item_non_inventory_add(rec: NonInventoryItemRecord) -> Request:
    """ItemNonInventoryAdd: a sold-only item (SalesOrPurchase) on the given income account."""
    values: dict[str, str] = {"name": rec.name, "desc": rec.desc, "account": rec.account}
    if rec.price is not None:
        values["price"] = format_rate(rec.price)
    return _request("ItemNonInventoryAdd", values)


def payment_query(customer_name: str, ref_number: str, txn_date: date) -> Request:
    """ReceivePaymentQuery for one customer, with applied-to lines.

    qbXML has no "equals" for RefNumberFilter (only StartsWith/Contains/EndsWith), so a
    non-empty reference uses StartsWith and the engine compares RefNumber exactly; an empty
    one filters by the payment's date instead.
    """
    ref_number = qb_text(ref_number)
    values: dict[str, str] = {"customer": qb_text(customer_name), "ref_number": ref_number}
    if not ref_number.strip():
        values["from_date"] = values["to_date"] = txn_date.isoformat()
    return _request("ReceivePaymentQuery", values)


def payment_add(rec: PaymentRecord) -> Request:
    """ReceivePaymentAdd applied to one transaction; the customer by ListID when known."""
    amount = format_amount(rec.total_amount)
    values: dict[str, str] = {
        "txn_date": rec.txn_date.isoformat(),
        "ref_number": rec.ref_number,
        "total_amount": amount,
        "payment_method": rec.payment_method,
        "memo": rec.memo,
    }
    if rec.customer_list_id:
        values["customer_list_id"] = rec.customer_list_id
    else:
        values["customer"] = rec.customer_name
    if rec.applied_to_txn_id:
        values["applied_to_txn_id"] = rec.applied_to_txn_id
        values["payment_amount"] = amount
    else:
        values["auto_apply"] = "true"
    return _request("ReceivePaymentAdd", values)


def inventory_query(
    *,
    max_returned: int,
    from_modified: datetime | None,
    iterator: Literal["Start", "Continue"] | None,
    iterator_id: str | None,
    assemblies: bool = False,
) -> Request:
    """ItemInventoryQuery (or ItemInventoryAssemblyQuery), active and inactive items.

    Below qbXML 5.0 message() drops the iterator attributes; MaxReturned then caps the
    single answer.
    """
    if max_returned < 1:
        raise ValueError("max_returned must be at least 1")
    values: dict[str, str] = {"max_returned": str(max_returned)}
    if from_modified is not None:
        values["from_modified"] = format_datetime(from_modified)
    if iterator is not None:
        values["iterator"] = iterator
    if iterator_id:
        values["iterator_id"] = iterator_id
    kind = "ItemInventoryAssemblyQuery" if assemblies else "ItemInventoryQuery"
    return _request(kind, values)


# --- the message ---------------------------------------------------------------------------


def message(
    requests: Sequence[tuple[str, Request]],
    version: QbxmlVersion,
    *,
    on_error: str = "continueOnError",
) -> bytes:
    """A complete qbXML request message: ``(requestID, request)`` pairs in order.

    Raises UnsupportedQuickBooks when a request type is newer than ``version``.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"onError must be one of {ON_ERROR_CHOICES}, not {on_error!r}")
    root = etree.Element("QBXML")
    root.addprevious(etree.ProcessingInstruction("qbxml", f'version="{version}"'))
    messages = etree.SubElement(root, "QBXMLMsgsRq", onError=on_error)
    for request_id, request in requests:
        element = templates.fill(request.kind, request.values, version)
        element.set("requestID", qb_text(request_id))
        messages.append(element)
    return _XML_DECLARATION + etree.tostring(root.getroottree(), encoding="utf-8")
