"""What the stand-in's company file holds: items, customers, sales and payments as records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

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
    purchase_cost: Decimal = Decimal(0)
    average_cost: Decimal = Decimal(0)
    is_active: bool = True
    account: str | None = None  # the income account of a non-inventory item added by request


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
class SaleLine:
    """A line of a sale entered by hand (FakeQuickBooks.add_sale): an item, a description,
    quantity and rate, or an amount alone (QuickBooks works out the one it is not given)."""

    item: str | None
    quantity: Decimal | None = None
    rate: Decimal | None = None
    desc: str | None = None
    amount: Decimal | None = None


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
