"""product_updates: inventory levels from QuickBooks, with a change cursor for consumers.

A row is written only when a quantity or a detail of the item (name, description, price,
costs) changed, and every write takes the company's next cursor value, so a consumer that
remembers the last cursor it saw never misses a change and never gets one twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update

from qbwc_bridge.domain.inventory import ItemDetails, ProductUpdate, StockLevel
from qbwc_bridge.store import outbox, schema
from qbwc_bridge.store.database import Tx, as_utc
from qbwc_bridge.store.direct import in_texts

pu = schema.product_updates
c = schema.companies
# The item's details (ItemDetails' fields, product_updates' columns): a change to one is a
# change of the row, as a quantity's is.
_DETAILS = tuple(field.name for field in dataclasses.fields(ItemDetails))


def sku_key(sku: str) -> str:
    """How products/list matches an order's SKU with an inventory row: without case, as
    QuickBooks compares names (cut to the column's width: a longer key is no item's)."""
    return sku.casefold()[: schema.SKU_KEY_CHARS]


def upsert(tx: Tx, company_id: int, levels: Sequence[StockLevel], now: datetime) -> int:
    """Write the levels that changed; returns how many rows changed."""
    # One row per SKU: the last report wins (QuickBooks names are unique, but be safe).
    latest = {level.sku: level for level in levels}
    if not latest:
        return 0
    current = {
        row.sku: row
        for row in tx.execute(
            select(
                pu.c.sku,
                pu.c.quantity_on_hand,
                pu.c.quantity_on_order,
                pu.c.quantity_on_sales_order,
                *(pu.c[name] for name in _DETAILS),
            )
            # The SKUs as one array: the primary key finds them whatever plan PostgreSQL
            # keeps (a list of 5 000 placeholders once picked a sort index and a filter).
            .where(and_(pu.c.company_id == company_id, in_texts(pu.c.sku, "b_skus"))),
            {"b_skus": list(latest)},
        )
    }
    changed = [level for level in latest.values() if _differs(current.get(level.sku), level)]
    if not changed:
        return 0
    # Locking the company row serialises cursor allocation between concurrent writers.
    cursor = int(
        tx.execute(
            select(c.c.inventory_cursor).where(c.c.id == company_id).with_for_update()
        ).scalar_one()
    )
    first = cursor
    inserts, updates = [], []
    for level in changed:
        cursor += 1
        values = _values(level, now, cursor)
        if level.sku in current:
            updates.append({"b_sku": level.sku, **values})
        else:
            key = sku_key(level.sku)
            inserts.append({"company_id": company_id, "sku": level.sku, "sku_key": key, **values})
    if inserts:
        tx.execute(insert(pu), inserts)
    if updates:
        tx.execute(
            update(pu)
            .where(and_(pu.c.company_id == company_id, pu.c.sku == bindparam("b_sku")))
            .values({key: bindparam(key) for key in _values(changed[0], now, 0)}),
            updates,
        )
    tx.execute(update(c).where(c.c.id == company_id).values(inventory_cursor=cursor))
    outbox.record_stock(tx, company_id, first, cursor, now)  # in this transaction: never lost
    return len(changed)


def _values(level: StockLevel, now: datetime, cursor: int) -> dict[str, Any]:
    return {
        "quantity_on_hand": level.quantity_on_hand,
        "quantity_on_order": level.quantity_on_order,
        "quantity_on_sales_order": level.quantity_on_sales_order,
        "qb_list_id": level.qb_list_id,
        "qb_time_modified": level.qb_time_modified,
        "updated_at": now,
        "cursor": cursor,
        **{name: getattr(level.details, name) for name in _DETAILS},
    }


def _differs(row: Any, level: StockLevel) -> bool:
    if row is None:
        return True
    return bool(
        row.quantity_on_hand != level.quantity_on_hand
        or row.quantity_on_order != level.quantity_on_order
        or row.quantity_on_sales_order != level.quantity_on_sales_order
        or any(getattr(row, name) != getattr(level.details, name) for name in _DETAILS)
    )


def since(
    tx: Tx, company_id: int, cursor: int, limit: int, upto: int | None = None
) -> list[ProductUpdate]:
    """Up to ``limit`` rows changed after ``cursor`` (and at most ``upto``), oldest change
    first. Each SKU has one row, its newest level."""
    where = and_(pu.c.company_id == company_id, pu.c.cursor > cursor)
    if upto is not None:
        where = and_(where, pu.c.cursor <= upto)
    rows = tx.execute(select(pu).where(where).order_by(pu.c.cursor).limit(limit))
    return [
        ProductUpdate(
            sku=row.sku,
            quantity_on_hand=row.quantity_on_hand,
            quantity_on_order=row.quantity_on_order,
            quantity_on_sales_order=row.quantity_on_sales_order,
            qb_list_id=row.qb_list_id or "",
            qb_time_modified=row.qb_time_modified or "",
            updated_at=as_utc(row.updated_at),
            cursor=row.cursor,
        )
        for row in rows
    ]
