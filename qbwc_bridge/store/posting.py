"""The posting rules' rows: mappings, the items QuickBooks was found to lack, undo marks on
orders, and daily summaries with their members."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, cast, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.orders import (
    OrderStage,
    OrderStatus,
    PaymentStatus,
    QueuedOrder,
)
from qbwc_bridge.domain.posting import MappingKind, MappingRule, Mappings, source_key
from qbwc_bridge.domain.summaries import Summary, day_over_at
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import outbox, schema
from qbwc_bridge.store.database import Tx, insert_into

m = schema.posting_mappings
mi = schema.missing_items
s = schema.summaries
o = schema.orders
p = schema.payments


# --- mappings ------------------------------------------------------------------------------


def mappings(tx: Tx, company_id: int) -> Mappings:
    return Mappings.of(mapping_rules(tx, company_id))


def mapping_rules(
    tx: Tx, company_id: int, kinds: Sequence[MappingKind] | None = None
) -> list[MappingRule]:
    """The company's mappings (of ``kinds`` only, if given), by kind and FROM."""
    where = m.c.company_id == company_id
    if kinds is not None:
        where = and_(where, m.c.kind.in_([kind.value for kind in kinds]))
    rows = tx.execute(
        select(m.c.kind, m.c.source, m.c.target).where(where).order_by(m.c.kind, m.c.source_key)
    )
    return [MappingRule(MappingKind(kind), source, target) for kind, source, target in rows]


def has_mappings(tx: Tx, company_id: int, kind: MappingKind) -> bool:
    found = and_(m.c.company_id == company_id, m.c.kind == kind.value)
    return bool(tx.execute(select(exists().where(found))).scalar_one())


def set_mappings(tx: Tx, company_id: int, rules: Iterable[MappingRule], now: datetime) -> int:
    """Add or replace mappings (by kind and FROM); how many rows were written."""
    rows = [
        {
            "company_id": company_id,
            "kind": rule.kind.value,
            "source_key": source_key(rule.source),
            "source": rule.source,
            "target": rule.target,
            "updated_at": now,
        }
        for rule in rules
    ]
    if not rows:
        return 0
    statement = insert_into(tx, m)
    statement = statement.on_conflict_do_update(
        index_elements=[m.c.company_id, m.c.kind, m.c.source_key],
        set_={
            "source": statement.excluded.source,
            "target": statement.excluded.target,
            "updated_at": statement.excluded.updated_at,
        },
    )
    tx.execute(statement, rows)
    return len(rows)


def remove_mapping(tx: Tx, company_id: int, kind: MappingKind, source: str) -> bool:
    result = tx.execute(
        delete(m).where(
            and_(
                m.c.company_id == company_id,
                m.c.kind == kind.value,
                m.c.source_key == source_key(source),
            )
        )
    )
    return bool(result.rowcount)


# --- items QuickBooks lacks -------------------------------------------------------------------


def missing_item_keys(tx: Tx, company_id: int) -> frozenset[str]:
    rows = tx.execute(select(mi.c.item_key).where(mi.c.company_id == company_id))
    return frozenset(rows.scalars())


def note_items(
    tx: Tx,
    company_id: int,
    *,
    present: Mapping[str, str],
    absent: Mapping[str, str],
    now: datetime,
) -> None:
    """What a run learnt about items (item_key → name): those found or added are no longer
    missing; those a check did not find are, until one is."""
    gone = [key for key in present if key not in absent]
    if gone:
        tx.execute(delete(mi).where(and_(mi.c.company_id == company_id, mi.c.item_key.in_(gone))))
    if absent:
        statement = insert_into(tx, mi).on_conflict_do_nothing(
            index_elements=[mi.c.company_id, mi.c.item_key]
        )
        tx.execute(
            statement,
            [
                {"company_id": company_id, "item_key": key, "name": name[:200], "noted_at": now}
                for key, name in absent.items()
            ],
        )


# --- undo --------------------------------------------------------------------------------------


def request_unpost(tx: Tx, order_id: int, now: datetime) -> bool:
    """Queue a synced order (or one whose undo failed) for its undo in the next run."""
    result = tx.execute(
        update(o)
        .where(
            and_(
                o.c.id == order_id,
                or_(
                    o.c.status == OrderStatus.SYNCED.value,
                    and_(o.c.status == OrderStatus.ERROR.value, o.c.unpost),
                ),
            )
        )
        .values(
            status=OrderStatus.PENDING.value,
            stage=OrderStage.CHECK.value,
            unpost=True,
            attempts=0,
            error=None,
            error_code=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount == 1)


def cancel_unpost(tx: Tx, order_id: int, now: datetime) -> bool:
    """Keep an order whose undo waits or failed: it is synced again, as it was."""
    result = tx.execute(
        update(o)
        .where(
            and_(
                o.c.id == order_id,
                o.c.unpost,
                o.c.status.in_((OrderStatus.PENDING.value, OrderStatus.ERROR.value)),
            )
        )
        .values(
            status=OrderStatus.SYNCED.value,
            stage=OrderStage.DONE.value,
            unpost=False,
            error=None,
            error_code=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount == 1)


def set_txn_kinds(tx: Tx, run_id: int, kinds: Mapping[int, str]) -> None:
    """What the run's claimed orders become (a txn-type mapping), before any request."""
    for order_id, kind in kinds.items():
        tx.execute(
            update(o)
            .where(and_(o.c.id == order_id, o.c.lease_run_id == run_id))
            .values(txn_kind=kind)
        )


def order_by_number(tx: Tx, company_id: int, order_number: str) -> QueuedOrder | None:
    order_id = tx.execute(
        select(o.c.id).where(and_(o.c.company_id == company_id, o.c.order_number == order_number))
    ).scalar_one_or_none()
    if order_id is None:
        return None
    found = order_store.by_ids(tx, [order_id])
    return found[0] if found else None


def in_summary(tx: Tx, order_id: int) -> str | None:
    """The order number of the daily summary the order is in, if any."""
    summary_id = tx.execute(select(o.c.summary_id).where(o.c.id == order_id)).scalar_one()
    if summary_id is None:
        return None
    summary_order = select(s.c.order_id).where(s.c.id == summary_id).scalar_subquery()
    number = tx.execute(select(o.c.order_number).where(o.c.id == summary_order)).scalar()
    return str(number) if number is not None else None


# --- daily summaries -------------------------------------------------------------------------


# An order's day in the company's zone is within two days of the date it was sent with
# (UTC offsets run from -12 to +14 hours; a sender's from -24 to +24).
_DAY_SPREAD = timedelta(days=2)


def _ordered_at(tx: Tx) -> ColumnElement[str]:
    """The order's moment as its payload keeps it (UTC ISO text, which sorts as time does),
    or NULL when it has none."""
    if tx.dialect.name == "postgresql":
        moment: ColumnElement[str] = cast(o.c.payload, postgresql.JSONB)["ordered_at"].astext
        return moment
    extracted: ColumnElement[str] = func.json_extract(o.c.payload, "$.ordered_at")
    return extracted


def _day_is_over(tx: Tx, last_due_day: date, zone: ZoneInfo) -> ColumnElement[bool]:
    """The order's day (domain.summaries.summary_day) is ``last_due_day`` or earlier: its
    moment is before that day ended in ``zone``, or, without a moment, its date is."""
    moment = _ordered_at(tx)
    ended = day_over_at(last_due_day, zone).isoformat()
    return or_(
        o.c.order_date.is_(None),  # queued before its date was kept
        and_(
            o.c.order_date <= last_due_day + _DAY_SPREAD,
            or_(
                and_(moment.is_(None), o.c.order_date <= last_due_day),
                moment < ended,
            ),
        ),
    )


def work_waiting(tx: Tx, company_id: int, last_due_day: date, zone: ZoneInfo) -> bool:
    """Is there something a run would do for a company that posts daily summaries: a
    summary or an undo waiting, or orders of a day that is over in ``zone`` (an order
    queued before its date was kept counts too)?"""
    waiting = and_(
        o.c.company_id == company_id,
        o.c.status == OrderStatus.PENDING.value,
        o.c.summary_id.is_(None),
        or_(
            o.c.summary_memo.is_not(None),
            o.c.unpost,
            _day_is_over(tx, last_due_day, zone),
        ),
    )
    return bool(tx.execute(select(exists().where(waiting))).scalar_one())


def due_for_summary(
    tx: Tx, company_id: int, last_due_day: date, zone: ZoneInfo
) -> list[QueuedOrder]:
    """The pending orders of days that are over in ``zone``, in no summary yet (nor to
    unpost)."""
    ids = tx.execute(
        select(o.c.id)
        .where(
            and_(
                o.c.company_id == company_id,
                o.c.status == OrderStatus.PENDING.value,
                o.c.summary_id.is_(None),
                o.c.summary_memo.is_(None),
                ~o.c.unpost,
                _day_is_over(tx, last_due_day, zone),
            )
        )
        .order_by(o.c.id)
    ).scalars()
    return order_store.by_ids(tx, list(ids))


def next_seq(tx: Tx, company_id: int, channel: str, day: date, kind: str) -> int:
    """The sequence of the next summary of that channel, day and kind (0: the first)."""
    highest = tx.execute(
        select(func.max(s.c.seq)).where(
            and_(
                s.c.company_id == company_id,
                s.c.channel == channel,
                s.c.day == day,
                s.c.kind == kind,
            )
        )
    ).scalar()
    return 0 if highest is None else int(highest) + 1


def posted_before(tx: Tx, company_id: int, channel: str, day: date, kind: str) -> bool:
    """Has that channel, day and kind a summary that is not undone (a next one is then a
    supplementary summary)?"""
    live = and_(
        s.c.company_id == company_id,
        s.c.channel == channel,
        s.c.day == day,
        s.c.kind == kind,
        o.c.status != OrderStatus.UNPOSTED.value,
    )
    found = select(s.c.id).select_from(s.join(o, o.c.id == s.c.order_id)).where(live)
    return bool(tx.execute(select(exists(found))).scalar_one())


def add_summary(
    tx: Tx,
    company_id: int,
    summary: Summary,
    member_ids: Sequence[int],
    *,
    txn_kind: str,
    customer_name: str,
    now: datetime,
) -> int:
    """Queue the summary as an order of its own and make the members its members; the
    summary's id."""
    payload = intake.canonical_json(summary.order)
    order_id = tx.execute(
        o.insert()
        .values(
            company_id=company_id,
            order_number=summary.order_number,
            fingerprint=intake.fingerprint_of(payload),
            payload=payload,
            status=OrderStatus.PENDING.value,
            stage=OrderStage.CHECK.value,
            txn_kind=txn_kind,
            customer_name=customer_name,
            attempts=0,
            add_sent=False,
            unpost=False,
            order_date=summary.day,
            summary_memo=summary.memo,
            created_at=now,
            updated_at=now,
        )
        .returning(o.c.id)
    ).scalar_one()
    summary_id = tx.execute(
        s.insert()
        .values(
            company_id=company_id,
            channel=summary.channel,
            day=summary.day,
            kind=summary.kind,
            seq=summary.seq,
            ref_number=summary.ref_number,
            order_id=order_id,
            order_count=summary.count,
            total=summary.order.order_total,
            created_at=now,
        )
        .returning(s.c.id)
    ).scalar_one()
    tx.execute(
        update(o)
        .where(
            and_(
                o.c.id.in_(list(member_ids)),
                o.c.status == OrderStatus.PENDING.value,
                o.c.summary_id.is_(None),
            )
        )
        .values(summary_id=summary_id, updated_at=now)
    )
    return int(summary_id)


def settle_summary(
    tx: Tx, summary_order_id: int, txn_id: str, ref_number: str, now: datetime
) -> list[int]:
    """The summary is in QuickBooks: each member order, and its payments, are summarized
    with its TxnID. The members' ids."""
    summary_id = tx.execute(
        select(s.c.id).where(s.c.order_id == summary_order_id)
    ).scalar_one_or_none()
    if summary_id is None:
        return []
    members = list(
        tx.execute(
            select(o.c.id).where(
                and_(o.c.summary_id == summary_id, o.c.status == OrderStatus.PENDING.value)
            )
        ).scalars()
    )
    if not members:
        return []
    tx.execute(
        update(o)
        .where(o.c.id.in_(members))
        .values(
            status=OrderStatus.SUMMARIZED.value,
            stage=OrderStage.DONE.value,
            qb_txn_id=txn_id,
            qb_ref_number=ref_number,
            error=None,
            error_code=None,
            updated_at=now,
        )
    )
    tx.execute(
        update(p)
        .where(p.c.order_id.in_(members))
        .values(
            status=PaymentStatus.SUMMARIZED.value,
            stage=OrderStage.DONE.value,
            qb_txn_id=txn_id,
            error=None,
        )
    )
    outbox.record_outcomes(tx, members, now)
    return members


def release_summary(tx: Tx, summary_order_id: int, now: datetime) -> list[int]:
    """The summary was deleted from QuickBooks (its undo): its member orders, and their
    payments, are pending again and in no summary, so the next run forms a new one for
    them. The summary's row stays, listed as unposted. The members' ids."""
    summary_id = tx.execute(
        select(s.c.id).where(s.c.order_id == summary_order_id)
    ).scalar_one_or_none()
    if summary_id is None:
        return []
    members = list(tx.execute(select(o.c.id).where(o.c.summary_id == summary_id)).scalars())
    if not members:
        return []
    tx.execute(
        update(o)
        .where(o.c.id.in_(members))
        .values(
            status=OrderStatus.PENDING.value,
            stage=OrderStage.CHECK.value,
            summary_id=None,
            qb_txn_id=None,
            qb_ref_number=None,
            attempts=0,
            error=None,
            error_code=None,
            updated_at=now,
        )
    )
    tx.execute(
        update(p)
        .where(p.c.order_id.in_(members))
        .values(
            status=PaymentStatus.PENDING.value,
            stage=OrderStage.CHECK.value,
            qb_txn_id=None,
            error=None,
        )
    )
    outbox.record_outcomes(tx, members, now)
    return members


def summary_order_by_ref(tx: Tx, company_id: int, ref_number: str) -> QueuedOrder | None:
    """The daily summary (its own order) with this RefNumber, as `summaries` lists it."""
    order_id = tx.execute(
        select(s.c.order_id).where(
            and_(s.c.company_id == company_id, func.upper(s.c.ref_number) == ref_number.upper())
        )
    ).scalar_one_or_none()
    if order_id is None:
        return None
    found = order_store.by_ids(tx, [order_id])
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """A daily summary as `summaries` lists it."""

    ref_number: str
    order_number: str
    channel: str
    day: date
    kind: str
    seq: int
    order_count: int
    total: Decimal
    status: str
    qb_txn_id: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["day"] = self.day.isoformat()
        values["total"] = format(self.total, "f")
        return values


def summary_rows(tx: Tx, company_id: int) -> list[SummaryRow]:
    rows = tx.execute(
        select(
            s.c.ref_number,
            o.c.order_number,
            s.c.channel,
            s.c.day,
            s.c.kind,
            s.c.seq,
            s.c.order_count,
            s.c.total,
            o.c.status,
            o.c.qb_txn_id,
            o.c.error,
        )
        .select_from(s.join(o, o.c.id == s.c.order_id))
        .where(s.c.company_id == company_id)
        .order_by(s.c.day, s.c.channel, s.c.kind, s.c.seq)
    )
    return [
        SummaryRow(
            ref_number=row.ref_number,
            order_number=row.order_number,
            channel=row.channel,
            day=row.day,
            kind=row.kind,
            seq=int(row.seq),
            order_count=int(row.order_count),
            total=Decimal(row.total),
            status=row.status,
            qb_txn_id=row.qb_txn_id,
            error=row.error,
        )
        for row in rows
    ]
