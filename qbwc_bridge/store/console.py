"""What the admin console's pages read: a glance at every company, one company's orders a
page at a time, one order with the exchanges of its last run, runs a page at a time, and
product_updates by SKU. Every query is bounded (a LIMIT, on indexed columns)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select

from qbwc_bridge.domain.orders import OrderStatus
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc

o, r, x, c, pu = (
    schema.orders,
    schema.runs,
    schema.exchanges,
    schema.companies,
    schema.product_updates,
)

# An order's exchanges are looked for among at most this many of its last run's.
EXCHANGES_SCANNED = 500
# The qbXML of an exchange is shown up to this many characters.
XML_SHOWN = 20_000


@dataclass(frozen=True, slots=True)
class RunRow:
    """One Web Connector run as the console lists it."""

    id: int
    company_id: int
    status: str
    created_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None
    exchanges: int
    orders: int  # how many orders the run settled (its summary's outcomes)
    outcomes: dict[str, int]
    last_error: str | None

    @property
    def seconds(self) -> float:
        end = self.closed_at or self.last_seen_at
        return max(0.0, (end - self.created_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Glance:
    """One company at a glance."""

    id: int
    name: str
    counts: dict[str, int]
    last_run: RunRow | None


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    order_number: str
    status: str
    txn_kind: str
    customer_name: str
    qb_ref_number: str | None
    error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the order page shows beyond the QueuedOrder: its stored JSON and its history."""

    id: int
    payload: str
    created_at: datetime
    updated_at: datetime
    attempts: int
    error_code: int | None
    lease_run_id: int | None


@dataclass(frozen=True, slots=True)
class ExchangeRow:
    """One message of a run that carried a request for the order."""

    run_id: int
    seq: int
    sent_at: datetime
    received_at: datetime | None
    request_xml: str
    response_xml: str | None
    hresult: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    name: str | None
    quantity_on_hand: Decimal | None
    quantity_on_order: Decimal | None
    quantity_on_sales_order: Decimal | None
    updated_at: datetime
    cursor: int


_RUN_COLUMNS = (
    r.c.id, r.c.company_id, r.c.status, r.c.created_at, r.c.last_seen_at, r.c.closed_at,
    r.c.exchanges, r.c.summary, r.c.last_error,
)  # fmt: skip


def _run(row: Any) -> RunRow:
    summary = row.summary or {}
    outcomes = {str(k): int(v) for k, v in (summary.get("outcomes") or {}).items()}
    return RunRow(
        id=int(row.id),
        company_id=int(row.company_id),
        status=str(row.status),
        created_at=as_utc(row.created_at),
        last_seen_at=as_utc(row.last_seen_at),
        closed_at=as_utc(row.closed_at) if row.closed_at is not None else None,
        exchanges=int(row.exchanges or 0),
        orders=sum(outcomes.values()),
        outcomes=outcomes,
        last_error=row.last_error,
    )


def glance(tx: Tx) -> list[Glance]:
    """Every company: its orders by status and its newest run."""
    counts: dict[int, dict[str, int]] = defaultdict(
        lambda: {status.value: 0 for status in OrderStatus}
    )
    for company_id, status, n in tx.execute(
        select(o.c.company_id, o.c.status, func.count()).group_by(o.c.company_id, o.c.status)
    ):
        counts[int(company_id)][str(status)] = int(n)
    newest = select(func.max(r.c.id)).group_by(r.c.company_id).scalar_subquery()
    runs = {
        int(row.company_id): _run(row)
        for row in tx.execute(select(*_RUN_COLUMNS).where(r.c.id.in_(newest)))
    }
    return [
        Glance(int(cid), str(name), counts[int(cid)], runs.get(int(cid)))
        for cid, name in tx.execute(select(c.c.id, c.c.name).order_by(c.c.name))
    ]


def _starts_with(column: Any, text: str) -> Any:
    """``column`` starts with ``text``, as a range on its index (case as typed)."""
    return and_(column >= text, column < text + "\U0010ffff")


_ORDER_ROW = (
    o.c.id, o.c.order_number, o.c.status, o.c.txn_kind, o.c.customer_name, o.c.qb_ref_number,
    o.c.error, o.c.updated_at,
)  # fmt: skip


def _order_row(row: Any) -> OrderRow:
    return OrderRow(
        int(row.id), row.order_number, row.status, row.txn_kind, row.customer_name,
        row.qb_ref_number, row.error, as_utc(row.updated_at),
    )  # fmt: skip


def order_page(
    tx: Tx,
    company_id: int,
    *,
    status: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[OrderRow]:
    """Up to ``limit`` of the company's orders, newest first, older than id ``before``;
    those in ``status`` only, if given."""
    query = select(*_ORDER_ROW).where(o.c.company_id == company_id)
    if status:
        query = query.where(o.c.status == status)
    if before is not None:
        query = query.where(o.c.id < before)
    return [_order_row(row) for row in tx.execute(query.order_by(o.c.id.desc()).limit(limit))]


def search_orders(
    tx: Tx, company_id: int, search: str, *, status: str | None = None, limit: int = 50
) -> list[OrderRow]:
    """Up to ``limit`` of the company's orders whose number starts with ``search`` (in
    number order), then those whose customer does (in customer order): each a walk along
    its own index that stops at ``limit``."""
    found: dict[int, OrderRow] = {}
    for column in (o.c.order_number, o.c.customer_name):
        query = select(*_ORDER_ROW).where(
            and_(o.c.company_id == company_id, _starts_with(column, search))
        )
        if status:
            query = query.where(o.c.status == status)
        for row in tx.execute(query.order_by(column).limit(limit)):
            found.setdefault(int(row.id), _order_row(row))
    return list(found.values())[:limit]


def order_record(tx: Tx, company_id: int, order_number: str) -> OrderRecord | None:
    row = tx.execute(
        select(
            o.c.id, o.c.payload, o.c.created_at, o.c.updated_at, o.c.attempts, o.c.error_code,
            o.c.lease_run_id,
        ).where(and_(o.c.company_id == company_id, o.c.order_number == order_number))
    ).one_or_none()  # fmt: skip
    if row is None:
        return None
    return OrderRecord(
        int(row.id), str(row.payload), as_utc(row.created_at), as_utc(row.updated_at),
        int(row.attempts or 0), row.error_code,
        None if row.lease_run_id is None else int(row.lease_run_id),
    )  # fmt: skip


def order_exchanges(tx: Tx, run_id: int, order_id: int) -> list[ExchangeRow]:
    """The exchanges of run ``run_id`` with a request for order ``order_id`` (among its
    last EXCHANGES_SCANNED), oldest first; their qbXML cut at XML_SHOWN characters."""
    rows = tx.execute(
        select(
            x.c.seq, x.c.request_map, x.c.sent_at, x.c.received_at, x.c.request_xml,
            x.c.response_xml, x.c.hresult, x.c.message,
        )
        .where(x.c.run_id == run_id)
        .order_by(x.c.seq.desc())
        .limit(EXCHANGES_SCANNED)
    )  # fmt: skip
    found = [
        ExchangeRow(
            run_id,
            int(row.seq),
            as_utc(row.sent_at),
            as_utc(row.received_at) if row.received_at is not None else None,
            str(row.request_xml)[:XML_SHOWN],
            None if row.response_xml is None else str(row.response_xml)[:XML_SHOWN],
            row.hresult,
            row.message,
        )
        for row in rows
        if any(
            isinstance(purpose, dict) and purpose.get("o") == order_id
            for purpose in (row.request_map or {}).values()
        )
    ]
    return found[::-1]


def run(tx: Tx, run_id: int) -> RunRow | None:
    row = tx.execute(select(*_RUN_COLUMNS).where(r.c.id == run_id)).one_or_none()
    return None if row is None else _run(row)


def run_page(
    tx: Tx, company_id: int, *, before: int | None = None, limit: int = 50
) -> list[RunRow]:
    """Up to ``limit`` of the company's runs, newest first, older than id ``before``."""
    query = select(*_RUN_COLUMNS).where(r.c.company_id == company_id)
    if before is not None:
        query = query.where(r.c.id < before)
    return [_run(row) for row in tx.execute(query.order_by(r.c.id.desc()).limit(limit))]


def stock_page(
    tx: Tx, company_id: int, *, search: str = "", after: str = "", limit: int = 50
) -> list[StockRow]:
    """Up to ``limit`` product_updates rows in SKU order after ``after``; with ``search``
    only the SKUs that start with it."""
    query = select(
        pu.c.sku, pu.c.name, pu.c.quantity_on_hand, pu.c.quantity_on_order,
        pu.c.quantity_on_sales_order, pu.c.updated_at, pu.c.cursor,
    ).where(and_(pu.c.company_id == company_id, pu.c.sku > after))  # fmt: skip
    if search:
        query = query.where(_starts_with(pu.c.sku, search))
    rows = tx.execute(query.order_by(pu.c.sku).limit(limit))
    return [
        StockRow(
            row.sku,
            row.name,
            row.quantity_on_hand,
            row.quantity_on_order,
            row.quantity_on_sales_order,
            as_utc(row.updated_at),
            int(row.cursor),
        )
        for row in rows
    ]
