"""The reads behind the Connex-compatible lists: a page of the company's orders, a page of
its inventory rows, and the SKUs of its waiting orders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, select

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.inventory import ItemDetails
from qbwc_bridge.domain.orders import Order, OrderStatus
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc
from qbwc_bridge.store.direct import in_ids

o, pu, os_ = schema.orders, schema.product_updates, schema.order_skus

# Orders whose SKUs QuickBooks has yet to see: they count towards unknownSkusCount.
_WAITING = (OrderStatus.PENDING.value, OrderStatus.IN_PROGRESS.value, OrderStatus.ERROR.value)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Which of a company's orders a list shows, in which order, and which page of them."""

    company_id: int
    begin: date | None = None
    end: date | None = None
    search: str = ""
    connection_id: int | None = None  # None: every connection
    sort: str = "order_date"  # a column of orders
    descending: bool = True
    offset: int = 0
    limit: int = 10


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """One order of a list, with where it stands."""

    id: int
    order: Order
    status: OrderStatus
    qb_txn_id: str | None
    qb_ref_number: str | None
    error: str | None
    user_connection_id: int | None


@dataclass(frozen=True, slots=True)
class ProductFilter:
    company_id: int
    search: str = ""
    sort: str = "sku"  # a column of product_updates
    descending: bool = False
    offset: int = 0
    limit: int = 10


@dataclass(frozen=True, slots=True)
class ListedProduct:
    sku: str
    quantity_on_hand: Decimal | None
    quantity_on_order: Decimal | None
    quantity_on_sales_order: Decimal | None
    qb_list_id: str
    updated_at: datetime
    details: ItemDetails


def _order_where(tx: Tx, wanted: OrderFilter) -> ColumnElement[bool]:
    # Daily summaries are the bridge's own orders, not one a channel sent.
    where = and_(o.c.company_id == wanted.company_id, o.c.summary_memo.is_(None))
    if wanted.begin is not None:
        where = and_(where, o.c.order_date >= wanted.begin)
    if wanted.end is not None:
        where = and_(where, o.c.order_date <= wanted.end)
    if wanted.connection_id is not None:
        where = and_(where, o.c.user_connection_id == wanted.connection_id)
    if wanted.search.strip():
        # The number, QuickBooks' customer name and the sent one, kept in lower case
        # (store.orders.search_text): the search is lowered the same way and compared as is.
        where = and_(where, _holds(tx, o.c.search_text, wanted.search.strip().lower()))
    return where


def _holds(tx: Tx, column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """``column`` contains ``text``, character for character. PostgreSQL: LIKE, which the
    trigram index serves. SQLite: GLOB, the same test without LIKE's folding of ASCII case
    at every character (16 against 23 ms to count the matches among 100 000 orders,
    docs/benchmarks.md); its wildcards ``*``, ``?`` and ``[`` stand for themselves as
    one-character sets."""
    if tx.dialect.name == "postgresql":
        return column.contains(text, autoescape=True)
    literal = "".join(f"[{char}]" if char in "*?[" else char for char in text)
    return column.op("GLOB", is_comparison=True)(f"*{literal}*")


def _order_count(tx: Tx, wanted: OrderFilter, where: ColumnElement[bool]) -> int:
    """How many orders ``where`` matches. Without filters, the company's tally of queued
    orders (store.schema.order_tallies): a sum of a few rows instead of a count of every
    order."""
    filtered = (wanted.begin, wanted.end, wanted.connection_id) != (None, None, None)
    if filtered or wanted.search.strip():
        return int(tx.execute(select(func.count()).select_from(o).where(where)).scalar_one())
    t = schema.order_tallies
    rows, total = tx.execute(
        select(func.count(), func.coalesce(func.sum(t.c.orders), 0)).where(
            t.c.company_id == wanted.company_id
        )
    ).one()
    if rows > TALLY_ROWS_KEPT:
        _compact_tally(tx, wanted.company_id)
    return int(total)


# An orders/list call folds the company's tally into one row once it has more rows than this.
TALLY_ROWS_KEPT = 64


def _compact_tally(tx: Tx, company_id: int) -> None:
    """Replace the company's tally rows by one with their sum. Only rows it deletes are
    summed: a row an intake adds meanwhile stays, and a concurrent compaction waits, then
    finds nothing left to delete. Intakes only add rows, so this waits for nothing else."""
    t = schema.order_tallies
    deleted = tx.execute(delete(t).where(t.c.company_id == company_id).returning(t.c.orders))
    total = sum(int(orders) for orders in deleted.scalars())
    if total:
        tx.execute(insert(t).values(company_id=company_id, orders=total))


@dataclass(frozen=True, slots=True)
class _Slice:
    """Where a page is read from: a page past the middle is read from the other end, in the
    opposite order (a tie-breaking key makes that order the exact reverse), so no more than
    half the matching rows are stepped over, however deep the page."""

    offset: int
    limit: int
    backwards: bool  # read in the opposite direction to the one asked for
    from_end: bool  # the rows come back reversed

    @classmethod
    def of(cls, offset: int, limit: int, total: int, descending: bool) -> _Slice:
        if offset + limit <= total // 2 or offset >= total:
            return cls(offset, limit, descending, from_end=False)
        return cls(max(total - offset - limit, 0), min(limit, total - offset), not descending, True)

    def ordering(self, column: Any, tie: Any) -> list[Any]:
        return [column.desc(), tie.desc()] if self.backwards else [column, tie]


def orders_page(tx: Tx, wanted: OrderFilter) -> tuple[list[ListedOrder], int]:
    """The page of orders ``wanted`` names, and how many orders match in all."""
    where = _order_where(tx, wanted)
    total = _order_count(tx, wanted, where)
    part = _Slice.of(wanted.offset, wanted.limit, total, wanted.descending)
    # The page's ids first, then their rows: sorting carries only the sort key and the id,
    # not every matching order's payload (a deep page would sort them all).
    ids = list(
        tx.execute(
            select(o.c.id)
            .where(where)
            .order_by(*part.ordering(o.c[wanted.sort], o.c.id))
            .offset(part.offset)
            .limit(part.limit)
        ).scalars()
    )
    if part.from_end:
        ids.reverse()
    if not ids:
        return [], total
    found = tx.execute(
        select(
            o.c.id, o.c.payload, o.c.status, o.c.qb_txn_id, o.c.qb_ref_number, o.c.error,
            o.c.user_connection_id,
        ).where(in_ids(o.c.id, "b_ids")),
        {"b_ids": ids},
    )  # fmt: skip
    by_id = {row.id: row for row in found}
    rows = [by_id[order_id] for order_id in ids]
    return [
        ListedOrder(
            id=int(row.id),
            order=intake.order_from_dict(json.loads(row.payload)),
            status=OrderStatus(row.status),
            qb_txn_id=row.qb_txn_id,
            qb_ref_number=row.qb_ref_number,
            error=row.error,
            user_connection_id=row.user_connection_id,
        )
        for row in rows
    ], total


def _product_where(tx: Tx, wanted: ProductFilter) -> ColumnElement[bool]:
    where = pu.c.company_id == wanted.company_id
    text = wanted.search.strip()
    if not text:
        return where
    if tx.dialect.name == "postgresql":
        # sku_key: the SKU case-folded (store.inventory.sku_key), which a trigram index
        # covers (revision 0013): one plain LIKE, no lower() per row.
        return and_(where, pu.c.sku_key.contains(text.casefold(), autoescape=True))
    # SQLite's LIKE ignores the case of ASCII letters only. It reads the SKU in the primary
    # key, which the page is read in; sku_key would cost a row read per SKU passed over,
    # half as long again for a search of 100 000 SKUs (docs/benchmarks.md).
    return and_(where, pu.c.sku.contains(text, autoescape=True))


def products_page(tx: Tx, wanted: ProductFilter) -> tuple[list[ListedProduct], int]:
    """The page of inventory rows ``wanted`` names, and how many match in all."""
    where = _product_where(tx, wanted)
    total = int(tx.execute(select(func.count()).select_from(pu).where(where)).scalar_one())
    part = _Slice.of(wanted.offset, wanted.limit, total, wanted.descending)
    rows = list(
        tx.execute(
            select(
                pu.c.sku, pu.c.quantity_on_hand, pu.c.quantity_on_order,
                pu.c.quantity_on_sales_order, pu.c.qb_list_id, pu.c.updated_at, pu.c.name,
                pu.c.description, pu.c.sales_price, pu.c.average_cost, pu.c.purchase_cost,
            )
            .where(where)
            .order_by(*part.ordering(pu.c[wanted.sort], pu.c.sku))
            .offset(part.offset)
            .limit(part.limit)
        )
    )  # fmt: skip
    if part.from_end:
        rows.reverse()
    return [
        ListedProduct(
            sku=row.sku,
            quantity_on_hand=row.quantity_on_hand,
            quantity_on_order=row.quantity_on_order,
            quantity_on_sales_order=row.quantity_on_sales_order,
            qb_list_id=row.qb_list_id or "",
            updated_at=as_utc(row.updated_at),
            details=ItemDetails(
                name=row.name,
                description=row.description,
                sales_price=row.sales_price,
                average_cost=row.average_cost,
                purchase_cost=row.purchase_cost,
            ),
        )
        for row in rows
    ], total


def unknown_skus(tx: Tx, company_id: int) -> list[str]:
    """The SKUs of the company's orders not yet in QuickBooks that its inventory rows do
    not list (QuickBooks' names ignore case), sorted.

    It reads the keys the company's orders have named (sku_keys, about one per item sold),
    keeps those no inventory row has, and for each of those only finds its first waiting
    order, so its cost follows the number of distinct SKUs ordered, not the orders."""
    k = schema.sku_keys
    known = exists().where(and_(pu.c.company_id == company_id, pu.c.sku_key == k.c.sku_key))
    spelled = (
        select(os_.c.sku)
        .join(o, o.c.id == os_.c.order_id)
        .where(
            and_(
                os_.c.company_id == company_id,
                os_.c.sku_key == k.c.sku_key,
                o.c.status.in_(_WAITING),
                o.c.summary_memo.is_(None),
            )
        )
        .order_by(os_.c.order_id)
        .limit(1)
        .scalar_subquery()
    )
    rows = tx.execute(select(spelled).where(and_(k.c.company_id == company_id, ~known))).scalars()
    return sorted(str(sku) for sku in rows if sku is not None)


@dataclass(frozen=True, slots=True)
class Connection:
    """A channel as Connex calls it: a user connection, numbered by the channel's id."""

    id: int
    name: str
    kind: str
    url: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


def connections(tx: Tx, company_id: int) -> dict[int, Connection]:
    """The company's channels by id, oldest first."""
    ch = schema.channels
    rows = tx.execute(
        select(ch.c.id, ch.c.name, ch.c.kind, ch.c.url, ch.c.enabled, ch.c.created_at,
               ch.c.updated_at)
        .where(ch.c.company_id == company_id)
        .order_by(ch.c.id)
    )  # fmt: skip
    return {
        int(row.id): Connection(
            id=int(row.id),
            name=row.name,
            kind=row.kind,
            url=row.url,
            enabled=bool(row.enabled),
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )
        for row in rows
    }
