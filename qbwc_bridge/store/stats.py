"""Figures for /metrics: orders by company and status, runs by status, QuickBooks errors."""

from __future__ import annotations

from sqlalchemy import func, select

from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx

o, c, r = schema.orders, schema.companies, schema.runs


def orders_by_status(tx: Tx) -> list[tuple[str, str, int]]:
    rows = tx.execute(
        select(c.c.name, o.c.status, func.count())
        .join(c, c.c.id == o.c.company_id)
        .group_by(c.c.name, o.c.status)
        .order_by(c.c.name, o.c.status)
    )
    return [(name, status, int(n)) for name, status, n in rows]


def runs_by_status(tx: Tx) -> list[tuple[str, int]]:
    rows = tx.execute(select(r.c.status, func.count()).group_by(r.c.status).order_by(r.c.status))
    return [(status, int(n)) for status, n in rows]


def errors_by_code(tx: Tx) -> list[tuple[int, int]]:
    rows = tx.execute(
        select(o.c.error_code, func.count())
        .where(o.c.error_code.is_not(None))
        .group_by(o.c.error_code)
        .order_by(o.c.error_code)
    )
    return [(int(code), int(n)) for code, n in rows]


def payments_by_status(tx: Tx) -> list[tuple[str, int]]:
    p = schema.payments
    rows = tx.execute(select(p.c.status, func.count()).group_by(p.c.status).order_by(p.c.status))
    return [(status, int(n)) for status, n in rows]
