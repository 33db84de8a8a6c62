"""The order queue: idempotent enqueue, leased claims, guarded transitions.

Every transition after a claim repeats the lease guard (``lease_run_id`` and status) and
checks its row count: zero rows means another run owns the order now (LeaseLost).
See docs/state-machine.md for the arrows; each arrow is one function here.
"""

from __future__ import annotations

import enum
import json
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.orders import (
    REFNUMBER_CONFLICT,
    LazyOrder,
    Order,
    OrderChange,
    OrderStage,
    OrderStatus,
    PaymentChange,
    PaymentStatus,
    QueuedOrder,
    QueuedPayment,
    Resolution,
    TxnKind,
)
from qbwc_bridge.errors import LeaseLost
from qbwc_bridge.store import outbox, schema
from qbwc_bridge.store.database import Tx, insert_rows
from qbwc_bridge.store.direct import Direct, in_ids, in_texts
from qbwc_bridge.store.inventory import sku_key

o = schema.orders
p = schema.payments
os_ = schema.order_skus


class EnqueueOutcome(enum.StrEnum):
    QUEUED = "queued"
    UNCHANGED = "unchanged"
    UPDATED = "updated"
    CONFLICT = "conflict"  # changed after it reached QuickBooks: reported, not re-queued


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What the service layer hands the store to queue."""

    order: Order
    payload: str  # intake.canonical_json(order)
    fingerprint: str
    txn_kind: TxnKind
    customer_name: str
    user_connection_id: int | None = None  # the channel it came from, where the API named one


def enqueue(
    tx: Tx, company_id: int, new_orders: Sequence[NewOrder], now: datetime
) -> list[tuple[str, EnqueueOutcome]]:
    """Queue a chunk of orders in a few statements (one lookup, one bulk insert)."""
    numbers = [n.order.order_number for n in new_orders]
    existing = {
        row.order_number: row
        for row in tx.execute(
            select(
                o.c.id,
                o.c.order_number,
                o.c.fingerprint,
                o.c.status,
                o.c.unpost,
                o.c.summary_id,
                o.c.summary_memo,
            ).where(and_(o.c.company_id == company_id, in_texts(o.c.order_number, "b_numbers"))),
            {"b_numbers": numbers},
        )
    }
    outcomes: list[tuple[str, EnqueueOutcome]] = []
    fresh: dict[str, NewOrder] = {}
    queued_at: dict[str, int] = {}  # where in outcomes each fresh number says "queued"
    for new in new_orders:
        number = new.order.order_number
        row = existing.get(number)
        if number in fresh:
            # The same number twice in one file: the later one wins, like a re-send.
            outcomes.append((number, EnqueueOutcome.UPDATED))
            fresh[number] = new
        elif row is None:
            fresh[number] = new
            queued_at[number] = len(outcomes)
            outcomes.append((number, EnqueueOutcome.QUEUED))
        elif row.fingerprint == new.fingerprint:
            outcomes.append((number, EnqueueOutcome.UNCHANGED))
        elif _replaceable(row):
            _replace(tx, company_id, row.id, new, now)
            outcomes.append((number, EnqueueOutcome.UPDATED))
        else:
            outcomes.append((number, EnqueueOutcome.CONFLICT))
    if fresh:
        inserted = _insert(tx, company_id, list(fresh.values()), now)
        raced = [fresh[number] for number in fresh if number not in inserted]
        if raced:
            # Another transaction queued these numbers after our lookup and committed
            # (PostgreSQL; SQLite serialises writers): each is now a re-send of that order.
            for number, outcome in enqueue(tx, company_id, raced, now):
                outcomes[queued_at[number]] = (number, outcome)
    return outcomes


# A re-sent order with new content replaces these (nothing of them is in QuickBooks).
_REPLACEABLE = frozenset(
    {
        OrderStatus.PENDING.value,
        OrderStatus.ERROR.value,
        OrderStatus.UNPOSTED.value,
        OrderStatus.CANCELLED.value,
    }
)


def _replaceable(row: Any) -> bool:
    """Not while an undo is asked for (its transaction is in QuickBooks), nor an order in a
    daily summary (its lines are the summary's), nor a daily summary itself."""
    return (
        row.status in _REPLACEABLE
        and not row.unpost
        and row.summary_id is None
        and row.summary_memo is None
    )


def _order_values(new: NewOrder, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": new.fingerprint,
        "payload": new.payload,
        "status": OrderStatus.PENDING.value,
        "stage": OrderStage.CHECK.value,
        "txn_kind": new.txn_kind.value,
        "customer_name": new.customer_name,
        "search_text": search_text(new.order.order_number, new.customer_name, new.order),
        "order_date": new.order.order_date,
        "updated_at": now,
    }


def _payment_rows(order_id: int, order: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order_id,
            "position": position,
            "reference_number": payment.reference_number,
            "amount": payment.amount,
            "status": PaymentStatus.PENDING.value,
            "stage": OrderStage.CHECK.value,
            "add_sent": False,
        }
        for position, payment in enumerate(order.payments)
    ]


def search_text(order_number: str, customer_name: str, order: Order) -> str:
    """orders.search_text: the number, QuickBooks' customer name and the sent CustomerName,
    lower case, one per line."""
    sent = order.customer_name[: schema.SENT_CUSTOMER_CHARS]
    return f"{order_number}\n{customer_name}\n{sent}".lower()[: schema.SEARCH_TEXT_CHARS]


def _sku_rows(company_id: int, order_id: int, order: Order) -> list[dict[str, Any]]:
    """The order's SKUs for order_skus, each key once (its first line's spelling)."""
    keys: dict[str, str] = {}
    for line in order.lines:
        keys.setdefault(sku_key(line.sku), line.sku)
    return [
        {"order_id": order_id, "sku_key": key, "company_id": company_id, "sku": sku}
        for key, sku in keys.items()
    ]


def _write_skus(tx: Tx, company_id: int, sku_rows: list[dict[str, Any]]) -> None:
    """order_skus' rows, and the keys the company's orders had not named before."""
    if not sku_rows:
        return
    insert_rows(tx, os_, sku_rows)
    keys = sorted({row["sku_key"] for row in sku_rows})  # one lock order for every writer
    insert_rows(
        tx,
        schema.sku_keys,
        [{"company_id": company_id, "sku_key": key} for key in keys],
        skip_existing=True,
    )


def _add_order(dialect: Any) -> Direct:
    """INSERT of one new order, skipped where the company has its number already."""
    columns = (
        "fingerprint", "payload", "status", "stage", "txn_kind", "customer_name", "search_text",
        "order_date", "updated_at", "company_id", "order_number", "user_connection_id",
        "attempts", "add_sent", "unpost", "created_at",
    )  # fmt: skip
    statement = dialect.insert(o).values(
        {name: bindparam(name, type_=o.c[name].type) for name in columns}
    )
    return Direct(
        statement.on_conflict_do_nothing(
            index_elements=[o.c.company_id, o.c.order_number]
        ).returning(o.c.id, o.c.order_number)
    )


_ADD_ORDER_POSTGRESQL = _add_order(postgresql)
_ADD_ORDER_SQLITE = _add_order(sqlite)


def _insert(tx: Tx, company_id: int, news: list[NewOrder], now: datetime) -> set[str]:
    """Insert orders whose numbers the company has not queued; the numbers inserted.

    A number another transaction inserts meanwhile is skipped (ON CONFLICT DO NOTHING,
    which waits for that transaction's end), not a unique violation that would fail the
    whole request.
    """
    rows = [
        {
            **_order_values(new, now),
            "company_id": company_id,
            "order_number": new.order.order_number,
            "user_connection_id": new.user_connection_id,
            "attempts": 0,
            "add_sent": False,
            "unpost": False,
            "created_at": now,
        }
        for new in news
    ]
    add = _ADD_ORDER_POSTGRESQL if tx.dialect.name == "postgresql" else _ADD_ORDER_SQLITE
    ids = {number: order_id for order_id, number in add.rows_of_each(tx, rows)}
    if ids:
        tx.execute(schema.order_tallies.insert().values(company_id=company_id, orders=len(ids)))
    payment_rows = [
        row
        for new in news
        if new.order.order_number in ids
        for row in _payment_rows(ids[new.order.order_number], new.order)
    ]
    if payment_rows:
        insert_rows(tx, p, payment_rows)
    sku_rows = [
        row
        for new in news
        if new.order.order_number in ids
        for row in _sku_rows(company_id, ids[new.order.order_number], new.order)
    ]
    _write_skus(tx, company_id, sku_rows)
    return set(ids)


def _replace(tx: Tx, company_id: int, order_id: int, new: NewOrder, now: datetime) -> None:
    tx.execute(
        update(o)
        .where(o.c.id == order_id)
        .values(
            **_order_values(new, now),
            # A re-send keeps the channel it came from unless it names one.
            **(
                {}
                if new.user_connection_id is None
                else {"user_connection_id": new.user_connection_id}
            ),
            attempts=0,
            error=None,
            error_code=None,
            customer_list_id=None,
            invoice_customer=None,
            qb_txn_id=None,
            qb_ref_number=None,
            add_sent=False,
            lease_run_id=None,
            unpost=False,
            qb_edit_sequence=None,
            qb_time_modified=None,
        )
    )
    tx.execute(delete(p).where(p.c.order_id == order_id))
    payment_rows = _payment_rows(order_id, new.order)
    if payment_rows:
        insert_rows(tx, p, payment_rows)
    tx.execute(delete(os_).where(os_.c.order_id == order_id))
    _write_skus(tx, company_id, _sku_rows(company_id, order_id, new.order))


# --- reading ----------------------------------------------------------------------------


def counts(tx: Tx, company_id: int) -> dict[str, int]:
    rows = tx.execute(
        select(o.c.status, func.count()).where(o.c.company_id == company_id).group_by(o.c.status)
    )
    result = {status.value: 0 for status in OrderStatus}
    result.update({status: int(n) for status, n in rows})
    return result


def any_pending(tx: Tx, company_id: int) -> bool:
    """Does the company have an order waiting? (EXISTS: a deep queue is not counted.)"""
    pending = and_(o.c.company_id == company_id, o.c.status == OrderStatus.PENDING.value)
    return bool(tx.execute(select(exists().where(pending))).scalar_one())


# Decoded orders by fingerprint: an order's content never changes under its fingerprint, so
# each worker decodes a payload once, not at every callback of a run.
_DECODED: OrderedDict[str, Order] = OrderedDict()
_DECODED_MAX = 5000
_STAGES = {stage.value: stage for stage in OrderStage}
_ORDER_STATUSES = {status.value: status for status in OrderStatus}
_PAYMENT_STATUSES = {status.value: status for status in PaymentStatus}
_KINDS = {kind.value: kind for kind in TxnKind}
_RESOLUTIONS = {resolution.value: resolution for resolution in Resolution}


def _decoded(fingerprint: str, payload: str) -> Order:
    order = _DECODED.get(fingerprint)
    if order is None:
        order = _DECODED[fingerprint] = intake.order_from_dict(json.loads(payload))
        while len(_DECODED) > _DECODED_MAX:
            _DECODED.popitem(last=False)
    else:
        _DECODED.move_to_end(fingerprint)
    return order


def _lazy(fingerprint: str, payload: str) -> LazyOrder:
    return LazyOrder(lambda: _decoded(fingerprint, payload))


def _load(tx: Tx, query: Direct, params: dict[str, Any]) -> list[QueuedOrder]:
    """The orders ``query`` (a Direct of a _with_payments statement) selects, with their payments.

    One row per payment (or per order without one), in order: one statement where orders
    and their payments used to take two. Rows are unpacked by position and the objects
    built with positional arguments: a callback loads up to a few hundred orders, and
    attribute access on rows and keyword arguments cost more than the queries themselves.
    """
    rows: list[Any] = []
    sources: dict[int, LazyOrder] = {}
    by_order: dict[int, list[QueuedPayment]] = defaultdict(list)
    for row in query.rows(tx, params):
        order_id = row[0]
        source = sources.get(order_id)
        if source is None:
            source = sources[order_id] = _lazy(row[2], row[3])
            rows.append(row)
        if row[_ORDER_WIDTH] is not None:
            (
                payment_id, _order_id, position, status, stage, txn_id, error, add_sent,
                edit_sequence, time_modified,
            ) = row[_ORDER_WIDTH:]  # fmt: skip
            by_order[order_id].append(
                QueuedPayment(
                    payment_id,
                    position,
                    source,
                    _PAYMENT_STATUSES[status],
                    _STAGES[stage],
                    txn_id,
                    error,
                    add_sent,
                    edit_sequence,
                    time_modified,
                )
            )
    return [
        QueuedOrder(
            order_id,
            number,
            sources[order_id],
            _ORDER_STATUSES[status],
            _STAGES[stage],
            _KINDS[kind],
            customer_name,
            customer_list_id,
            invoice_customer,
            txn_id,
            ref_number,
            attempts,
            add_sent,
            error,
            tuple(by_order[order_id]),
            _RESOLUTIONS[resolution] if resolution else None,
            bool(unpost),
            edit_sequence,
            time_modified,
            summary_memo,
        )
        for (
            order_id, number, _fingerprint, _payload, status, stage, kind, customer_name,
            customer_list_id, invoice_customer, txn_id, ref_number, attempts, add_sent, error,
            resolution, unpost, edit_sequence, time_modified, summary_memo, *_payment,
        ) in rows
    ]  # fmt: skip


# _load unpacks rows of these two lists by position: keep them in step with it.
_ORDER_COLUMNS = [
    o.c[name]
    for name in (
        "id", "order_number", "fingerprint", "payload", "status", "stage", "txn_kind", "customer_name",
        "customer_list_id", "invoice_customer", "qb_txn_id", "qb_ref_number", "attempts",
        "add_sent", "error", "resolution", "unpost", "qb_edit_sequence", "qb_time_modified",
        "summary_memo",
    )
]  # fmt: skip
_PAYMENT_COLUMNS = [
    p.c[name]
    for name in (
        "id", "order_id", "position", "status", "stage", "qb_txn_id", "error", "add_sent",
        "qb_edit_sequence", "qb_time_modified",
    )
]  # fmt: skip

_ORDER_WIDTH = len(_ORDER_COLUMNS)


def _with_payments(orders: Select[Any]) -> Select[Any]:
    """``orders`` (selecting _ORDER_COLUMNS) with their payments joined on, for _load."""
    page = orders.subquery("page")
    return (
        select(page, *_PAYMENT_COLUMNS)
        .select_from(page.outerjoin(p, p.c.order_id == page.c.id))
        .order_by(page.c.id, p.c.position)
    )


# The statements of every callback, built once: building a statement costs several times
# more than running it on SQLite (bind parameters carry the values).
def held_by(run_id: ColumnElement[int]) -> ColumnElement[bool]:
    """The orders a run holds and still works on (the run's waiting set)."""
    return and_(o.c.lease_run_id == run_id, o.c.status == OrderStatus.IN_PROGRESS.value)


def waiting_of(run_id: ColumnElement[int]) -> ScalarSelect[int]:
    """How many orders ``run_id`` still works on, as a subquery (the lease's count)."""
    return select(func.count()).where(held_by(run_id)).scalar_subquery()


_HELD = held_by(bindparam("b_run"))
_CLAIMED = Direct(_with_payments(select(*_ORDER_COLUMNS).where(_HELD)))
_CLAIMED_PAGE = Direct(
    _with_payments(
        select(*_ORDER_COLUMNS)
        .where(and_(_HELD, o.c.id > bindparam("b_after")))
        .order_by(o.c.id)
        .limit(bindparam("b_limit"))
    )
)
# A list of ids picks its orders by primary key, and the run's hold is only checked on
# them: "+ 0" keeps the planner off the lease index. With statistics taken before the run
# claimed anything (every lease_run_id empty), PostgreSQL's cached plans otherwise walked
# all of the run's orders (up to batch_max) for the one to three a message names.
_LEASED_TO_RUN = o.c.lease_run_id + literal_column("0") == bindparam("b_run")
_HELD_IDS = and_(
    in_ids(o.c.id, "b_ids"), _LEASED_TO_RUN, o.c.status == OrderStatus.IN_PROGRESS.value
)
_CLAIMED_IDS = Direct(_with_payments(select(*_ORDER_COLUMNS).where(_HELD_IDS)))
_COMPANY_PAGE = Direct(
    _with_payments(
        select(*_ORDER_COLUMNS)
        .where(and_(o.c.company_id == bindparam("b_company"), o.c.id > bindparam("b_after")))
        .order_by(o.c.id)
        .limit(bindparam("b_limit"))
    )
)
_BY_IDS = Direct(
    _with_payments(select(*_ORDER_COLUMNS).where(in_ids(o.c.id, "b_ids")).order_by(o.c.id))
)


def by_ids(tx: Tx, order_ids: Sequence[int]) -> list[QueuedOrder]:
    """These orders (any status, any company: the ids come from the company's own rows)."""
    return _load(tx, _BY_IDS, {"b_ids": list(order_ids)}) if order_ids else []


# The same in one status, along the (company_id, status, id) index.
_COMPANY_STATUS_PAGE = Direct(
    _with_payments(
        select(*_ORDER_COLUMNS)
        .where(
            and_(
                o.c.company_id == bindparam("b_company"),
                o.c.status == bindparam("b_status"),
                o.c.id > bindparam("b_after"),
            )
        )
        .order_by(o.c.id)
        .limit(bindparam("b_limit"))
    )
)
_WAITING = select(func.count()).where(_HELD)


# A table re-analysed when it grew past this many times the pages PostgreSQL last counted,
# plus this slack (8 KB pages), so a small queue is not re-analysed at every enqueue.
_GROWTH_FACTOR = 1.5
_GROWTH_SLACK_PAGES = 64
_OUTGROWN = text(
    "SELECT count(*) FROM pg_class"
    " WHERE oid IN ('orders'::regclass, 'payments'::regclass)"
    " AND pg_relation_size(oid) / current_setting('block_size')::int"
    " > :factor * relpages + :slack"
)


def refresh_statistics(tx: Tx) -> bool:
    """ANALYZE the queue's tables on PostgreSQL once they outgrew what the planner knows.

    A planner that still believes the tables empty scans every payment to find a page's
    forty, and a prepared statement keeps that plan. Autovacuum fixes that only when it is on
    and gets round to it; many small enqueues grow the tables as surely as one large one.
    Checking costs one catalogue query. True when it analysed. (SQLite plans by its indexes.)
    """
    if tx.dialect.name != "postgresql":
        return False
    params = {"factor": _GROWTH_FACTOR, "slack": _GROWTH_SLACK_PAGES}
    if not tx.execute(_OUTGROWN, params).scalar():
        return False
    tx.exec_driver_sql("ANALYZE orders")
    tx.exec_driver_sql("ANALYZE payments")
    return True


def iter_company_orders(
    tx: Tx, company_id: int, *, status: OrderStatus | None = None, chunk: int = 1000
) -> Iterable[QueuedOrder]:
    """All of a company's orders (those in ``status`` only, if given) in queue order, read a
    chunk at a time."""
    after = 0
    query = _COMPANY_PAGE if status is None else _COMPANY_STATUS_PAGE
    params: dict[str, Any] = {"b_company": company_id, "b_limit": chunk}
    if status is not None:
        params["b_status"] = status.value
    while True:
        page = _load(tx, query, {**params, "b_after": after})
        yield from page
        if len(page) < chunk:
            return
        after = page[-1].id


def claimed_by(
    tx: Tx,
    run_id: int,
    *,
    order_ids: Sequence[int] | None = None,
    limit: int | None = None,
    after_id: int = 0,
) -> list[QueuedOrder]:
    """The run's orders that still wait for something (those of ``order_ids`` only, if given)."""
    if order_ids is not None:
        return _load(tx, _CLAIMED_IDS, {"b_run": run_id, "b_ids": order_ids})
    if limit is not None:
        return _load(tx, _CLAIMED_PAGE, {"b_run": run_id, "b_after": after_id, "b_limit": limit})
    return _load(tx, _CLAIMED, {"b_run": run_id})


def run_outcomes(tx: Tx, run_id: int) -> dict[str, int]:
    """How the orders a run touched ended, for closeConnection's summary."""
    rows = tx.execute(
        select(o.c.status, func.count()).where(o.c.lease_run_id == run_id).group_by(o.c.status)
    )
    return {status: int(n) for status, n in rows}


# --- claiming and releasing ---------------------------------------------------------------


def claim_batch(
    tx: Tx,
    company_id: int,
    run_id: int,
    size: int,
    now: datetime,
    *,
    summaries_only: bool = False,
) -> int:
    """Lease up to ``size`` pending orders to ``run_id``; returns how many it got.

    An order in a daily summary is never claimed (its summary is); with ``summaries_only``
    (posting = daily_summary) only daily summaries and orders to unpost are.

    PostgreSQL locks the candidate rows with FOR UPDATE SKIP LOCKED so concurrent claims
    never wait on each other; SQLite drops that clause silently, and there the
    ``status = 'pending'`` guard of the UPDATE under SQLite's single writer (BEGIN
    IMMEDIATE, store/database.py) does the same job.

    The candidates are a MATERIALIZED CTE, chosen once. As a plain ``IN (subquery)``
    PostgreSQL may plan a nested-loop semi-join that runs the subquery again for every
    row: each rerun skips the rows this UPDATE already changed and locks the next ones,
    so the claim swallowed the whole queue instead of ``size`` orders.
    """
    claimable = and_(
        o.c.company_id == company_id,
        o.c.status == OrderStatus.PENDING.value,
        o.c.summary_id.is_(None),
    )
    if summaries_only:
        claimable = and_(claimable, or_(o.c.summary_memo.is_not(None), o.c.unpost))
    candidates = (
        select(o.c.id)
        .where(claimable)
        .order_by(o.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("candidates")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    claimed = (
        tx.execute(
            update(o)
            .where(
                and_(
                    o.c.id.in_(select(candidates.c.id)),
                    o.c.status == OrderStatus.PENDING.value,
                )
            )
            .values(
                status=OrderStatus.IN_PROGRESS.value,
                stage=OrderStage.CHECK.value,
                lease_run_id=run_id,
                attempts=o.c.attempts + 1,
                updated_at=now,
            )
            .returning(o.c.id)
        )
        .scalars()
        .all()
    )
    if claimed:
        tx.execute(
            update(p)
            .where(
                and_(
                    p.c.order_id.in_(claimed),
                    p.c.status.in_((PaymentStatus.PENDING.value, PaymentStatus.ERROR.value)),
                )
            )
            .values(stage=OrderStage.CHECK.value, status=PaymentStatus.PENDING.value, error=None)
        )
    return len(claimed)


def release_run(tx: Tx, run_id: int, now: datetime, *, max_attempts: int) -> int:
    """Return a finished or abandoned run's unfinished orders to the queue.

    What they learnt (customer ListID, whether an add was sent) stays, so the next run
    knows that a transaction found in QuickBooks is its own lost add, not a stranger's.
    An order that has failed ``max_attempts`` times waits for a person instead.
    """
    base = and_(o.c.lease_run_id == run_id, o.c.status == OrderStatus.IN_PROGRESS.value)
    tx.execute(
        update(o)
        .where(and_(base, o.c.attempts >= max_attempts))
        .values(
            status=OrderStatus.ERROR.value,
            error=f"Gave up after {max_attempts} runs that did not finish this order: check the "
            "Web Connector log, then `qbwc-bridge retry`",
            updated_at=now,
        )
    )
    result = tx.execute(
        update(o)
        .where(base)
        .values(status=OrderStatus.PENDING.value, stage=OrderStage.CHECK.value, updated_at=now)
    )
    return int(result.rowcount)


def retry(tx: Tx, company_id: int, order_numbers: Sequence[str], now: datetime) -> list[str]:
    """Put errored orders (or orders with errored payments) back in the queue, and unposted
    ones (to be added again). An order to unpost that failed tries its undo again. An
    unposted daily summary is not added again: its orders were queued again instead."""
    has_payment_error = select(p.c.order_id).where(p.c.status == PaymentStatus.ERROR.value)
    where = and_(
        o.c.company_id == company_id,
        or_(
            o.c.status.in_((OrderStatus.ERROR.value, OrderStatus.UNPOSTED.value)),
            o.c.id.in_(has_payment_error),
        ),
        o.c.status != OrderStatus.IN_PROGRESS.value,
        o.c.summary_id.is_(None),
        ~and_(o.c.status == OrderStatus.UNPOSTED.value, o.c.summary_memo.is_not(None)),
    )
    if order_numbers:
        where = and_(where, o.c.order_number.in_(list(order_numbers)))
    ids_numbers = tx.execute(select(o.c.id, o.c.order_number).where(where)).all()
    ids = [row.id for row in ids_numbers]
    if ids:
        tx.execute(
            update(o)
            .where(o.c.id.in_(ids))
            .values(
                status=OrderStatus.PENDING.value,
                stage=OrderStage.CHECK.value,
                attempts=0,
                error=None,
                error_code=None,
                updated_at=now,
            )
        )
        tx.execute(
            update(p)
            .where(and_(p.c.order_id.in_(ids), p.c.status == PaymentStatus.ERROR.value))
            .values(status=PaymentStatus.PENDING.value, error=None)
        )
        tx.execute(
            update(p)
            .where(and_(p.c.order_id.in_(ids), p.c.status == PaymentStatus.UNPOSTED.value))
            .values(
                status=PaymentStatus.PENDING.value,
                stage=OrderStage.CHECK.value,
                error=None,
                add_sent=False,
            )
        )
    return [row.order_number for row in ids_numbers]


def resolve(
    tx: Tx, company_id: int, order_number: str, resolution: Resolution, now: datetime
) -> bool:
    """Queue an order that ended in a RefNumber conflict again, with a person's answer.

    False when the company has no such order in a RefNumber conflict.
    """
    result = tx.execute(
        update(o)
        .where(
            and_(
                o.c.company_id == company_id,
                o.c.order_number == order_number,
                o.c.status == OrderStatus.ERROR.value,
                o.c.error_code == REFNUMBER_CONFLICT,
            )
        )
        .values(
            status=OrderStatus.PENDING.value,
            stage=OrderStage.CHECK.value,
            resolution=resolution.value,
            attempts=0,
            error=None,
            error_code=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount == 1)


def status_of(tx: Tx, company_id: int, order_number: str) -> OrderStatus | None:
    value = tx.execute(
        select(o.c.status).where(
            and_(o.c.company_id == company_id, o.c.order_number == order_number)
        )
    ).scalar_one_or_none()
    return None if value is None else OrderStatus(value)


def cancel(
    tx: Tx, company_id: int, order_numbers: Sequence[str], now: datetime
) -> dict[str, tuple[OrderStatus, str | None]]:
    """Cancel the orders named of which nothing is in QuickBooks: pending, unposted, or in
    error without a TxnID, and no undo asked for, in no daily summary.

    Returns the status and TxnID of each named order that is not cancelled now (in
    QuickBooks, or in a run); numbers the company has no order of are not in it.
    """
    if not order_numbers:
        return {}
    named = and_(o.c.company_id == company_id, o.c.order_number.in_(list(order_numbers)))
    nothing_in_quickbooks = or_(
        o.c.status.in_((OrderStatus.PENDING.value, OrderStatus.UNPOSTED.value)),
        and_(o.c.status == OrderStatus.ERROR.value, o.c.qb_txn_id.is_(None)),
    )
    tx.execute(
        update(o)
        .where(
            and_(
                named,
                nothing_in_quickbooks,
                o.c.unpost.is_(False),
                o.c.summary_id.is_(None),
                o.c.summary_memo.is_(None),
            )
        )
        .values(status=OrderStatus.CANCELLED.value, updated_at=now)
    )
    rows = tx.execute(
        select(o.c.order_number, o.c.status, o.c.qb_txn_id).where(
            and_(named, o.c.status != OrderStatus.CANCELLED.value)
        )
    )
    return {row.order_number: (OrderStatus(row.status), row.qb_txn_id) for row in rows}


def reinstate(tx: Tx, company_id: int, order_numbers: Sequence[str], now: datetime) -> int:
    """Queue cancelled orders again (their channel sent them again, not deleted)."""
    if not order_numbers:
        return 0
    result = tx.execute(
        update(o)
        .where(
            and_(
                o.c.company_id == company_id,
                in_texts(o.c.order_number, "b_numbers"),
                o.c.status == OrderStatus.CANCELLED.value,
            )
        )
        .values(status=OrderStatus.PENDING.value, stage=OrderStage.CHECK.value, updated_at=now),
        {"b_numbers": list(order_numbers)},
    )
    return int(result.rowcount)


# --- guarded transitions within a run -------------------------------------------------------


_RECHECK_ORDERS = Direct(
    update(o).where(_HELD_IDS).values(stage=OrderStage.CHECK.value, updated_at=bindparam("b_now"))
)
_RECHECK_PAYMENTS = Direct(
    update(p)
    .where(
        and_(
            p.c.order_id.in_(select(o.c.id).where(_HELD_IDS)),
            p.c.status == PaymentStatus.PENDING.value,
        )
    )
    .values(stage=OrderStage.CHECK.value)
)
_ORDER_ADDS_SENT = Direct(
    update(o).where(and_(in_ids(o.c.id, "b_ids"), _LEASED_TO_RUN)).values(add_sent=True)
)
_PAYMENT_ADDS_SENT = Direct(update(p).where(in_ids(p.c.id, "b_ids")).values(add_sent=True))


def recheck(tx: Tx, run_id: int, order_ids: Sequence[int], now: datetime) -> None:
    """Orders whose answers never came start over at their duplicate checks.

    Whatever was sent may or may not have reached QuickBooks; only a fresh check can tell,
    so nothing is added again on a guess.
    """
    if not order_ids:
        return
    params = {"b_run": run_id, "b_ids": order_ids}
    _RECHECK_ORDERS.run(tx, [{**params, "b_now": now}])
    _RECHECK_PAYMENTS.run(tx, [params])


def mark_adds_sent(
    tx: Tx, run_id: int, order_ids: Sequence[int], payment_ids: Sequence[int]
) -> None:
    """Remember, before the request leaves, that this run is about to add these."""
    if order_ids:
        _ORDER_ADDS_SENT.run(tx, [{"b_ids": order_ids, "b_run": run_id}])
    if payment_ids:
        _PAYMENT_ADDS_SENT.run(tx, [{"b_ids": payment_ids}])


def waiting_count(tx: Tx, run_id: int) -> int:
    """How many of the run's orders are still in progress."""
    return int(tx.execute(_WAITING, {"b_run": run_id}).scalar_one())


def _order_columns(change: OrderChange) -> dict[str, Any]:
    """The columns an OrderChange sets (see docs/state-machine.md for the statuses)."""
    columns: dict[str, Any] = {}
    if change.stage is not None:
        columns["stage"] = change.stage.value
    if change.customer_list_id is not None:
        columns["customer_list_id"] = change.customer_list_id
    if change.txn is not None:
        columns["qb_txn_id"] = change.txn.txn_id
        columns["qb_ref_number"] = change.txn.ref_number
        columns["invoice_customer"] = change.txn.customer
        columns["qb_edit_sequence"] = change.txn.edit_sequence or None
        columns["qb_time_modified"] = change.txn.time_modified or None
    outcome = change.outcome
    if outcome is not None:
        columns["status"] = outcome.status.value
        if outcome.status is OrderStatus.UNPOSTED:
            # Nothing of it is in QuickBooks any more: `retry` adds it afresh.
            columns.update(_UNPOSTED_ORDER)
        if outcome.status is OrderStatus.PENDING:
            # Back in the queue: the next run starts with the checks again.
            columns["stage"] = OrderStage.CHECK.value
            columns["error"] = outcome.error
        else:
            columns["stage"] = OrderStage.DONE.value
            if outcome.status is OrderStatus.ERROR:
                columns["error"] = outcome.error
                columns["error_code"] = outcome.error_code
    return columns


def _payment_columns(change: PaymentChange) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if change.stage is not None:
        columns["stage"] = change.stage.value
    outcome = change.outcome
    if outcome is not None:
        columns["status"] = outcome.status.value
        columns["stage"] = OrderStage.DONE.value
        if outcome.status is PaymentStatus.ERROR:
            columns["error"] = outcome.error
        else:
            columns["qb_txn_id"] = outcome.qb_txn_id
            columns["qb_edit_sequence"] = outcome.edit_sequence or None
            columns["qb_time_modified"] = outcome.time_modified or None
        if outcome.status is PaymentStatus.UNPOSTED:
            columns["add_sent"] = False
    return columns


_UNPOSTED_ORDER: dict[str, Any] = {
    "unpost": False,
    "qb_txn_id": None,
    "qb_ref_number": None,
    "invoice_customer": None,
    "qb_edit_sequence": None,
    "qb_time_modified": None,
    "add_sent": False,
    "error": None,
    "error_code": None,
}


def apply_changes(
    tx: Tx,
    run_id: int,
    now: datetime,
    order_changes: Mapping[int, OrderChange],
    payment_changes: Mapping[int, PaymentChange],
) -> None:
    """Write what one message's answers taught the run, in a few executemany statements.

    Every row repeats the lease guard and the total row count is checked (LeaseLost).
    Payments go first: their guard needs their order still in progress.
    """
    for columns, rows in _grouped(
        {
            pid: {
                "b_id": pid,
                "b_order": change.order_id,
                "b_run": run_id,
                **_payment_columns(change),
            }
            for pid, change in payment_changes.items()
        }
    ).items():
        _execute_counted(tx, _payment_update(columns), rows, run_id)
    for columns, rows in _grouped(
        {
            oid: {"b_id": oid, "b_run": run_id, "updated_at": now, **_order_columns(change)}
            for oid, change in order_changes.items()
        }
    ).items():
        _execute_counted(tx, _order_update(columns), rows, run_id)
    ended = [
        order_id
        for order_id, change in order_changes.items()
        if change.outcome is not None and change.outcome.status in _ENDED
    ]
    outbox.record_outcomes(tx, ended, now)  # in this transaction: never lost, never early


_ENDED = frozenset(
    {OrderStatus.SYNCED, OrderStatus.DUPLICATE, OrderStatus.ERROR, OrderStatus.UNPOSTED}
)


_HELD_ORDER = select(o.c.id).where(and_(o.c.id == bindparam("b_order"), _HELD)).scalar_subquery()
_UPDATES: dict[tuple[str, tuple[str, ...]], Direct] = {}


def _payment_update(columns: tuple[str, ...]) -> Direct:
    """The guarded UPDATE of payments setting ``columns`` (built once per column set)."""
    key = ("payments", columns)
    if key not in _UPDATES:
        _UPDATES[key] = Direct(
            update(p)
            .where(and_(p.c.id == bindparam("b_id"), p.c.order_id == _HELD_ORDER))
            .values({column: bindparam(column) for column in columns})
        )
    return _UPDATES[key]


def _order_update(columns: tuple[str, ...]) -> Direct:
    """The guarded UPDATE of orders setting ``columns`` (built once per column set)."""
    key = ("orders", columns)
    if key not in _UPDATES:
        _UPDATES[key] = Direct(
            update(o)
            .where(and_(o.c.id == bindparam("b_id"), _HELD))
            .values({column: bindparam(column) for column in columns})
        )
    return _UPDATES[key]


def _grouped(rows: dict[int, dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows that set the same columns share one statement (executemany needs that)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows.values():
        columns = tuple(sorted(k for k in row if not k.startswith("b_")))
        groups[columns].append(row)
    return groups


def _execute_counted(tx: Tx, statement: Direct, rows: list[dict[str, Any]], run_id: int) -> None:
    if statement.run(tx, rows) != len(rows):
        raise LeaseLost(f"run {run_id} no longer holds some of its orders")
