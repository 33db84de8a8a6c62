"""What a bookkeeper does in QuickBooks' own windows: change and delete sales (entering one
is FakeQuickBooks.add_sale), and TxnDeletedQuery, which reports the deletions.

A change moves TimeModified and EditSequence on, as a save in QuickBooks does; a deleted
sale is reported to TxnDeletedQuery with its TimeDeleted. Stock levels stay as the sale
left them: these edits are about what the transactions say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _CENT,
    _TAX_NON,
    _Answer,
    _child,
    _edit_sequence,
    _ordered,
    _parse_datetime,
    _stamp,
    _tags,
    _text,
    _texts,
    _to_cp1252,
)
from qbwc_bridge.simulator.quickbooks.queries import _answer_for
from qbwc_bridge.simulator.quickbooks.records import (
    Aggregate,
    SaleLine,
    TransactionLine,
    TransactionRecord,
    TxnKind,
)
from qbwc_bridge.simulator.quickbooks.transactions import TransactionRequests

_DELETED_RET = _tags("TxnDelType TxnID TimeCreated TimeDeleted RefNumber")
_ADDRESS_ORDER = _tags("Addr1 Addr2 Addr3 Addr4 Addr5 City State PostalCode Country Note")


@dataclass(frozen=True)
class DeletedRecord:
    """A transaction deleted from the company file, as TxnDeletedQuery reports it."""

    kind: TxnKind
    txn_id: str
    ref_number: str | None
    time_created: datetime
    time_deleted: datetime


class TransactionEdits(TransactionRequests):
    """Sales changed and deleted in QuickBooks itself, and their deletions' query."""

    _deleted_txns: list[DeletedRecord]

    def modify_transaction(
        self,
        txn_id: str,
        *,
        lines: Sequence[SaleLine] | None = None,
        ref_number: str | None = None,
        txn_date: date | None = None,
        memo: str | None = None,
    ) -> TransactionRecord:
        """Change a sale and save it: TimeModified moves on even when nothing else changed."""
        record = self._txns[txn_id]
        now = self._clock()
        changed = replace(record, time_modified=now, edit_sequence=_edit_sequence(now))
        if lines is not None:
            new_lines = self._sale_lines(lines, now)
            subtotal = sum((line.amount for line in new_lines), Decimal(0))
            changed = replace(changed, lines=new_lines, subtotal=subtotal)
        if ref_number is not None:
            changed = replace(changed, ref_number=ref_number)
        if txn_date is not None:
            changed = replace(changed, txn_date=txn_date)
        if memo is not None:
            kept = tuple((tag, value) for tag, value in changed.fields if tag != "Memo")
            changed = replace(changed, fields=(*kept, ("Memo", _to_cp1252(memo))))
        self._txns[txn_id] = changed
        self._move_balance(record, changed.total - record.total)
        return changed

    def delete_transaction(self, txn_id: str) -> DeletedRecord:
        """Delete a sale (an invoice with payments applied cannot be: remove them first)."""
        record = self._txns[txn_id]
        if record.payments:
            raise ValueError(f"{record.kind} {txn_id} has payments applied to it")
        del self._txns[txn_id]
        self._move_balance(record, -record.total)
        gone = DeletedRecord(
            record.kind, txn_id, record.ref_number, record.time_created, self._clock()
        )
        self._deleted_txns.append(gone)
        return gone

    @property
    def deleted_transactions(self) -> tuple[DeletedRecord, ...]:
        return tuple(self._deleted_txns)

    def _sale_lines(self, lines: Sequence[SaleLine], now: datetime) -> tuple[TransactionLine, ...]:
        built = []
        for line in lines:
            item = self._items.get(line.item.lower()) if line.item else None
            if line.item and item is None:
                raise ValueError(f"no item {line.item!r} in this company file")
            amount = line.amount
            if amount is None:
                quantity = line.quantity if line.quantity is not None else Decimal(1)
                amount = quantity * (line.rate if line.rate is not None else Decimal(0))
            built.append(
                TransactionLine(
                    txn_line_id=self._new_txn_id(now),
                    item=item.full_name if item else None,
                    item_list_id=item.list_id if item else None,
                    desc=_to_cp1252(line.desc) if line.desc is not None else None,
                    quantity=line.quantity,
                    rate=line.rate,
                    rate_percent=None,
                    amount=amount.quantize(_CENT, rounding=ROUND_HALF_UP),
                    sales_tax_code=_TAX_NON,
                )
            )
        return tuple(built)

    def _move_balance(self, record: TransactionRecord, delta: Decimal) -> None:
        if record.kind == "Invoice":
            self._change_balance(record.customer_list_id, delta)
        elif record.kind == "CreditMemo":
            self._change_balance(record.customer_list_id, -delta)

    def _txn_deleted_query(self, request: etree._Element) -> _Answer:
        now = self._clock()
        types = set(_texts(request, "TxnDelType"))
        window = _child(request, "DeletedDateRangeFilter")
        low = high = None
        if window is not None:
            if (text := _text(window, "FromDeletedDate")) is not None:
                low = _parse_datetime(text, now, end_of_day=False)
            if (text := _text(window, "ToDeletedDate")) is not None:
                high = _parse_datetime(text, now, end_of_day=True)
        rets = [
            _deleted_ret(gone)
            for gone in self._deleted_txns
            if gone.kind in types
            and (low is None or gone.time_deleted >= low)
            and (high is None or gone.time_deleted <= high)
        ]
        return _answer_for(rets, None)


def sale_address(address: Mapping[str, str]) -> Aggregate:
    """A BillAddress / ShipAddress given as {"Addr1": ..., "City": ...}, in schema order."""
    unknown = set(address) - set(_ADDRESS_ORDER)
    if unknown:
        raise ValueError(f"an address has no {sorted(unknown)[0]}")
    return tuple((tag, _to_cp1252(address[tag])) for tag in _ADDRESS_ORDER if address.get(tag))


def _deleted_ret(gone: DeletedRecord) -> etree._Element:
    pairs: list[tuple[str, str | Aggregate | list[etree._Element]]] = [
        ("TxnDelType", gone.kind),
        ("TxnID", gone.txn_id),
        ("TimeCreated", _stamp(gone.time_created)),
        ("TimeDeleted", _stamp(gone.time_deleted)),
    ]
    if gone.ref_number is not None:
        pairs.append(("RefNumber", gone.ref_number))
    return _ordered("TxnDeletedRet", _DELETED_RET, pairs)
