"""The reads behind the Connex-compatible lists: a page of the company's orders, a page of
its inventory rows, and the SKUs of its waiting orders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, func, or_, select
from sqlalchemy.dialects import postgresql

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.orders import Order, OrderStatus
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc

o, pu = schema.orders, schema.product_updates

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


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


def _sent_customer(tx: Tx) -> ColumnElement[str]:
    """The order's CustomerName as it was sent (its payload's customer_name)."""
    if tx.dialect.name == "postgresql":
        sent: ColumnElement[str] = cast(o.c.payload, postgresql.JSONB)["customer_name"].astext
        return sent
    extracted: ColumnElement[str] = func.json_extract(o.c.payload, "$.customer_name")
    return extracted


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
        text = wanted.search.strip()
        where = and_(
            where,
            or_(
                _contains(o.c.order_number, text),
                _contains(o.c.customer_name, text),  # as QuickBooks knows the customer
                _contains(_sent_customer(tx), text),
            ),
        )
    return where


def orders_page(tx: Tx, wanted: OrderFilter) -> tuple[list[ListedOrder], int]:
    """The page of orders ``wanted`` names, and how many orders match in all."""
    where = _order_where(tx, wanted)
    total = int(tx.execute(select(func.count()).select_from(o).where(where)).scalar_one())
    column = o.c[wanted.sort]
    ordering = [column.desc(), o.c.id.desc()] if wanted.descending else [column, o.c.id]
    rows = tx.execute(
        select(
            o.c.id, o.c.payload, o.c.status, o.c.qb_txn_id, o.c.qb_ref_number, o.c.error,
            o.c.user_connection_id,
        )
        .where(where)
        .order_by(*ordering)
        .offset(wanted.offset)
        .limit(wanted.limit)
    )  # fmt: skip
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


def _product_where(wanted: ProductFilter) -> ColumnElement[bool]:
    where = pu.c.company_id == wanted.company_id
    if wanted.search.strip():
        where = and_(where, _contains(pu.c.sku, wanted.search.strip()))
    return where


def products_page(tx: Tx, wanted: ProductFilter) -> tuple[list[ListedProduct], int]:
    """The page of inventory rows ``wanted`` names, and how many match in all."""
    where = _product_where(wanted)
    total = int(tx.execute(select(func.count()).select_from(pu).where(where)).scalar_one())
    column = pu.c[wanted.sort]
    ordering = [column.desc(), pu.c.sku.desc()] if wanted.descending else [column, pu.c.sku]
    rows = tx.execute(
        select(
            pu.c.sku, pu.c.quantity_on_hand, pu.c.quantity_on_order,
            pu.c.quantity_on_sales_order, pu.c.qb_list_id, pu.c.updated_at,
        )
        .where(where)
        .order_by(*ordering)
        .offset(wanted.offset)
        .limit(wanted.limit)
    )  # fmt: skip
    return [
        ListedProduct(
            sku=row.sku,
            quantity_on_hand=row.quantity_on_hand,
            quantity_on_order=row.quantity_on_order,
            quantity_on_sales_order=row.quantity_on_sales_order,
            qb_list_id=row.qb_list_id or "",
            updated_at=as_utc(row.updated_at),
        )
        for row in rows
    ], total


def _waiting_skus(tx: Tx, company_id: int) -> Iterator[str]:
    rows = tx.execute(
        select(o.c.payload).where(
            and_(
                o.c.company_id == company_id,
                o.c.status.in_(_WAITING),
                o.c.summary_memo.is_(None),
            )
        )
    )
    for (payload,) in rows:
        for line in json.loads(payload)["lines"]:
            yield str(line["sku"])


def unknown_skus(tx: Tx, company_id: int) -> list[str]:
    """The SKUs of the company's orders not yet in QuickBooks that its inventory rows do
    not list (QuickBooks' names ignore case), sorted."""
    wanted: dict[str, str] = {}
    for sku in _waiting_skus(tx, company_id):
        wanted.setdefault(sku.casefold(), sku)
    if not wanted:
        return []
    known = {
        str(sku).casefold()
        for (sku,) in tx.execute(select(pu.c.sku).where(pu.c.company_id == company_id))
    }
    return sorted(sku for key, sku in wanted.items() if key not in known)


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
