"""QuickBooks' sales transactions read back out for the channels, as JMAUser orders.

The export (docs/export.md) keeps each transaction as one row: the JMAUser order it reads
as (docs/order-format.md read in reverse), QuickBooks' marks (TxnID, TimeModified), whether the
bridge added it, and a change cursor. These are the values between the qbXML reader, the
engine's export step and the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qbwc_bridge.domain.company import EXPORT_TYPES, CompanySettings
from qbwc_bridge.domain.orders import OrderType, TxnKind
from qbwc_bridge.domain.text import FIELD_LIMITS, fit

# export_transactions' names, as QuickBooks calls the transactions.
EXPORT_KINDS: dict[str, TxnKind] = dict(
    zip(
        EXPORT_TYPES,
        (TxnKind.INVOICE, TxnKind.SALES_RECEIPT, TxnKind.SALES_ORDER, TxnKind.CREDIT_MEMO),
        strict=True,
    )
)
# The JMAUser OrderType a transaction reads as.
ORDER_TYPES: dict[TxnKind, OrderType] = {
    TxnKind.INVOICE: OrderType.INVOICE,
    TxnKind.CREDIT_MEMO: OrderType.CREDIT_MEMO,
    TxnKind.SALES_ORDER: OrderType.SALES_ORDER,
    TxnKind.SALES_RECEIPT: OrderType.SALES_RECEIPT,
}


@dataclass(frozen=True, slots=True)
class ChargeItems:
    """The company's items whose lines are charges rather than order details, as QuickBooks
    names them (folded and cut as the mapping sends them), compared without case."""

    shipping: str
    discount: str
    tax: str

    @classmethod
    def of(cls, settings: CompanySettings) -> ChargeItems:
        def key(name: str) -> str:
            return fit(name, FIELD_LIMITS["FullName"]).casefold()

        return cls(key(settings.shipping_item), key(settings.discount_item), key(settings.tax_item))


@dataclass(frozen=True, slots=True)
class ExportedTxn:
    """One transaction as QuickBooks reported it: ``order`` is its JMAUser order, ready for
    JSON (money and quantities as numeric strings)."""

    qb_txn_id: str
    kind: TxnKind
    qb_time_modified: str
    order: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeletedTxn:
    """One TxnDeletedRet: a transaction QuickBooks no longer has."""

    qb_txn_id: str
    kind: TxnKind
    qb_time_deleted: str
    ref_number: str = ""


@dataclass(frozen=True, slots=True)
class ExportRow:
    """An exported_transactions row; ``cursor`` grows with every change, per company."""

    qb_txn_id: str
    kind: TxnKind
    qb_time_modified: str
    order: dict[str, Any]
    deleted: bool
    created_by_bridge: bool
    queued_order_number: str | None
    cursor: int
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The row as /api/quickbooks-transactions and the command line give it."""
        return {
            **self.order,
            "qb_txn_id": self.qb_txn_id,
            "qb_time_modified": self.qb_time_modified,
            "created_by_bridge": self.created_by_bridge,
            "queued_order_number": self.queued_order_number,
            "deleted": self.deleted,
            "cursor": self.cursor,
            "updated_at": self.updated_at.isoformat(),
        }


def deleted_order(deleted: DeletedTxn) -> dict[str, Any]:
    """What a deletion says of a transaction the export never read: its number and type."""
    return {"OrderNumber": deleted.ref_number, "OrderType": int(ORDER_TYPES[deleted.kind])}
