"""What the bridge asks QuickBooks to store: orders mapped to QuickBooks' shapes.

These records are the contract between the mapping rules (domain/mapping.py) and the qbXML
builder (qbxml/build.py): every string in them is already folded to Windows-1252 and cut to
QuickBooks' limits, so the builder only decides element names and order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from qbwc_bridge.domain.orders import TxnKind


@dataclass(frozen=True, slots=True)
class QbAddress:
    """A QuickBooks address block (BillAddress / ShipAddress)."""

    addr1: str = ""
    addr2: str = ""
    addr3: str = ""
    addr4: str = ""
    addr5: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def is_empty(self) -> bool:
        return not any(
            (
                self.addr1,
                self.addr2,
                self.addr3,
                self.addr4,
                self.addr5,
                self.city,
                self.state,
                self.postal_code,
                self.country,
            )
        )


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A CustomerAdd: ``name`` is the lookup key (CustomerQuery by FullName)."""

    name: str
    company_name: str = ""
    first_name: str = ""
    last_name: str = ""
    bill_address: QbAddress = QbAddress()
    ship_address: QbAddress = QbAddress()
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class TxnLine:
    """One line of a sales transaction. ``amount`` is always set, to the cent."""

    item: str
    amount: Decimal
    desc: str = ""
    quantity: Decimal | None = None
    rate: Decimal | None = None
    class_ref: str = ""  # ClassRef, only when a class mapping names one


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """An InvoiceAdd / SalesReceiptAdd / SalesOrderAdd / CreditMemoAdd.

    ``ref_number`` is at most 11 characters; a longer order number is carried whole in
    ``po_number`` (when it fits 25) and in ``memo``; ``order_number`` is what duplicate
    checks confirm against.
    """

    kind: TxnKind
    order_number: str
    customer_name: str
    txn_date: date
    ref_number: str
    lines: tuple[TxnLine, ...]
    po_number: str = ""
    memo: str = ""
    bill_address: QbAddress = QbAddress()
    ship_address: QbAddress = QbAddress()
    ship_method: str = ""  # the order's shipping method, as the shipping line's Desc says it
    payment_method: str = ""
    # ShipMethodRef and ClassRef: only what a mapping names (an unknown one fails the add).
    ship_method_ref: str = ""
    class_ref: str = ""

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A ReceivePaymentAdd applied to one invoice (AppliedToTxnAdd)."""

    customer_name: str
    txn_date: date
    total_amount: Decimal
    applied_to_txn_id: str
    ref_number: str = ""
    payment_method: str = ""
    memo: str = ""
    customer_list_id: str = ""


@dataclass(frozen=True, slots=True)
class NonInventoryItemRecord:
    """An ItemNonInventoryAdd for an unknown SKU: its name (at most 31 characters), the
    order line's description and price, and the company's income account."""

    name: str
    account: str
    desc: str = ""
    price: Decimal | None = None
