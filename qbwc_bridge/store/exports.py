"""exported_transactions: QuickBooks' sales transactions as JMAUser orders, with a cursor.

Like product_updates (store/inventory.py), a row is written only when something its reader
sees changed (the order, TimeModified, deleted, the bridge's link), and every write takes
the company's next export cursor, allocated under a lock on the company's row: writers
take turns, each commits its cursors before the next allocates, so a reader that remembers
the last cursor it saw never misses a change and never gets one twice. A transaction read
again unchanged (the clock-skew overlap of the next export, an iterator started again)
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update

from qbwc_bridge.domain.exports import DeletedTxn, ExportedTxn, ExportRow, deleted_order
from qbwc_bridge.domain.orders import OrderStatus, TxnKind
from qbwc_bridge.store import outbox, schema
from qbwc_bridge.store.database import Tx, as_utc

et = schema.exported_transactions
c = schema.companies
o = schema.orders

# What a reader sees of a row besides its cursor: a write that changes none of these is none.
_SEEN = ("txn_type", "qb_time_modified", "payload", "deleted", "created_by_bridge",
         "queued_order_number")  # fmt: skip


def write(
    tx: Tx,
    company_id: int,
    txns: Sequence[ExportedTxn],
    deletions: Sequence[DeletedTxn],
    now: datetime,
) -> int:
    """Write the transactions and deletions that change a row; returns how many rows took a
    new cursor.

    A deletion of a transaction the export never read is kept only when the bridge added
    it (a channel may be waiting for that order); a hand-entered one nobody saw is no news.
    """
    ids = list(dict.fromkeys([t.qb_txn_id for t in txns] + [d.qb_txn_id for d in deletions]))
    if not ids:
        return 0
    current = {
        row.qb_txn_id: row
        for row in tx.execute(
            select(et.c.qb_txn_id, *(et.c[name] for name in _SEEN)).where(
                and_(et.c.company_id == company_id, et.c.qb_txn_id.in_(ids))
            )
        )
    }
    added_by_bridge = bridge_orders(tx, company_id, ids)
    wanted: dict[str, dict[str, Any]] = {}
    for txn in txns:
        number = added_by_bridge.get(txn.qb_txn_id)
        wanted[txn.qb_txn_id] = _values(txn.kind, txn.qb_time_modified, txn.order, number)
    for gone in deletions:
        number = added_by_bridge.get(gone.qb_txn_id)
        # The row keeps the order it was last read as; one never read says what it can.
        if gone.qb_txn_id in wanted:
            payload = wanted[gone.qb_txn_id]["payload"]
        elif gone.qb_txn_id in current:
            payload = dict(current[gone.qb_txn_id].payload)
        elif number is not None:
            payload = deleted_order(gone)
        else:
            continue
        wanted[gone.qb_txn_id] = _values(
            gone.kind, gone.qb_time_deleted, payload, number, deleted=True
        )
    changed = {
        txn_id: values for txn_id, values in wanted.items() if _differs(current.get(txn_id), values)
    }
    if not changed:
        return 0
    cursor = int(
        tx.execute(
            select(c.c.export_cursor).where(c.c.id == company_id).with_for_update()
        ).scalar_one()
    )
    first = cursor
    inserts, updates = [], []
    for txn_id, values in changed.items():
        cursor += 1
        row = {**values, "cursor": cursor, "updated_at": now}
        if txn_id in current:
            updates.append({"b_txn_id": txn_id, **row})
        else:
            inserts.append({"company_id": company_id, "qb_txn_id": txn_id, **row})
    if inserts:
        tx.execute(insert(et), inserts)
    if updates:
        tx.execute(
            update(et)
            .where(and_(et.c.company_id == company_id, et.c.qb_txn_id == bindparam("b_txn_id")))
            .values({key: bindparam(key) for key in (*_SEEN, "cursor", "updated_at")}),
            updates,
        )
    tx.execute(update(c).where(c.c.id == company_id).values(export_cursor=cursor))
    outbox.record_transactions(tx, company_id, first, cursor, now)  # never lost, never early
    return len(changed)


def _values(
    kind: TxnKind,
    time_modified: str,
    payload: dict[str, Any],
    number: str | None,
    *,
    deleted: bool = False,
) -> dict[str, Any]:
    return {
        "txn_type": kind.value,
        "qb_time_modified": time_modified,
        "payload": payload,
        "deleted": deleted,
        "created_by_bridge": number is not None,
        "queued_order_number": number,
    }


def _differs(row: Any, values: dict[str, Any]) -> bool:
    if row is None:
        return True
    return any(getattr(row, name) != values[name] for name in _SEEN)


def bridge_orders(tx: Tx, company_id: int, txn_ids: Sequence[str]) -> dict[str, str]:
    """The order numbers behind those TxnIDs among the company's orders the bridge added."""
    if not txn_ids:
        return {}
    rows = tx.execute(
        select(o.c.qb_txn_id, o.c.order_number).where(
            and_(
                o.c.company_id == company_id,
                o.c.qb_txn_id.in_(list(txn_ids)),
                o.c.status == OrderStatus.SYNCED.value,
            )
        )
    )
    return {str(txn_id): str(number) for txn_id, number in rows}


def since(
    tx: Tx, company_id: int, cursor: int, limit: int, upto: int | None = None
) -> list[ExportRow]:
    """Up to ``limit`` rows changed after ``cursor`` (and at most ``upto``), oldest change
    first: the feed's one read, for the command line, /api, the webhook events and whatever
    else follows it."""
    where = and_(et.c.company_id == company_id, et.c.cursor > cursor)
    if upto is not None:
        where = and_(where, et.c.cursor <= upto)
    rows = tx.execute(select(et).where(where).order_by(et.c.cursor).limit(limit))
    return [
        ExportRow(
            qb_txn_id=row.qb_txn_id,
            kind=TxnKind(row.txn_type),
            qb_time_modified=row.qb_time_modified,
            order=dict(row.payload),
            deleted=bool(row.deleted),
            created_by_bridge=bool(row.created_by_bridge),
            queued_order_number=row.queued_order_number,
            cursor=int(row.cursor),
            updated_at=as_utc(row.updated_at),
        )
        for row in rows
    ]


def last_cursor(tx: Tx, company_id: int) -> int:
    """The company's latest export cursor (0 before its first row)."""
    return int(tx.execute(select(c.c.export_cursor).where(c.c.id == company_id)).scalar_one())


# --- when the next export is due, and where it starts ----------------------------------------


def due_at(tx: Tx, company_id: int) -> datetime | None:
    value: datetime | None = tx.execute(
        select(c.c.export_due_at).where(c.c.id == company_id)
    ).scalar_one()
    return as_utc(value)


def set_due_at(tx: Tx, company_id: int, when: datetime | None) -> None:
    tx.execute(update(c).where(c.c.id == company_id).values(export_due_at=when))


def exported_from(tx: Tx, company_id: int) -> datetime | None:
    """When the last complete export started (None: the next one is a full pass)."""
    value: datetime | None = tx.execute(
        select(c.c.exported_from).where(c.c.id == company_id)
    ).scalar_one()
    return as_utc(value)


def set_exported_from(tx: Tx, company_id: int, when: datetime | None) -> None:
    tx.execute(update(c).where(c.c.id == company_id).values(exported_from=when))
