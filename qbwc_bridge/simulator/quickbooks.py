"""A stand-in QuickBooks Desktop for CI: answers qbXML messages the way the real one does.

It shares no code with the bridge's engine or qbXML builders (only the hardened parser), so a
mistake in how the bridge writes or reads qbXML shows up here as it would against QuickBooks.

Deliberate choices where the real behaviour is unknown or out of scope:
- A request type the stand-in does not implement answers statusCode 1030 Error ("This request
  is not supported by this implementation."), so a bridge mistake is loud, not silently empty.
- An invalid or expired iterator answers 3391 Error 'The iteratorID "{…}" is not valid.'
  (the wording QuickBooks users report).
- A payment applied to another customer's invoice answers 3120 (the invoice is not found among
  that customer's open transactions); applying more than the open balance answers 3180.
- Quantities change with sales but the item's TimeModified does not, as in QuickBooks.
- onError="rollbackOnError" behaves like stopOnError.
- Requests are validated against Intuit's XSD (element order, types, enums): a failure is the
  parse error 0x80040400. Over-long strings pass that check and answer 3070 per request, as
  QuickBooks does.
- An InvoiceRet carries no TotalAmount (the schema has none): Subtotal, AppliedAmount and
  BalanceRemaining say it. Sales tax is not computed (SalesTaxTotal 0.00; a tax line is a line).
"""

from __future__ import annotations

import bisect
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from lxml import etree

from qbwc_bridge.errors import MalformedQbxml
from qbwc_bridge.qbxml.parsing import parse_xml
from qbwc_bridge.simulator.schema import QbxmlSchemas, Version, default_schemas, parse_version

PARSE_ERROR_HRESULT = "0x80040400"
PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."
COULD_NOT_START_HRESULT = "0x80040408"
COULD_NOT_START_MESSAGE = "Could not start QuickBooks."

KNOWN_QBXML_VERSIONS = (
    "1.0", "1.1", "2.0", "2.1", "3.0", "4.0", "4.1", "5.0", "6.0", "7.0", "8.0", "9.0",
    "10.0", "11.0", "12.0", "13.0", "14.0", "15.0", "16.0",
)  # fmt: skip

_NOT_IN_LIST = (
    "  QuickBooks error message: Invalid argument."
    "  The specified record does not exist in the list."
)
_STATUS_OK = "Status OK"
_NO_MATCH = "A query request did not find a matching object in QuickBooks"
_CENT = Decimal("0.01")
_LIST_ID_START = 0x80000001
_TXN_ID_START = 0x100

ItemKind = Literal[
    "ItemInventory",
    "ItemInventoryAssembly",
    "ItemNonInventory",
    "ItemService",
    "ItemOtherCharge",
    "ItemDiscount",
    "ItemSalesTax",
]
TxnKind = Literal["Invoice", "SalesReceipt", "SalesOrder", "CreditMemo"]
Aggregate = tuple[tuple[str, str], ...]
Field = tuple[str, str | Aggregate]
_Value = str | Aggregate | list[etree._Element]


class QuickBooksFailure(Exception):
    """QuickBooks could not process the message; the Web Connector reports hresult and message."""

    def __init__(self, hresult: str, message: str) -> None:
        super().__init__(f"{hresult}: {message}")
        self.hresult = hresult
        self.message = message


class QuickBooksParseError(QuickBooksFailure):
    """QuickBooks found an error when parsing the provided XML text stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.hresult}: {self.message} ({self.reason})"


class ResponseLost(Exception):
    """QuickBooks applied the message, but its response never reached the Web Connector."""

    def __init__(self, response: str) -> None:
        super().__init__("the response to this message was lost")
        self.response = response


@dataclass(frozen=True)
class ItemStock:
    """An item as the test seeds it; FullName may hold ':' for sub-items."""

    full_name: str
    quantity_on_hand: Decimal = Decimal(0)
    quantity_on_order: Decimal = Decimal(0)
    quantity_on_sales_order: Decimal = Decimal(0)
    kind: ItemKind = "ItemInventory"
    time_modified: datetime | None = None
    sales_price: Decimal = Decimal(0)
    sales_desc: str | None = None
    is_active: bool = True


@dataclass(frozen=True)
class LatencyModel:
    """Seconds QuickBooks would spend: a fixed cost per message plus a cost per request."""

    per_round_trip: float = 0.0
    per_request: float = 0.0

    def seconds_for(self, requests: int) -> float:
        return self.per_round_trip + self.per_request * requests


@dataclass(frozen=True)
class ItemRecord:
    list_id: str
    stock: ItemStock
    time_created: datetime
    time_modified: datetime
    edit_sequence: str

    @property
    def full_name(self) -> str:
        return self.stock.full_name

    @property
    def name(self) -> str:
        return self.stock.full_name.rsplit(":", 1)[-1]

    @property
    def sublevel(self) -> int:
        return self.stock.full_name.count(":")


def _field(fields: Iterable[Field], tag: str) -> str | Aggregate | None:
    return next((value for name, value in fields if name == tag), None)


def _text_field(fields: Iterable[Field], tag: str) -> str | None:
    value = _field(fields, tag)
    return value if isinstance(value, str) else None


def _aggregate_field(fields: Iterable[Field], tag: str) -> dict[str, str]:
    value = _field(fields, tag)
    return dict(value) if isinstance(value, tuple) else {}


@dataclass(frozen=True)
class CustomerRecord:
    list_id: str
    name: str
    full_name: str
    sublevel: int
    parent_list_id: str | None
    is_active: bool
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    balance: Decimal
    fields: tuple[Field, ...] = ()

    def get(self, tag: str) -> str | None:
        return _text_field(self.fields, tag)

    @property
    def company_name(self) -> str | None:
        return self.get("CompanyName")

    @property
    def first_name(self) -> str | None:
        return self.get("FirstName")

    @property
    def last_name(self) -> str | None:
        return self.get("LastName")

    @property
    def phone(self) -> str | None:
        return self.get("Phone")

    @property
    def email(self) -> str | None:
        return self.get("Email")

    @property
    def bill_address(self) -> dict[str, str]:
        return _aggregate_field(self.fields, "BillAddress")

    @property
    def ship_address(self) -> dict[str, str]:
        return _aggregate_field(self.fields, "ShipAddress")


@dataclass(frozen=True)
class TransactionLine:
    txn_line_id: str
    item: str | None
    item_list_id: str | None
    desc: str | None
    quantity: Decimal | None
    rate: Decimal | None
    rate_percent: Decimal | None
    amount: Decimal
    sales_tax_code: Aggregate
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class AppliedPayment:
    """One payment's amount on one invoice (the invoice's LinkedTxn, the payment's AppliedToTxn)."""

    payment_txn_id: str
    invoice_txn_id: str
    amount: Decimal


@dataclass(frozen=True)
class TransactionRecord:
    kind: TxnKind
    txn_id: str
    txn_number: int
    customer: str
    customer_list_id: str
    txn_date: date
    ref_number: str | None
    lines: tuple[TransactionLine, ...]
    subtotal: Decimal
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    fields: tuple[Field, ...] = ()
    payments: tuple[AppliedPayment, ...] = ()

    @property
    def total(self) -> Decimal:
        return self.subtotal

    @property
    def applied(self) -> Decimal:
        return sum((payment.amount for payment in self.payments), Decimal(0))

    @property
    def balance(self) -> Decimal | None:
        """Open balance of an invoice; None for the other kinds."""
        return self.total - self.applied if self.kind == "Invoice" else None

    @property
    def po_number(self) -> str | None:
        return _text_field(self.fields, "PONumber")

    @property
    def memo(self) -> str | None:
        return _text_field(self.fields, "Memo")

    @property
    def bill_address(self) -> dict[str, str]:
        return _aggregate_field(self.fields, "BillAddress")

    @property
    def ship_address(self) -> dict[str, str]:
        return _aggregate_field(self.fields, "ShipAddress")


@dataclass(frozen=True)
class PaymentRecord:
    txn_id: str
    txn_number: int
    customer: str
    customer_list_id: str
    txn_date: date
    ref_number: str | None
    total: Decimal
    payment_method: str | None
    memo: str | None
    applied: tuple[AppliedPayment, ...]
    time_created: datetime
    time_modified: datetime
    edit_sequence: str

    @property
    def unused(self) -> Decimal:
        return self.total - sum((part.amount for part in self.applied), Decimal(0))


@dataclass(frozen=True)
class _TxnSpec:
    label: str
    ret_order: tuple[str, ...]
    line_order: tuple[str, ...]
    template: Aggregate
    ar_account: bool


@dataclass
class _Iterator:
    request_tag: str
    keys: list[str]
    position: int
    last_used: datetime


class _Status(Exception):
    """A non-OK statusCode for one request: the request changes nothing."""

    def __init__(self, code: int, severity: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.severity = severity
        self.message = message


@dataclass
class _Answer:
    rets: list[etree._Element]
    code: int = 0
    severity: str = "Info"
    message: str = _STATUS_OK
    iterator: tuple[int, str] | None = None


def _tags(names: str) -> tuple[str, ...]:
    return tuple(names.split())


def _ref(list_id: str, full_name: str) -> Aggregate:
    return (("ListID", list_id), ("FullName", full_name))


_AR_ACCOUNT = _ref("8000001D-1400000000", "Accounts Receivable")
_UNDEPOSITED = _ref("8000001E-1400000000", "Undeposited Funds")
_INVENTORY_ASSET = _ref("8000001A-1400000000", "Inventory Asset")
_COGS = _ref("8000001B-1400000000", "Cost of Goods Sold")
_SALES_INCOME = _ref("8000001C-1400000000", "Sales")
_TAX_NON = _ref("80000002-1400000000", "Non")

_CUSTOMER_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ClassRef ParentRef "
    "Sublevel CompanyName Salutation FirstName MiddleName LastName Suffix JobTitle BillAddress "
    "BillAddressBlock ShipAddress ShipAddressBlock ShipToAddress PrintAs Phone Mobile Pager "
    "AltPhone Fax Email Cc Contact AltContact AdditionalContactRef CustomerTypeRef TermsRef "
    "SalesRepRef Balance TotalBalance SalesTaxCodeRef ItemSalesTaxRef SalesTaxCountry "
    "ResaleNumber AccountNumber CreditLimit PreferredPaymentMethodRef JobStatus JobStartDate "
    "JobProjectedEndDate JobEndDate JobDesc JobTypeRef Notes IsStatementWithParent "
    "DeliveryMethod PreferredDeliveryMethod PriceLevelRef ExternalGUID TaxRegistrationNumber"
)
_CUSTOMER_COMPUTED = frozenset(
    _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
        "BillAddressBlock ShipAddressBlock Balance TotalBalance"
    )
)
_INVOICE_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef ARAccountRef "
    "TemplateRef TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock "
    "IsPending IsFinanceCharge PONumber TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef "
    "Subtotal ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal AppliedAmount BalanceRemaining "
    "Memo IsPaid CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other "
    "ExternalGUID LinkedTxn InvoiceLineRet"
)
_SALES_RECEIPT_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef TemplateRef "
    "TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock IsPending "
    "CheckNumber PaymentMethodRef DueDate SalesRepRef ShipDate ShipMethodRef FOB Subtotal "
    "ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal TotalAmount Memo CustomerMsgRef "
    "IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef DepositToAccountRef Other ExternalGUID "
    "SalesReceiptLineRet"
)
_SALES_ORDER_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef TemplateRef "
    "TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock PONumber "
    "TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef Subtotal ItemSalesTaxRef "
    "SalesTaxPercentage SalesTaxTotal TotalAmount IsManuallyClosed IsFullyInvoiced Memo "
    "CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other ExternalGUID "
    "LinkedTxn SalesOrderLineRet"
)
_CREDIT_MEMO_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ClassRef ARAccountRef "
    "TemplateRef TxnDate RefNumber BillAddress BillAddressBlock ShipAddress ShipAddressBlock "
    "IsPending PONumber TermsRef DueDate SalesRepRef FOB ShipDate ShipMethodRef Subtotal "
    "ItemSalesTaxRef SalesTaxPercentage SalesTaxTotal TotalAmount CreditRemaining Memo "
    "CustomerMsgRef IsToBePrinted IsToBeEmailed CustomerSalesTaxCodeRef Other ExternalGUID "
    "LinkedTxn CreditMemoLineRet"
)
_LINE_RET = _tags(
    "TxnLineID ItemRef Desc Quantity UnitOfMeasure Rate RatePercent ClassRef Amount ServiceDate "
    "SalesTaxCodeRef Other1 Other2"
)
_SALES_ORDER_LINE_RET = _tags(
    "TxnLineID ItemRef Desc Quantity UnitOfMeasure Rate RatePercent ClassRef Amount "
    "SalesTaxCodeRef Invoiced IsManuallyClosed Other1 Other2"
)
_TXN_COMPUTED = frozenset(
    _tags(
        "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef TxnDate RefNumber "
        "BillAddressBlock ShipAddressBlock Subtotal SalesTaxPercentage SalesTaxTotal AppliedAmount "
        "BalanceRemaining IsPaid TotalAmount CreditRemaining IsManuallyClosed IsFullyInvoiced "
        "LinkedTxn"
    )
)
_LINE_COMPUTED = frozenset(
    _tags(
        "TxnLineID ItemRef Desc Quantity Rate RatePercent Amount SalesTaxCodeRef Invoiced "
        "IsManuallyClosed"
    )
)
_PAYMENT_RET = _tags(
    "TxnID TimeCreated TimeModified EditSequence TxnNumber CustomerRef ARAccountRef TxnDate "
    "RefNumber TotalAmount PaymentMethodRef Memo DepositToAccountRef UnusedPayment "
    "UnusedCredits ExternalGUID AppliedToTxnRet"
)
_APPLIED_TO_TXN_RET = _tags("TxnID TxnType TxnDate RefNumber BalanceRemaining Amount")
_LINKED_TXN = _tags("TxnID TxnType TxnDate RefNumber LinkType Amount")
_ITEM_INVENTORY_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
    "SalesDesc SalesPrice IncomeAccountRef PurchaseCost COGSAccountRef AssetAccountRef "
    "QuantityOnHand AverageCost QuantityOnOrder QuantityOnSalesOrder"
)
_ITEM_ASSEMBLY_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
    "SalesDesc SalesPrice IncomeAccountRef PurchaseCost COGSAccountRef AssetAccountRef "
    "QuantityOnHand AverageCost QuantityOnOrder QuantityOnSalesOrder"
)

_TXN_SPECS: dict[TxnKind, _TxnSpec] = {
    "Invoice": _TxnSpec(
        "Invoice",
        tuple(_INVOICE_RET),
        tuple(_LINE_RET),
        _ref("80000003-1400000000", "Intuit Product Invoice"),
        ar_account=True,
    ),
    "SalesReceipt": _TxnSpec(
        "SalesReceipt",
        tuple(_SALES_RECEIPT_RET),
        tuple(_LINE_RET),
        _ref("80000004-1400000000", "Custom Sales Receipt"),
        ar_account=False,
    ),
    "SalesOrder": _TxnSpec(
        "SalesOrder",
        tuple(_SALES_ORDER_RET),
        tuple(_SALES_ORDER_LINE_RET),
        _ref("80000008-1400000000", "Custom Sales Order"),
        ar_account=False,
    ),
    "CreditMemo": _TxnSpec(
        "CreditMemo",
        tuple(_CREDIT_MEMO_RET),
        tuple(_LINE_RET),
        _ref("80000005-1400000000", "Custom Credit Memo"),
        ar_account=True,
    ),
}

_CUSTOMER_LIMITS = {
    "Name": 41,
    "CompanyName": 41,
    "Salutation": 15,
    "FirstName": 25,
    "MiddleName": 5,
    "LastName": 25,
    "JobTitle": 41,
    "Phone": 21,
    "AltPhone": 21,
    "Fax": 21,
    "Email": 1023,
    "Cc": 1023,
    "Contact": 41,
    "AltContact": 41,
    "ResaleNumber": 15,
    "AccountNumber": 99,
    "JobDesc": 99,
    "Notes": 4095,
}
_TXN_LIMITS = {
    "RefNumber": 11,
    "PONumber": 25,
    "Memo": 4095,
    "FOB": 13,
    "CheckNumber": 25,
    "Other": 29,
    "Desc": 4095,
    "Other1": 29,
    "Other2": 29,
}
_PAYMENT_LIMITS = {"RefNumber": 20, "Memo": 4095}
_ADDRESS_LIMITS = {
    "Addr1": 41,
    "Addr2": 41,
    "Addr3": 41,
    "Addr4": 41,
    "Addr5": 41,
    "City": 31,
    "State": 21,
    "PostalCode": 13,
    "Country": 31,
    "Note": 41,
}
_MAX_LENGTH_ERROR = "SCHEMAV_CVC_MAXLENGTH_VALID"
_VERSION_PI = re.compile(r"""version\s*=\s*["']([^"']*)["']""")


def _to_cp1252(text: str) -> str:
    """What QuickBooks stores: Windows-1252, anything else as '?'."""
    return text.encode("cp1252", errors="replace").decode("cp1252")


def _default_clock() -> datetime:
    return datetime.now().astimezone()


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _child(element: etree._Element, tag: str) -> etree._Element | None:
    return next((child for child in _children(element) if child.tag == tag), None)


def _text(element: etree._Element, tag: str) -> str | None:
    child = _child(element, tag)
    if child is None:
        return None
    return _to_cp1252((child.text or "").strip())


def _texts(element: etree._Element, tag: str) -> list[str]:
    return [_to_cp1252((c.text or "").strip()) for c in _children(element) if c.tag == tag]


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise _Status(3000, "Error", f'The given value "{text}" is invalid.') from exc


def _money(amount: Decimal) -> str:
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def _quantity(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def _price(amount: Decimal) -> str:
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return _money(amount)
    return format(amount.normalize(), "f")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ordered(tag: str, order: Sequence[str], pairs: Iterable[tuple[str, _Value]]) -> etree._Element:
    """Build ``tag`` with its children in schema order, whatever order they were gathered in."""
    position = {name: index for index, name in enumerate(order)}
    items = list(pairs)
    unknown = [name for name, _ in items if name not in position]
    if unknown:
        raise ValueError(f"{tag} has no child {unknown[0]}")
    element = etree.Element(tag)
    for name, value in sorted(items, key=lambda pair: position[pair[0]]):
        if isinstance(value, list):
            element.extend(value)
        elif isinstance(value, tuple):
            aggregate = etree.SubElement(element, name)
            for child_tag, child_text in value:
                etree.SubElement(aggregate, child_tag).text = child_text
        else:
            etree.SubElement(element, name).text = value
    return element


def _address_block(address: Aggregate) -> Aggregate:
    parts = dict(address)
    lines = [parts[key] for key in ("Addr1", "Addr2", "Addr3", "Addr4", "Addr5") if key in parts]
    region = " ".join(p for p in (parts.get("State"), parts.get("PostalCode")) if p)
    city_line = ", ".join(p for p in (parts.get("City"), region) if p)
    if city_line:
        lines.append(city_line)
    if parts.get("Country"):
        lines.append(parts["Country"])
    return tuple((f"Addr{index}", line[:41]) for index, line in enumerate(lines[:5], start=1))


def _passthrough(
    add: etree._Element, allowed: Iterable[str], computed: frozenset[str]
) -> list[Field]:
    """Request children QuickBooks echoes unchanged in the Ret: leaves and one-level aggregates."""
    allowed_tags = set(allowed) - computed
    fields: list[Field] = []
    for child in _children(add):
        if child.tag not in allowed_tags:
            continue
        grandchildren = _children(child)
        if not grandchildren:
            fields.append((child.tag, _to_cp1252((child.text or "").strip())))
        elif all(not _children(grandchild) for grandchild in grandchildren):
            fields.append(
                (
                    child.tag,
                    tuple((g.tag, _to_cp1252((g.text or "").strip())) for g in grandchildren),
                )
            )
    return fields


def _check_lengths(add: etree._Element, limits: Mapping[str, int]) -> None:
    """3070 for the first string longer than QuickBooks' field allows, in document order."""
    for element in add.iter():
        if not isinstance(element.tag, str) or _children(element):
            continue
        parent = element.getparent()
        parent_tag = parent.tag if parent is not None and isinstance(parent.tag, str) else ""
        if parent_tag.endswith("Ref"):
            continue
        limit = _ADDRESS_LIMITS.get(element.tag) if parent_tag.endswith("Address") else None
        if parent_tag.endswith("Address") and limit is None:
            continue
        limit = limit if limit is not None else limits.get(element.tag)
        text = _to_cp1252((element.text or "").strip())
        if limit is not None and len(text) > limit:
            raise _Status(
                3070, "Error", f'The string "{text}" in the field "{element.tag}" is too long.'
            )


def _parse_datetime(text: str, default_tz: datetime, *, end_of_day: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(
                day, datetime.max.time() if end_of_day else datetime.min.time()
            )
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Status(
            3020, "Error", f'There was an error when converting the date value "{text}".'
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz.tzinfo)
    return moment


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise _Status(
            3020, "Error", f'There was an error when converting the date value "{text}".'
        ) from exc


def _matches_criterion(value: str, criterion: str, wanted: str) -> bool:
    value, wanted = value.lower(), wanted.lower()
    if criterion == "StartsWith":
        return value.startswith(wanted)
    if criterion == "EndsWith":
        return value.endswith(wanted)
    return wanted in value


class FakeQuickBooks:
    """QuickBooks Desktop behind the Web Connector: stateful, in memory, deterministic enough.

    Parameters: ``max_version`` the highest qbXML version it supports; ``country`` US/CA/UK;
    ``items`` inventory (and other) items by FullName; ``validate_with`` a folder holding
    qbxmlops*.xsd (default: the oracle, when found); ``clock`` returns an aware now();
    ``latency`` the modelled time per message and request, accumulated in
    ``modelled_seconds`` (and slept only when ``sleep``); ``payment_methods`` restricts
    PaymentMethodRef names (default: any is accepted); ``iterator_ttl_seconds`` how long an
    unused iterator lives.
    """

    def __init__(
        self,
        *,
        max_version: str = "13.0",
        country: str = "US",
        product_name: str | None = None,
        items: Mapping[str, ItemStock] | None = None,
        validate_with: Path | None = None,
        validate: bool = True,
        clock: Callable[[], datetime] | None = None,
        latency: LatencyModel | None = None,
        sleep: bool = False,
        payment_methods: Iterable[str] | None = None,
        iterator_ttl_seconds: float = 300.0,
        company_name: str = "Sample Company",
    ) -> None:
        self.max_version = max_version
        self.country = country
        self.product_name = product_name or _product_name(parse_version(max_version))
        self.company_name = company_name
        self.latency = latency or LatencyModel()
        self.sleep = sleep
        self.unreachable = False
        self.modelled_seconds = 0.0
        self._clock = clock or _default_clock
        self._schemas = _schemas_for(validate_with) if validate else None
        self._payment_methods = (
            {name.lower(): name for name in payment_methods}
            if payment_methods is not None
            else None
        )
        self._known_payment_methods: dict[str, tuple[str, str]] = {}
        self._iterator_ttl = timedelta(seconds=iterator_ttl_seconds)
        self._next_list_id = _LIST_ID_START
        self._next_txn_id = _TXN_ID_START
        self._next_txn_number = 1
        self._next_ref_number: dict[TxnKind, int] = dict.fromkeys(_TXN_SPECS, 1)
        self._customers: dict[str, CustomerRecord] = {}
        self._customer_ids: dict[str, str] = {}
        self._items: dict[str, ItemRecord] = {}
        self._item_ids: dict[str, str] = {}
        self._item_order: list[str] = []
        self._txns: dict[str, TransactionRecord] = {}
        self._payments: dict[str, PaymentRecord] = {}
        self._iterators: dict[str, _Iterator] = {}
        self._request_log: list[str] = []
        self._round_trips = 0
        self._lose_countdown: int | None = None
        self._lose_predicate: Callable[[str], bool] | None = None
        self._pending_failure: QuickBooksFailure | None = None
        self._dispatch = self._handlers()
        for stock in (items or {}).values():
            self.set_item(stock)

    # ----------------------------------------------------------------- inspection

    @property
    def customers(self) -> tuple[CustomerRecord, ...]:
        return tuple(self._customers[key] for key in sorted(self._customers))

    def customer(self, full_name: str) -> CustomerRecord | None:
        return self._customers.get(full_name.lower())

    @property
    def payments(self) -> tuple[PaymentRecord, ...]:
        return tuple(sorted(self._payments.values(), key=lambda p: p.txn_number))

    @property
    def items(self) -> tuple[ItemRecord, ...]:
        return tuple(self._items[key] for key in self._item_order)

    def item(self, full_name: str) -> ItemRecord | None:
        return self._items.get(full_name.lower())

    def transactions(self, kind: TxnKind) -> tuple[TransactionRecord, ...]:
        found = [txn for txn in self._txns.values() if txn.kind == kind]
        return tuple(sorted(found, key=lambda txn: txn.txn_number))

    def invoices(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("Invoice")

    def sales_receipts(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("SalesReceipt")

    def sales_orders(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("SalesOrder")

    def credit_memos(self) -> tuple[TransactionRecord, ...]:
        return self.transactions("CreditMemo")

    @property
    def request_log(self) -> tuple[str, ...]:
        """Every request element processed, in order (not the ones skipped by stopOnError)."""
        return tuple(self._request_log)

    @property
    def round_trips(self) -> int:
        return self._round_trips

    # ----------------------------------------------------------------- seeding

    def set_item(self, stock: ItemStock) -> ItemRecord:
        """Add or replace an item; a replaced item keeps its ListID and TimeCreated."""
        now = self._clock()
        key = stock.full_name.lower()
        modified = stock.time_modified or now
        existing = self._items.get(key)
        if existing is not None:
            record = replace(
                existing,
                stock=stock,
                time_modified=modified,
                edit_sequence=_edit_sequence(modified),
            )
        else:
            record = ItemRecord(
                list_id=self._new_list_id(now),
                stock=stock,
                time_created=min(now, modified),
                time_modified=modified,
                edit_sequence=_edit_sequence(modified),
            )
            bisect.insort(self._item_order, key)
        self._items[key] = record
        self._item_ids[record.list_id] = key
        return record

    def add_customer(self, full_name: str, **text_fields: str) -> CustomerRecord:
        """Seed a customer (parents of a 'Parent:Job' name are created as needed)."""
        parent_name, _, name = full_name.rpartition(":")
        parent = self.customer(parent_name) if parent_name else None
        if parent_name and parent is None:
            parent = self.add_customer(parent_name)
        now = self._clock()
        order = {tag: index for index, tag in enumerate(_CUSTOMER_RET)}
        fields = sorted(text_fields.items(), key=lambda pair: order[pair[0]])
        record = CustomerRecord(
            list_id=self._new_list_id(now),
            name=_to_cp1252(name),
            full_name=_to_cp1252(full_name),
            sublevel=full_name.count(":"),
            parent_list_id=parent.list_id if parent else None,
            is_active=True,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            balance=Decimal(0),
            fields=tuple((tag, _to_cp1252(value)) for tag, value in fields),
        )
        self._store_customer(record)
        return record

    def add_invoice(
        self,
        customer: str,
        amount: Decimal,
        *,
        ref_number: str | None = None,
        txn_id: str | None = None,
        txn_date: date | None = None,
    ) -> TransactionRecord:
        """Seed an open invoice of one amount-only line (for payment and query tests)."""
        owner = self.customer(customer) or self.add_customer(customer)
        now = self._clock()
        new_id = txn_id or self._new_txn_id(now)
        line = TransactionLine(
            self._new_txn_id(now), None, None, None, None, None, None, amount, _TAX_NON
        )
        record = TransactionRecord(
            kind="Invoice",
            txn_id=new_id,
            txn_number=self._take_txn_number(),
            customer=owner.full_name,
            customer_list_id=owner.list_id,
            txn_date=txn_date or now.date(),
            ref_number=ref_number if ref_number is not None else self._take_ref_number("Invoice"),
            lines=(line,),
            subtotal=amount,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
        )
        self._txns[new_id] = record
        self._change_balance(owner.list_id, amount)
        return record

    # ----------------------------------------------------------------- faults and sessions

    def lose_response_after(self, n: int = 1) -> None:
        """The n-th message processed from now is applied, but its response is lost."""
        if n < 1:
            raise ValueError("n counts messages from 1")
        self._lose_countdown = n

    def lose_response_when(self, predicate: Callable[[str], bool]) -> None:
        """The next message whose request text satisfies ``predicate`` loses its response."""
        self._lose_predicate = predicate

    def fail_next_with_hresult(self, hresult: str, message: str) -> None:
        """The next message fails as a whole (nothing applied), as when QuickBooks errors out."""
        self._pending_failure = QuickBooksFailure(hresult, message)

    def begin_session(self) -> None:
        """A new Web Connector run opens a new QuickBooks session: iterators do not survive it."""
        self._iterators.clear()

    # ----------------------------------------------------------------- the Web Connector's view

    def hcp_response(self) -> str:
        """HostQuery + CompanyQuery + PreferencesQuery answers, as in the first sendRequestXML."""
        messages = etree.Element("QBXMLMsgsRs")
        for request_id, tag, ret in (
            ("0", "HostQueryRs", self._host_ret()),
            ("1", "CompanyQueryRs", self._company_ret()),
            ("2", "PreferencesQueryRs", _preferences_ret()),
        ):
            rs = etree.SubElement(messages, tag, requestID=request_id)
            _set_status(rs, 0, "Info", _STATUS_OK)
            rs.append(ret)
        return _serialize(messages)

    def process(self, request_xml: str) -> str:
        """ProcessRequest: answer one qbXML message, or raise QuickBooksFailure / ResponseLost."""
        self._round_trips += 1
        if self._pending_failure is not None:
            failure, self._pending_failure = self._pending_failure, None
            raise failure
        requests, on_error = self._read_message(request_xml)
        messages = etree.Element("QBXMLMsgsRs")
        processed = 0
        for request in requests:
            self._request_log.append(request.tag)
            processed += 1
            rs = self._respond(request)
            messages.append(rs)
            if rs.get("statusSeverity") == "Error" and on_error != "continueOnError":
                break
        self._spend(processed)
        response = _serialize(messages)
        if self._response_lost(request_xml):
            raise ResponseLost(response)
        return response

    # ----------------------------------------------------------------- message level

    def _read_message(self, request_xml: str) -> tuple[list[etree._Element], str]:
        if any(ord(char) > 0xFFFF for char in request_xml):
            raise QuickBooksParseError("a character outside the Basic Multilingual Plane")
        try:
            root = parse_xml(request_xml)
        except (MalformedQbxml, UnicodeError) as exc:
            raise QuickBooksParseError(str(exc)) from exc
        if any(ord(char) > 0xFFFF for char in etree.tostring(root, encoding="unicode")):
            raise QuickBooksParseError("a character reference outside the Basic Multilingual Plane")
        version = self._declared_version(root)
        if self._schemas is not None:
            schema = self._schemas.for_version(version)
            if not schema.validate(root.getroottree()):
                problems = _structural_errors(schema.error_log)
                if problems:
                    raise QuickBooksParseError(problems[0])
        messages = _child(root, "QBXMLMsgsRq") if root.tag == "QBXML" else None
        if messages is None:
            raise QuickBooksParseError("no QBXML/QBXMLMsgsRq element")
        return _children(messages), messages.get("onError", "stopOnError")

    def _declared_version(self, root: etree._Element) -> Version:
        for sibling in root.itersiblings(preceding=True):
            if isinstance(sibling, etree._ProcessingInstruction) and sibling.target == "qbxml":
                match = _VERSION_PI.search(sibling.text or "")
                if match is None:
                    break
                try:
                    version = parse_version(match.group(1))
                except ValueError:
                    break
                if version > parse_version(self.max_version):
                    raise QuickBooksParseError(
                        f"qbXML {match.group(1)} is above {self.max_version}"
                    )
                return version
        raise QuickBooksParseError("no valid <?qbxml version?> processing instruction")

    def _spend(self, requests: int) -> None:
        seconds = self.latency.seconds_for(requests)
        self.modelled_seconds += seconds
        if self.sleep and seconds > 0:
            time.sleep(seconds)

    def _response_lost(self, request_xml: str) -> bool:
        if self._lose_countdown is not None:
            self._lose_countdown -= 1
            if self._lose_countdown == 0:
                self._lose_countdown = None
                return True
        if self._lose_predicate is not None and self._lose_predicate(request_xml):
            self._lose_predicate = None
            return True
        return False

    def _respond(self, request: etree._Element) -> etree._Element:
        handler = self._dispatch.get(request.tag)
        try:
            if handler is None:
                raise _Status(
                    1030, "Error", "This request is not supported by this implementation."
                )
            answer = handler(request)
        except _Status as status:
            answer = _Answer([], status.code, status.severity, status.message)
        rs_tag = request.tag[:-2] + "Rs" if request.tag.endswith("Rq") else request.tag + "Rs"
        rs = etree.Element(rs_tag)
        if request.get("requestID") is not None:
            rs.set("requestID", request.get("requestID", ""))
        _set_status(rs, answer.code, answer.severity, answer.message)
        if answer.iterator is not None:
            rs.set("iteratorRemainingCount", str(answer.iterator[0]))
            rs.set("iteratorID", answer.iterator[1])
        include = set(_texts(request, "IncludeRetElement"))
        for ret in answer.rets:
            if include:
                for child in _children(ret):
                    if child.tag not in include:
                        ret.remove(child)
            rs.append(ret)
        return rs

    def _handlers(self) -> dict[str, Callable[[etree._Element], _Answer]]:
        return {
            "HostQueryRq": lambda rq: _Answer([self._host_ret()]),
            "CompanyQueryRq": lambda rq: _Answer([self._company_ret()]),
            "PreferencesQueryRq": lambda rq: _Answer([_preferences_ret()]),
            "CustomerQueryRq": self._customer_query,
            "CustomerAddRq": self._customer_add,
            "InvoiceAddRq": lambda rq: self._txn_add(rq, "Invoice"),
            "SalesReceiptAddRq": lambda rq: self._txn_add(rq, "SalesReceipt"),
            "SalesOrderAddRq": lambda rq: self._txn_add(rq, "SalesOrder"),
            "CreditMemoAddRq": lambda rq: self._txn_add(rq, "CreditMemo"),
            "InvoiceQueryRq": lambda rq: self._txn_query(rq, "Invoice"),
            "SalesReceiptQueryRq": lambda rq: self._txn_query(rq, "SalesReceipt"),
            "SalesOrderQueryRq": lambda rq: self._txn_query(rq, "SalesOrder"),
            "CreditMemoQueryRq": lambda rq: self._txn_query(rq, "CreditMemo"),
            "ReceivePaymentAddRq": self._payment_add,
            "ReceivePaymentQueryRq": self._payment_query,
            "ItemInventoryQueryRq": lambda rq: self._item_query(rq, "ItemInventory"),
            "ItemInventoryAssemblyQueryRq": lambda rq: self._item_query(
                rq, "ItemInventoryAssembly"
            ),
        }

    # ----------------------------------------------------------------- ids and bookkeeping

    def _new_list_id(self, now: datetime) -> str:
        value, self._next_list_id = self._next_list_id, self._next_list_id + 1
        return f"{value:08X}-{int(now.timestamp())}"

    def _new_txn_id(self, now: datetime) -> str:
        value, self._next_txn_id = self._next_txn_id, self._next_txn_id + 1
        return f"{value:X}-{int(now.timestamp())}"

    def _take_txn_number(self) -> int:
        number, self._next_txn_number = self._next_txn_number, self._next_txn_number + 1
        return number

    def _take_ref_number(self, kind: TxnKind) -> str:
        number = self._next_ref_number[kind]
        self._next_ref_number[kind] = number + 1
        return str(number)

    def _store_customer(self, record: CustomerRecord) -> None:
        self._customers[record.full_name.lower()] = record
        self._customer_ids[record.list_id] = record.full_name.lower()

    def _change_balance(self, customer_list_id: str, delta: Decimal) -> None:
        key = self._customer_ids[customer_list_id]
        record = self._customers[key]
        self._customers[key] = replace(record, balance=record.balance + delta)

    def _payment_method_ref(self, name: str) -> Aggregate:
        key = name.lower()
        if key not in self._known_payment_methods:
            self._known_payment_methods[key] = (self._new_list_id(self._clock()), name)
        list_id, full_name = self._known_payment_methods[key]
        return _ref(list_id, full_name)

    # ----------------------------------------------------------------- lookups

    def _find_customer(self, ref: etree._Element | None, label: str) -> CustomerRecord:
        list_id, full_name = _ref_parts(ref)
        key = self._customer_ids.get(list_id or "") or (full_name or "").lower()
        record = self._customers.get(key)
        if record is None:
            shown = full_name or list_id or ""
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks Customer "{shown}" in the {label}.'
                + _NOT_IN_LIST,
            )
        return record

    def _find_item(self, ref: etree._Element, label: str) -> ItemRecord:
        list_id, full_name = _ref_parts(ref)
        key = self._item_ids.get(list_id or "") or (full_name or "").lower()
        record = self._items.get(key)
        if record is None:
            shown = full_name or list_id or ""
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks Item "{shown}" in the {label}.'
                + _NOT_IN_LIST,
            )
        return record

    def _check_payment_method(self, ref: etree._Element | None, label: str) -> Aggregate | None:
        if ref is None:
            return None
        list_id, full_name = _ref_parts(ref)
        name = full_name or ""
        if list_id and not full_name:
            name = next(
                (known[1] for known in self._known_payment_methods.values() if known[0] == list_id),
                "",
            )
        allowed = self._payment_methods
        if not name or (allowed is not None and name.lower() not in allowed):
            raise _Status(
                3140,
                "Error",
                "There is an invalid reference to QuickBooks PaymentMethod "
                f'"{full_name or list_id}" in the {label}.' + _NOT_IN_LIST,
            )
        return self._payment_method_ref(allowed[name.lower()] if allowed is not None else name)

    # ----------------------------------------------------------------- customers

    def _customer_add(self, request: etree._Element) -> _Answer:
        add = _required_child(request, "CustomerAdd")
        _check_lengths(add, _CUSTOMER_LIMITS)
        name = _text(add, "Name") or ""
        parent = self._customer_parent(_child(add, "ParentRef"))
        full_name = f"{parent.full_name}:{name}" if parent else name
        if full_name.lower() in self._customers:
            raise _Status(
                3100, "Error", f'The name "{name}" of the list element is already in use.'
            )
        now = self._clock()
        record = CustomerRecord(
            list_id=self._new_list_id(now),
            name=name,
            full_name=full_name,
            sublevel=parent.sublevel + 1 if parent else 0,
            parent_list_id=parent.list_id if parent else None,
            is_active=(_text(add, "IsActive") or "true").lower() in ("true", "1"),
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            balance=Decimal(0),
            fields=tuple(_passthrough(add, _CUSTOMER_RET, _CUSTOMER_COMPUTED)),
        )
        self._store_customer(record)
        return _Answer([self._customer_ret(record)])

    def _customer_parent(self, ref: etree._Element | None) -> CustomerRecord | None:
        if ref is None:
            return None
        list_id, full_name = _ref_parts(ref)
        key = self._customer_ids.get(list_id or "") or (full_name or "").lower()
        parent = self._customers.get(key)
        if parent is None:
            raise _Status(
                3130,
                "Error",
                f'There is an invalid reference to a parent "{full_name or list_id}" in the '
                "Customers list." + _NOT_IN_LIST,
            )
        return parent

    def _customer_ret(self, record: CustomerRecord) -> etree._Element:
        pairs: list[tuple[str, _Value]] = [
            ("ListID", record.list_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("Name", record.name),
            ("FullName", record.full_name),
            ("IsActive", _bool(record.is_active)),
            ("Sublevel", str(record.sublevel)),
            ("Balance", _money(record.balance)),
            ("TotalBalance", _money(record.balance)),
        ]
        if record.parent_list_id is not None:
            parent = self._customers[self._customer_ids[record.parent_list_id]]
            pairs.append(("ParentRef", _ref(parent.list_id, parent.full_name)))
        pairs.extend(record.fields)
        pairs.extend(_address_blocks(record.fields))
        if _field(record.fields, "JobStatus") is None:
            pairs.append(("JobStatus", "None"))
        return _ordered("CustomerRet", _CUSTOMER_RET, pairs)

    def _customer_query(self, request: etree._Element) -> _Answer:
        list_ids, names = _texts(request, "ListID"), _texts(request, "FullName")
        if list_ids or names:
            return self._named_customers(list_ids, names)
        return self._run_query(
            request, lambda: self._filtered_customers(request), self._customer_by_key
        )

    def _named_customers(self, list_ids: list[str], names: list[str]) -> _Answer:
        missing_id = next((lid for lid in list_ids if lid not in self._customer_ids), None)
        if missing_id is not None:
            raise _Status(
                3120,
                "Error",
                f'Object "{missing_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
            )
        found = [self._customers[self._customer_ids[lid]] for lid in list_ids]
        found += [self._customers[n.lower()] for n in names if n.lower() in self._customers]
        rets = [self._customer_ret(record) for record in found]
        missing = next((n for n in names if n.lower() not in self._customers), None)
        if missing is not None:
            return _Answer(
                rets,
                500,
                "Warn",
                "The query request has not been fully completed. There was a required element "
                f'("{missing}") that could not be found in QuickBooks.',
            )
        return _Answer(rets)

    def _customer_by_key(self, key: str) -> etree._Element | None:
        record = self._customers.get(key)
        return self._customer_ret(record) if record else None

    def _filtered_customers(self, request: etree._Element) -> list[str]:
        now = self._clock()
        keep = _list_filters(request, now)
        return [
            key
            for key in sorted(self._customers)
            if keep(
                self._customers[key].full_name,
                self._customers[key].is_active,
                self._customers[key].time_modified,
            )
        ]

    # ----------------------------------------------------------------- items

    def _item_query(self, request: etree._Element, kind: ItemKind) -> _Answer:
        list_ids, names = _texts(request, "ListID"), _texts(request, "FullName")
        if list_ids or names:
            return self._named_items(kind, list_ids, names)
        keep = _list_filters(request, self._clock())

        def matching() -> list[str]:
            return [
                key
                for key in self._item_order
                if self._items[key].stock.kind == kind
                and keep(
                    self._items[key].full_name,
                    self._items[key].stock.is_active,
                    self._items[key].time_modified,
                )
            ]

        return self._run_query(request, matching, self._item_by_key)

    def _named_items(self, kind: ItemKind, list_ids: list[str], names: list[str]) -> _Answer:
        missing_id = next(
            (lid for lid in list_ids if self._item_kind(self._item_ids.get(lid)) != kind), None
        )
        if missing_id is not None:
            raise _Status(
                3120,
                "Error",
                f'Object "{missing_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
            )
        keys = [self._item_ids[lid] for lid in list_ids]
        keys += [n.lower() for n in names if self._item_kind(n.lower()) == kind]
        rets = [self._item_ret(self._items[key]) for key in keys]
        missing = next((n for n in names if self._item_kind(n.lower()) != kind), None)
        if missing is not None:
            return _Answer(
                rets,
                500,
                "Warn",
                "The query request has not been fully completed. There was a required element "
                f'("{missing}") that could not be found in QuickBooks.',
            )
        return _Answer(rets)

    def _item_kind(self, key: str | None) -> ItemKind | None:
        record = self._items.get(key or "")
        return record.stock.kind if record else None

    def _item_by_key(self, key: str) -> etree._Element | None:
        record = self._items.get(key)
        return self._item_ret(record) if record else None

    def _item_ret(self, record: ItemRecord) -> etree._Element:
        stock = record.stock
        pairs: list[tuple[str, _Value]] = [
            ("ListID", record.list_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("Name", _to_cp1252(record.name)),
            ("FullName", _to_cp1252(record.full_name)),
            ("IsActive", _bool(stock.is_active)),
            ("Sublevel", str(record.sublevel)),
            ("SalesPrice", _price(stock.sales_price)),
            ("IncomeAccountRef", _SALES_INCOME),
            ("PurchaseCost", "0.00"),
            ("COGSAccountRef", _COGS),
            ("AssetAccountRef", _INVENTORY_ASSET),
            ("QuantityOnHand", _quantity(stock.quantity_on_hand)),
            ("AverageCost", "0.00"),
            ("QuantityOnOrder", _quantity(stock.quantity_on_order)),
            ("QuantityOnSalesOrder", _quantity(stock.quantity_on_sales_order)),
        ]
        if stock.sales_desc is not None:
            pairs.append(("SalesDesc", _to_cp1252(stock.sales_desc)))
        if record.sublevel:
            parent_name = record.full_name.rsplit(":", 1)[0]
            parent = self._items.get(parent_name.lower())
            parent_ref: Aggregate = (
                _ref(parent.list_id, parent.full_name) if parent else (("FullName", parent_name),)
            )
            pairs.append(("ParentRef", parent_ref))
        if stock.kind == "ItemInventoryAssembly":
            return _ordered("ItemInventoryAssemblyRet", _ITEM_ASSEMBLY_RET, pairs)
        return _ordered("ItemInventoryRet", _ITEM_INVENTORY_RET, pairs)

    # ----------------------------------------------------------------- queries and iterators

    def _run_query(
        self,
        request: etree._Element,
        matching: Callable[[], list[str]],
        render: Callable[[str], etree._Element | None],
    ) -> _Answer:
        """Filters, MaxReturned and iterators, shared by every list and transaction query."""
        iterator = request.get("iterator")
        max_returned = _max_returned(request)
        if iterator == "Continue":
            return self._continue_iterator(request, render)
        keys = matching()
        if iterator == "Start":
            page_size = max_returned if max_returned is not None else len(keys)
            iterator_id = "{" + str(uuid.uuid4()) + "}"
            page, rest = keys[:page_size], keys[page_size:]
            if rest:
                self._iterators[iterator_id] = _Iterator(request.tag, rest, 0, self._clock())
            rets = _render_all(page, render)
            return _answer_for(rets, (len(rest), iterator_id))
        limited = keys if max_returned is None else keys[:max_returned]
        return _answer_for(_render_all(limited, render), None)

    def _continue_iterator(
        self, request: etree._Element, render: Callable[[str], etree._Element | None]
    ) -> _Answer:
        iterator_id = request.get("iteratorID", "")
        state = self._iterators.get(iterator_id)
        now = self._clock()
        if (
            state is None
            or state.request_tag != request.tag
            or now - state.last_used > self._iterator_ttl
        ):
            self._iterators.pop(iterator_id, None)
            raise _Status(3391, "Error", f'The iteratorID "{iterator_id}" is not valid.')
        page_size = _max_returned(request) or len(state.keys)
        page = state.keys[state.position : state.position + page_size]
        state.position += len(page)
        state.last_used = now
        remaining = len(state.keys) - state.position
        if remaining == 0:
            del self._iterators[iterator_id]
        return _answer_for(_render_all(page, render), (remaining, iterator_id))

    # ----------------------------------------------------------------- sales transactions

    def _txn_add(self, request: etree._Element, kind: TxnKind) -> _Answer:
        spec = _TXN_SPECS[kind]
        add = _required_child(request, f"{kind}Add")
        _check_lengths(add, _TXN_LIMITS)
        customer = self._find_customer(_child(add, "CustomerRef"), spec.label)
        resolved = [
            (
                line,
                self._find_item(ref, spec.label)
                if (ref := _child(line, "ItemRef")) is not None
                else None,
            )
            for line in _children(add)
            if line.tag == f"{kind}LineAdd"
        ]
        group = _child(add, f"{kind}LineGroupAdd")
        if group is not None:
            _, group_name = _ref_parts(_child(group, "ItemGroupRef"))
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks ItemGroup "{group_name}" in the '
                f"{spec.label}." + _NOT_IN_LIST,
            )
        method = None
        if kind == "SalesReceipt":
            method = self._check_payment_method(_child(add, "PaymentMethodRef"), spec.label)
        now = self._clock()
        record = self._new_transaction(kind, add, customer, resolved, method, now)
        self._apply_stock(kind, record)
        self._txns[record.txn_id] = record
        if kind == "Invoice":
            self._change_balance(customer.list_id, record.total)
        elif kind == "CreditMemo":
            self._change_balance(customer.list_id, -record.total)
        return _Answer([self._txn_ret(record, lines=True, linked=False)])

    def _new_transaction(
        self,
        kind: TxnKind,
        add: etree._Element,
        customer: CustomerRecord,
        resolved: list[tuple[etree._Element, ItemRecord | None]],
        payment_method: Aggregate | None,
        now: datetime,
    ) -> TransactionRecord:
        txn_id = self._new_txn_id(now)
        lines: list[TransactionLine] = []
        running = Decimal(0)
        for line, item in resolved:
            built = self._new_line(kind, line, item, running, now)
            running += built.amount
            lines.append(built)
        txn_date_text = _text(add, "TxnDate")
        ref_number = _text(add, "RefNumber")
        fields = _passthrough(add, _TXN_SPECS[kind].ret_order, _TXN_COMPUTED)
        if payment_method is not None:
            fields = [(t, v) for t, v in fields if t != "PaymentMethodRef"]
            fields.append(("PaymentMethodRef", payment_method))
        return TransactionRecord(
            kind=kind,
            txn_id=txn_id,
            txn_number=self._take_txn_number(),
            customer=customer.full_name,
            customer_list_id=customer.list_id,
            txn_date=_parse_date(txn_date_text) if txn_date_text else now.date(),
            ref_number=ref_number if ref_number is not None else self._take_ref_number(kind),
            lines=tuple(lines),
            subtotal=running,
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
            fields=tuple(fields),
        )

    def _new_line(
        self,
        kind: TxnKind,
        line: etree._Element,
        item: ItemRecord | None,
        running: Decimal,
        now: datetime,
    ) -> TransactionLine:
        quantity = _decimal(_text(line, "Quantity"))
        rate = _decimal(_text(line, "Rate"))
        rate_percent = _decimal(_text(line, "RatePercent"))
        amount = _decimal(_text(line, "Amount"))
        if amount is None:
            amount = _line_amount(quantity, rate, rate_percent, running, item)
        tax_ref = _child(line, "SalesTaxCodeRef")
        tax_code: Aggregate = _TAX_NON
        if tax_ref is not None:
            tax_code = tuple((c.tag, (c.text or "").strip()) for c in _children(tax_ref))
        return TransactionLine(
            txn_line_id=self._new_txn_id(now),
            item=item.full_name if item else None,
            item_list_id=item.list_id if item else None,
            desc=_text(line, "Desc"),
            quantity=quantity,
            rate=rate,
            rate_percent=rate_percent,
            amount=amount.quantize(_CENT, rounding=ROUND_HALF_UP),
            sales_tax_code=tax_code,
            fields=tuple(_passthrough(line, _TXN_SPECS[kind].line_order, _LINE_COMPUTED)),
        )

    def _apply_stock(self, kind: TxnKind, record: TransactionRecord) -> None:
        """Sales move quantities; QuickBooks leaves the item's TimeModified alone."""
        for line in record.lines:
            item = self._items.get((line.item or "").lower())
            if item is None or item.stock.kind not in ("ItemInventory", "ItemInventoryAssembly"):
                continue
            quantity = line.quantity if line.quantity is not None else Decimal(1)
            stock = item.stock
            if kind in ("Invoice", "SalesReceipt"):
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand - quantity)
            elif kind == "CreditMemo":
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand + quantity)
            else:
                stock = replace(
                    stock, quantity_on_sales_order=stock.quantity_on_sales_order + quantity
                )
            self._items[stock.full_name.lower()] = replace(item, stock=stock)

    def _txn_ret(self, record: TransactionRecord, *, lines: bool, linked: bool) -> etree._Element:
        spec = _TXN_SPECS[record.kind]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", record.txn_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("TxnNumber", str(record.txn_number)),
            ("CustomerRef", _ref(record.customer_list_id, record.customer)),
            ("TxnDate", record.txn_date.isoformat()),
            ("Subtotal", _money(record.subtotal)),
            ("SalesTaxPercentage", "0.00"),
            ("SalesTaxTotal", "0.00"),
        ]
        if record.ref_number is not None:
            pairs.append(("RefNumber", record.ref_number))
        pairs.extend(record.fields)
        pairs.extend(_address_blocks(record.fields))
        pairs.extend(_txn_defaults(spec, record))
        pairs.extend(_txn_totals(record))
        if linked and record.payments:
            pairs.append(("LinkedTxn", [self._linked_payment(p) for p in record.payments]))
        if lines:
            tag = f"{record.kind}LineRet"
            pairs.append(
                (tag, [_line_ret(tag, spec.line_order, line, record.kind) for line in record.lines])
            )
        return _ordered(f"{record.kind}Ret", spec.ret_order, pairs)

    def _linked_payment(self, part: AppliedPayment) -> etree._Element:
        payment = self._payments[part.payment_txn_id]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", payment.txn_id),
            ("TxnType", "ReceivePayment"),
            ("TxnDate", payment.txn_date.isoformat()),
            ("LinkType", "AMTTYPE"),
            ("Amount", _money(-part.amount)),
        ]
        if payment.ref_number:
            pairs.append(("RefNumber", payment.ref_number))
        return _ordered("LinkedTxn", _LINKED_TXN, pairs)

    def _txn_query(self, request: etree._Element, kind: TxnKind) -> _Answer:
        records = [txn for txn in self._txns.values() if txn.kind == kind]
        lines = _text(request, "IncludeLineItems") in ("true", "1")
        linked = _text(request, "IncludeLinkedTxns") in ("true", "1")

        def render(txn_id: str) -> etree._Element | None:
            txn = self._txns.get(txn_id)
            return self._txn_ret(txn, lines=lines, linked=linked) if txn else None

        txn_ids = _texts(request, "TxnID")
        if txn_ids:
            return _by_txn_ids(txn_ids, {r.txn_id for r in records}, render)
        refs = _texts(request, "RefNumber")
        exact = _texts(request, "RefNumberCaseSensitive")
        if refs or exact:
            wanted = {ref.lower() for ref in refs}
            found = [
                r.txn_id
                for r in sorted(records, key=lambda r: r.txn_number)
                if (r.ref_number or "").lower() in wanted or r.ref_number in exact
            ]
            return _answer_for(_render_all(found, render), None)
        keep = self._txn_filters(request)
        ordered = sorted(records, key=lambda r: r.txn_number)
        return self._run_query(request, lambda: [r.txn_id for r in ordered if keep(r)], render)

    def _txn_filters(self, request: etree._Element) -> Callable[[TransactionRecord], bool]:
        common = self._common_txn_filter(request)
        paid = _text(request, "PaidStatus") or "All"

        def keep(record: TransactionRecord) -> bool:
            if not common(
                record.customer, record.ref_number, record.txn_date, record.time_modified
            ):
                return False
            balance = record.balance
            if paid == "PaidOnly":
                return balance is not None and balance == 0
            if paid == "NotPaidOnly":
                return balance is not None and balance != 0
            return True

        return keep

    def _common_txn_filter(
        self, request: etree._Element
    ) -> Callable[[str, str | None, date, datetime], bool]:
        now = self._clock()
        modified = _child(request, "ModifiedDateRangeFilter")
        from_modified = to_modified = None
        if modified is not None:
            if (text := _text(modified, "FromModifiedDate")) is not None:
                from_modified = _parse_datetime(text, now, end_of_day=False)
            if (text := _text(modified, "ToModifiedDate")) is not None:
                to_modified = _parse_datetime(text, now, end_of_day=True)
        txn_dates = _child(request, "TxnDateRangeFilter")
        from_date = to_date = None
        if txn_dates is not None:
            if (text := _text(txn_dates, "FromTxnDate")) is not None:
                from_date = _parse_date(text)
            if (text := _text(txn_dates, "ToTxnDate")) is not None:
                to_date = _parse_date(text)
        entities = self._entity_names(_child(request, "EntityFilter"))
        ref_filter = _child(request, "RefNumberFilter")
        ref_range = _child(request, "RefNumberRangeFilter")

        def keep(customer: str, ref: str | None, txn_date: date, time_modified: datetime) -> bool:
            checks = (
                from_modified is None or time_modified >= from_modified,
                to_modified is None or time_modified <= to_modified,
                from_date is None or txn_date >= from_date,
                to_date is None or txn_date <= to_date,
                entities is None or _in_entities(customer, entities),
                ref_filter is None
                or _matches_criterion(
                    ref or "",
                    _text(ref_filter, "MatchCriterion") or "Contains",
                    _text(ref_filter, "RefNumber") or "",
                ),
                ref_range is None or _in_range(ref or "", ref_range, "RefNumber"),
            )
            return all(checks)

        return keep

    def _entity_names(self, entity_filter: etree._Element | None) -> list[tuple[str, bool]] | None:
        """(lower-case FullName, with children) pairs of an EntityFilter, or None without one."""
        if entity_filter is None:
            return None
        names: list[tuple[str, bool]] = []
        for child in _children(entity_filter):
            text = _to_cp1252((child.text or "").strip())
            with_children = child.tag.endswith("WithChildren")
            if child.tag.startswith("ListID"):
                key = self._customer_ids.get(text)
                if key is not None:
                    names.append((key, with_children))
            else:
                names.append((text.lower(), with_children))
        return names

    # ----------------------------------------------------------------- payments

    def _payment_add(self, request: etree._Element) -> _Answer:
        add = _required_child(request, "ReceivePaymentAdd")
        _check_lengths(add, _PAYMENT_LIMITS)
        customer = self._find_customer(_child(add, "CustomerRef"), "ReceivePayment")
        method = self._check_payment_method(_child(add, "PaymentMethodRef"), "ReceivePayment")
        now = self._clock()
        txn_id = self._new_txn_id(now)
        parts = self._applications(add, customer, txn_id)
        applied_total = sum((part.amount for part in parts), Decimal(0))
        stated = _decimal(_text(add, "TotalAmount"))
        total = stated if stated is not None else applied_total
        if applied_total > total:
            raise _Status(
                3180,
                "Error",
                "There was an error when saving a ReceivePayment.  QuickBooks error message: "
                "The amount applied is more than the payment amount.",
            )
        txn_date_text = _text(add, "TxnDate")
        record = PaymentRecord(
            txn_id=txn_id,
            txn_number=self._take_txn_number(),
            customer=customer.full_name,
            customer_list_id=customer.list_id,
            txn_date=_parse_date(txn_date_text) if txn_date_text else now.date(),
            ref_number=_text(add, "RefNumber"),
            total=total.quantize(_CENT, rounding=ROUND_HALF_UP),
            payment_method=dict(method)["FullName"] if method else None,
            memo=_text(add, "Memo"),
            applied=tuple(parts),
            time_created=now,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
        )
        self._payments[txn_id] = record
        for part in parts:
            invoice = self._txns[part.invoice_txn_id]
            self._txns[invoice.txn_id] = replace(invoice, payments=(*invoice.payments, part))
        self._change_balance(customer.list_id, -record.total)
        return _Answer([self._payment_ret(record, applied=True)])

    def _applications(
        self, add: etree._Element, customer: CustomerRecord, payment_txn_id: str
    ) -> list[AppliedPayment]:
        if (_text(add, "IsAutoApply") or "").lower() in ("true", "1"):
            return self._auto_apply(add, customer, payment_txn_id)
        parts: list[AppliedPayment] = []
        for application in (c for c in _children(add) if c.tag == "AppliedToTxnAdd"):
            txn_id = _text(application, "TxnID") or ""
            invoice = self._txns.get(txn_id)
            if (
                invoice is None
                or invoice.kind != "Invoice"
                or invoice.customer_list_id != customer.list_id
            ):
                raise _Status(
                    3120,
                    "Error",
                    f'Object "{txn_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
                )
            amount = _decimal(_text(application, "PaymentAmount")) or Decimal(0)
            already = sum((p.amount for p in parts if p.invoice_txn_id == txn_id), Decimal(0))
            if amount + already > (invoice.balance or Decimal(0)):
                raise _Status(
                    3180,
                    "Error",
                    "There was an error when saving a ReceivePayment.  QuickBooks error message: "
                    f'The amount applied to "{invoice.ref_number}" is more than its balance.',
                )
            parts.append(AppliedPayment(payment_txn_id, txn_id, amount))
        return parts

    def _auto_apply(
        self, add: etree._Element, customer: CustomerRecord, payment_txn_id: str
    ) -> list[AppliedPayment]:
        left = _decimal(_text(add, "TotalAmount")) or Decimal(0)
        parts: list[AppliedPayment] = []
        open_invoices = sorted(
            (
                t
                for t in self._txns.values()
                if t.kind == "Invoice" and t.customer_list_id == customer.list_id and t.balance
            ),
            key=lambda t: (t.txn_date, t.txn_number),
        )
        for invoice in open_invoices:
            amount = min(left, invoice.balance or Decimal(0))
            if amount <= 0:
                break
            parts.append(AppliedPayment(payment_txn_id, invoice.txn_id, amount))
            left -= amount
        return parts

    def _payment_ret(self, record: PaymentRecord, *, applied: bool) -> etree._Element:
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", record.txn_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("TxnNumber", str(record.txn_number)),
            ("CustomerRef", _ref(record.customer_list_id, record.customer)),
            ("ARAccountRef", _AR_ACCOUNT),
            ("TxnDate", record.txn_date.isoformat()),
            ("TotalAmount", _money(record.total)),
            ("DepositToAccountRef", _UNDEPOSITED),
            ("UnusedPayment", _money(record.unused)),
            ("UnusedCredits", "0.00"),
        ]
        if record.ref_number is not None:
            pairs.append(("RefNumber", record.ref_number))
        if record.payment_method is not None:
            pairs.append(("PaymentMethodRef", self._payment_method_ref(record.payment_method)))
        if record.memo is not None:
            pairs.append(("Memo", record.memo))
        if applied and record.applied:
            pairs.append(("AppliedToTxnRet", [self._applied_ret(part) for part in record.applied]))
        return _ordered("ReceivePaymentRet", _PAYMENT_RET, pairs)

    def _applied_ret(self, part: AppliedPayment) -> etree._Element:
        invoice = self._txns[part.invoice_txn_id]
        pairs: list[tuple[str, _Value]] = [
            ("TxnID", invoice.txn_id),
            ("TxnType", "Invoice"),
            ("TxnDate", invoice.txn_date.isoformat()),
            ("BalanceRemaining", _money(invoice.balance or Decimal(0))),
            ("Amount", _money(part.amount)),
        ]
        if invoice.ref_number is not None:
            pairs.append(("RefNumber", invoice.ref_number))
        return _ordered("AppliedToTxnRet", _APPLIED_TO_TXN_RET, pairs)

    def _payment_query(self, request: etree._Element) -> _Answer:
        include = _text(request, "IncludeLineItems") in ("true", "1")

        def render(txn_id: str) -> etree._Element | None:
            payment = self._payments.get(txn_id)
            return self._payment_ret(payment, applied=include) if payment else None

        ordered = sorted(self._payments.values(), key=lambda p: p.txn_number)
        txn_ids = _texts(request, "TxnID")
        if txn_ids:
            return _by_txn_ids(txn_ids, set(self._payments), render)
        refs = {ref.lower() for ref in _texts(request, "RefNumber")}
        exact = set(_texts(request, "RefNumberCaseSensitive"))
        if refs or exact:
            found = [
                p.txn_id
                for p in ordered
                if (p.ref_number or "").lower() in refs or p.ref_number in exact
            ]
            return _answer_for(_render_all(found, render), None)
        keep = self._common_txn_filter(request)
        return self._run_query(
            request,
            lambda: [
                p.txn_id
                for p in ordered
                if keep(p.customer, p.ref_number, p.txn_date, p.time_modified)
            ],
            render,
        )

    # ----------------------------------------------------------------- host, company, preferences

    def _host_ret(self) -> etree._Element:
        host = etree.Element("HostRet")
        major = parse_version(self.max_version)
        for tag, text in (
            ("ProductName", self.product_name),
            ("MajorVersion", str(major[0] + 11)),
            ("MinorVersion", "0"),
            ("Country", self.country),
        ):
            etree.SubElement(host, tag).text = text
        for version in KNOWN_QBXML_VERSIONS:
            if parse_version(version) <= major:
                etree.SubElement(host, "SupportedQBXMLVersion").text = version
        etree.SubElement(host, "IsAutomaticLogin").text = "false"
        etree.SubElement(host, "QBFileMode").text = "SingleUser"
        return host

    def _company_ret(self) -> etree._Element:
        company = etree.Element("CompanyRet")
        for tag, text in (
            ("IsSampleCompany", "false"),
            ("CompanyName", self.company_name),
            ("LegalCompanyName", self.company_name),
        ):
            etree.SubElement(company, tag).text = text
        address = etree.SubElement(company, "Address")
        for tag, text in (("City", "Mountain View"), ("State", "CA"), ("Country", self.country)):
            etree.SubElement(address, tag).text = text
        for tag, text in (
            ("FirstMonthFiscalYear", "January"),
            ("FirstMonthIncomeTaxYear", "January"),
            ("TaxForm", "OtherOrNone"),
        ):
            etree.SubElement(company, tag).text = text
        return company


# --------------------------------------------------------------------- module helpers


def _product_name(version: Version) -> str:
    year = {11: 2012, 12: 2013, 13: 2014, 14: 2015, 15: 2016}.get(version[0], 2017)
    return f"QuickBooks: Premier Edition {year}"


def _schemas_for(folder: Path | None) -> QbxmlSchemas | None:
    if folder is None:
        return default_schemas()
    return QbxmlSchemas(folder)


def _structural_errors(log: etree._ListErrorLog) -> list[str]:
    """Schema errors QuickBooks rejects at parse time; over-long strings are 3070 per request."""
    too_long = {entry.path for entry in log if entry.type_name == _MAX_LENGTH_ERROR}
    return [
        f"{entry.path}: {entry.message}"
        for entry in log
        if entry.type_name != _MAX_LENGTH_ERROR and entry.path not in too_long
    ]


def _edit_sequence(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _set_status(rs: etree._Element, code: int, severity: str, message: str) -> None:
    rs.set("statusCode", str(code))
    rs.set("statusSeverity", severity)
    rs.set("statusMessage", message)


def _serialize(messages: etree._Element) -> str:
    """The response text, laid out like QuickBooks': one element per line, no indentation."""
    root = etree.Element("QBXML")
    root.append(messages)
    for element in root.iter():
        if len(element):
            element.text = "\n"
        element.tail = "\n"
    return '<?xml version="1.0" ?>\n' + etree.tostring(root, encoding="unicode")


def _preferences_ret() -> etree._Element:
    preferences = etree.Element("PreferencesRet")
    groups = (
        (
            "AccountingPreferences",
            (
                ("IsUsingAccountNumbers", "false"),
                ("IsRequiringAccounts", "true"),
                ("IsUsingClassTracking", "false"),
                ("IsUsingAuditTrail", "true"),
                ("IsAssigningJournalEntryNumbers", "true"),
            ),
        ),
        ("MultiCurrencyPreferences", (("IsMultiCurrencyOn", "false"),)),
        (
            "PurchasesAndVendorsPreferences",
            (
                ("IsUsingInventory", "true"),
                ("DaysBillsAreDue", "30"),
                ("IsAutomaticallyUsingDiscounts", "false"),
            ),
        ),
        (
            "SalesAndCustomersPreferences",
            (
                ("IsTrackingReimbursedExpensesAsIncome", "false"),
                ("IsAutoApplyingPayments", "true"),
            ),
        ),
    )
    for group, values in groups:
        element = etree.SubElement(preferences, group)
        for tag, text in values:
            etree.SubElement(element, tag).text = text
    return preferences


def _required_child(request: etree._Element, tag: str) -> etree._Element:
    child = _child(request, tag)
    if child is None:
        raise _Status(3000, "Error", f'The request has no "{tag}" element.')
    return child


def _ref_parts(ref: etree._Element | None) -> tuple[str | None, str | None]:
    if ref is None:
        return None, None
    return _text(ref, "ListID"), _text(ref, "FullName")


def _address_blocks(fields: Iterable[Field]) -> list[tuple[str, _Value]]:
    blocks: list[tuple[str, _Value]] = []
    for tag, value in fields:
        if tag in ("BillAddress", "ShipAddress") and isinstance(value, tuple):
            block = _address_block(value)
            if block:
                blocks.append((f"{tag}Block", block))
    return blocks


def _line_amount(
    quantity: Decimal | None,
    rate: Decimal | None,
    rate_percent: Decimal | None,
    running: Decimal,
    item: ItemRecord | None,
) -> Decimal:
    """What QuickBooks computes when a line gives no Amount."""
    if rate_percent is not None:
        return running * rate_percent / 100
    price = rate if rate is not None else (item.stock.sales_price if item else Decimal(0))
    return (quantity if quantity is not None else Decimal(1)) * price


def _line_ret(
    tag: str, order: Sequence[str], line: TransactionLine, kind: TxnKind
) -> etree._Element:
    pairs: list[tuple[str, _Value]] = [
        ("TxnLineID", line.txn_line_id),
        ("Amount", _money(line.amount)),
        ("SalesTaxCodeRef", line.sales_tax_code),
    ]
    if line.item is not None and line.item_list_id is not None:
        pairs.append(("ItemRef", _ref(line.item_list_id, line.item)))
    if line.desc is not None:
        pairs.append(("Desc", line.desc))
    if line.quantity is not None:
        pairs.append(("Quantity", _quantity(line.quantity)))
    if line.rate is not None:
        pairs.append(("Rate", _price(line.rate)))
    elif line.rate_percent is not None:
        pairs.append(("RatePercent", _money(line.rate_percent)))
    if kind == "SalesOrder":
        pairs.extend((("Invoiced", "0"), ("IsManuallyClosed", "false")))
    pairs.extend(line.fields)
    return _ordered(tag, order, pairs)


def _txn_defaults(spec: _TxnSpec, record: TransactionRecord) -> list[tuple[str, _Value]]:
    """What QuickBooks fills in when the Add leaves it out."""
    given = {tag for tag, _ in record.fields}
    defaults: list[tuple[str, _Value]] = [("TemplateRef", spec.template)]
    if spec.ar_account:
        defaults.append(("ARAccountRef", _AR_ACCOUNT))
    if record.kind in ("Invoice", "SalesReceipt", "CreditMemo"):
        defaults.append(("IsPending", "false"))
    if record.kind == "Invoice":
        defaults.append(("IsFinanceCharge", "false"))
    if record.kind != "SalesReceipt" or "DueDate" in given:
        defaults.append(("DueDate", record.txn_date.isoformat()))
    if record.kind == "SalesReceipt":
        defaults.append(("DepositToAccountRef", _UNDEPOSITED))
    defaults.extend((("IsToBePrinted", "true"), ("IsToBeEmailed", "false")))
    return [(tag, value) for tag, value in defaults if tag not in given]


def _txn_totals(record: TransactionRecord) -> list[tuple[str, _Value]]:
    if record.kind == "Invoice":
        balance = record.balance or Decimal(0)
        return [
            ("AppliedAmount", _money(-record.applied)),
            ("BalanceRemaining", _money(balance)),
            ("IsPaid", _bool(balance == 0)),
        ]
    totals: list[tuple[str, _Value]] = [("TotalAmount", _money(record.total))]
    if record.kind == "CreditMemo":
        totals.append(("CreditRemaining", _money(record.total)))
    if record.kind == "SalesOrder":
        totals.extend((("IsManuallyClosed", "false"), ("IsFullyInvoiced", "false")))
    return totals


def _max_returned(request: etree._Element) -> int | None:
    text = _text(request, "MaxReturned")
    if text is None:
        return None
    try:
        return max(int(text), 0)
    except ValueError as exc:
        raise _Status(
            3000, "Error", f'The given value "{text}" in "MaxReturned" is invalid.'
        ) from exc


def _render_all(
    keys: Iterable[str], render: Callable[[str], etree._Element | None]
) -> list[etree._Element]:
    return [ret for key in keys if (ret := render(key)) is not None]


def _answer_for(rets: list[etree._Element], iterator: tuple[int, str] | None) -> _Answer:
    if rets:
        return _Answer(rets, iterator=iterator)
    return _Answer([], 1, "Info", _NO_MATCH, iterator)


def _by_txn_ids(
    txn_ids: list[str], known: set[str], render: Callable[[str], etree._Element | None]
) -> _Answer:
    missing = next((txn_id for txn_id in txn_ids if txn_id not in known), None)
    if missing is not None:
        raise _Status(
            3120,
            "Error",
            f'Object "{missing}" specified in the request cannot be found.' + _NOT_IN_LIST,
        )
    return _Answer(_render_all(txn_ids, render))


def _in_entities(customer: str, entities: list[tuple[str, bool]]) -> bool:
    key = customer.lower()
    return any(
        key == name or (with_children and key.startswith(name + ":"))
        for name, with_children in entities
    )


def _in_range(value: str, range_filter: etree._Element, field: str) -> bool:
    low = _text(range_filter, f"From{field}")
    high = _text(range_filter, f"To{field}")
    folded = value.lower()
    return (low is None or folded >= low.lower()) and (high is None or folded <= high.lower())


def _list_filters(request: etree._Element, now: datetime) -> Callable[[str, bool, datetime], bool]:
    """ActiveStatus, modified dates, NameFilter and NameRangeFilter of a list query."""
    active = _text(request, "ActiveStatus") or "ActiveOnly"
    from_text, to_text = _text(request, "FromModifiedDate"), _text(request, "ToModifiedDate")
    from_modified = _parse_datetime(from_text, now, end_of_day=False) if from_text else None
    to_modified = _parse_datetime(to_text, now, end_of_day=True) if to_text else None
    name_filter = _child(request, "NameFilter")
    name_range = _child(request, "NameRangeFilter")

    def keep(full_name: str, is_active: bool, time_modified: datetime) -> bool:
        checks = (
            active == "All" or (active == "ActiveOnly") == is_active,
            from_modified is None or time_modified >= from_modified,
            to_modified is None or time_modified <= to_modified,
            name_filter is None
            or _matches_criterion(
                full_name,
                _text(name_filter, "MatchCriterion") or "Contains",
                _text(name_filter, "Name") or "",
            ),
            name_range is None or _in_range(full_name, name_range, "Name"),
        )
        return all(checks)

    return keep
