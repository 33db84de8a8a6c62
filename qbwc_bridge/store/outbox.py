"""The outbox: channel events written in the same transaction as the change that causes
them, so a crash never loses one nor sends one for a change that rolled back; the worker
delivers them later, in order, one delivery in flight per channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, select, update

from qbwc_bridge.domain.channels import (
    ORDER_OUTCOME,
    QUICKBOOKS_TRANSACTIONS,
    STOCK_LEVELS,
    TRANSACTIONS_PER_DELIVERY,
)
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc

ev, o, pu, d, ch = (
    schema.outbox_events,
    schema.orders,
    schema.product_updates,
    schema.deliveries,
    schema.channels,
)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str
    order_id: int | None
    from_cursor: int | None
    to_cursor: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """A channel's delivery on its way: its id and body stay the same on every attempt."""

    channel_id: int
    delivery_id: str
    event: str
    body: str
    to_cursor: int
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None


def record_outcomes(tx: Tx, order_ids: Sequence[int], now: datetime) -> None:
    """One order_outcome event per order that just ended (synced, duplicate, error)."""
    if not order_ids:
        return
    tx.execute(
        insert(ev).from_select(
            ["company_id", "kind", "order_id", "created_at"],
            select(
                o.c.company_id, literal(ORDER_OUTCOME), o.c.id, literal(now, ev.c.created_at.type)
            )
            .where(o.c.id.in_(list(order_ids)))
            .order_by(o.c.id),
        )
    )


def record_stock(tx: Tx, company_id: int, from_cursor: int, to_cursor: int, now: datetime) -> None:
    """product_updates rows with cursors in (from, to] changed."""
    tx.execute(
        insert(ev).values(
            company_id=company_id,
            kind=STOCK_LEVELS,
            from_cursor=from_cursor,
            to_cursor=to_cursor,
            created_at=now,
        )
    )


def record_transactions(
    tx: Tx, company_id: int, from_cursor: int, to_cursor: int, now: datetime
) -> None:
    """exported_transactions rows with cursors in (from, to] changed: one event per
    TRANSACTIONS_PER_DELIVERY cursors, so that no delivery outgrows its batch."""
    if to_cursor <= from_cursor:
        return
    tx.execute(
        insert(ev),
        [
            {
                "company_id": company_id,
                "kind": QUICKBOOKS_TRANSACTIONS,
                "from_cursor": start,
                "to_cursor": min(start + TRANSACTIONS_PER_DELIVERY, to_cursor),
                "created_at": now,
            }
            for start in range(from_cursor, to_cursor, TRANSACTIONS_PER_DELIVERY)
        ],
    )


def events_after(
    tx: Tx, company_id: int, after: int, kinds: Sequence[str], limit: int
) -> list[Event]:
    rows = tx.execute(
        select(ev.c.id, ev.c.kind, ev.c.order_id, ev.c.from_cursor, ev.c.to_cursor, ev.c.created_at)
        .where(and_(ev.c.company_id == company_id, ev.c.id > after, ev.c.kind.in_(list(kinds))))
        .order_by(ev.c.id)
        .limit(limit)
    )
    return [
        Event(int(i), kind, order_id, from_cursor, to_cursor, as_utc(created))
        for i, kind, order_id, from_cursor, to_cursor, created in rows
    ]


def count_events_after(tx: Tx, company_id: int, after: int, kinds: Sequence[str]) -> int:
    return int(
        tx.execute(
            select(func.count()).where(
                and_(ev.c.company_id == company_id, ev.c.id > after, ev.c.kind.in_(list(kinds)))
            )
        ).scalar_one()
    )


def count_stock_after(tx: Tx, company_id: int, after: int) -> int:
    return int(
        tx.execute(
            select(func.count()).where(and_(pu.c.company_id == company_id, pu.c.cursor > after))
        ).scalar_one()
    )


# --- deliveries ---------------------------------------------------------------------------------


def _to_delivery(row: Any) -> Delivery:
    return Delivery(
        channel_id=row.channel_id,
        delivery_id=row.delivery_id,
        event=row.event,
        body=row.body,
        to_cursor=int(row.to_cursor),
        attempts=int(row.attempts),
        first_attempt_at=as_utc(row.first_attempt_at),
        next_attempt_at=as_utc(row.next_attempt_at),
        last_status=row.last_status,
        last_error=row.last_error,
    )


def delivery_of(tx: Tx, channel_id: int) -> Delivery | None:
    row = tx.execute(select(d).where(d.c.channel_id == channel_id)).one_or_none()
    return None if row is None else _to_delivery(row)


def start_delivery(
    tx: Tx, channel_id: int, delivery_id: str, event: str, body: str, to_cursor: int, now: datetime
) -> Delivery:
    tx.execute(
        insert(d).values(
            channel_id=channel_id,
            delivery_id=delivery_id,
            event=event,
            body=body,
            to_cursor=to_cursor,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    found = delivery_of(tx, channel_id)
    assert found is not None
    return found


def delivered(tx: Tx, delivery: Delivery, now: datetime) -> None:
    """The receiver took it: the channel's cursor moves on, the next delivery may start."""
    tx.execute(delete(d).where(d.c.channel_id == delivery.channel_id))
    tx.execute(
        update(ch)
        .where(ch.c.id == delivery.channel_id)
        .values(push_cursor=delivery.to_cursor, last_delivery_at=now, push_error=None)
    )


def failed(
    tx: Tx,
    delivery: Delivery,
    now: datetime,
    next_attempt_at: datetime,
    status: int | None,
    error: str,
    channel_error: str | None,
) -> None:
    tx.execute(
        update(d)
        .where(d.c.channel_id == delivery.channel_id)
        .values(
            attempts=delivery.attempts + 1,
            first_attempt_at=delivery.first_attempt_at or now,
            next_attempt_at=next_attempt_at,
            last_status=status,
            last_error=error,
        )
    )
    tx.execute(
        update(ch).where(ch.c.id == delivery.channel_id).values(push_error=channel_error or error)
    )


def skip_to(tx: Tx, channel_id: int, event_id: int) -> None:
    """Events up to ``event_id`` carry nothing left to send (their rows changed again and
    travel with a later event): the channel's cursor moves past them without a delivery."""
    tx.execute(update(ch).where(ch.c.id == channel_id).values(push_cursor=event_id))


def push_cursor(tx: Tx, channel_id: int) -> int:
    return int(tx.execute(select(ch.c.push_cursor).where(ch.c.id == channel_id)).scalar_one())
