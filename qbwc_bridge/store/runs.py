"""Runs (one per authenticated Web Connector session) and their exchanges."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnClause

from qbwc_bridge.domain.company import Company
from qbwc_bridge.domain.runs import (
    Exchange,
    ExportState,
    InventoryState,
    OpenRun,
    RequestKind,
    RequestMap,
    RequestPurpose,
    Run,
    RunStage,
    RunStatus,
    RunSummary,
)
from qbwc_bridge.errors import InvalidTicket
from qbwc_bridge.store import companies, orders, schema
from qbwc_bridge.store.database import Tx, as_utc
from qbwc_bridge.store.direct import Direct

r = schema.runs
x = schema.exchanges
c = schema.companies


# The statements of every callback, built once: building a statement costs several times
# more than running it on SQLite (bind parameters carry the values).
# The leased run's columns as its RETURNING subqueries must name them: SQLite's RETURNING
# leaves column names unqualified, and a bare "id" inside a subquery means the subquery's own.
_RUN_ID: ColumnClause[int] = literal_column(f"{r.name}.id")
_RUN_COMPANY_ID: ColumnClause[int] = literal_column(f"{r.name}.company_id")
# What a Run is made of (the lease returns no more: every column returned costs a little).
_RUN_COLUMNS = [
    r.c[name]
    for name in (
        "id", "company_id", "status", "stage", "expires_at", "qbxml_version", "country",
        "company_file", "last_error", "batch_size", "exchanges", "inventory_due",
        "inventory_state", "summary", "export_due", "export_state",
    )
]  # fmt: skip
_BY_TICKET = select(*_RUN_COLUMNS).where(r.c.ticket_hash == bindparam("b_ticket"))
_BY_TICKET_LOCKED = _BY_TICKET.with_for_update()
_COMPANY_OF_RUN = [
    select(c.c[name]).where(c.c.id == _RUN_COMPANY_ID).scalar_subquery()
    for name in companies.COMPANY_COLUMNS
]


# Whether the run's request still waits for its answer. Only its last exchange can: a send
# records the answer to a waiting one as lost before it adds another. Looking at the last
# one is a single index step back, where asking for "any unanswered exchange" walked all
# of the run's exchanges (150 late in a run of 50 orders at one order per message).
_LAST_EXCHANGE_UNANSWERED = (
    select(x.c.received_at.is_(None))
    .where(x.c.run_id == _RUN_ID)
    .order_by(x.c.seq.desc())
    .limit(1)
    .scalar_subquery()
)


def _lease_statement(*, count_waiting: bool) -> Any:
    return (
        update(r)
        .where(
            and_(
                r.c.ticket_hash == bindparam("b_ticket"),
                r.c.status == RunStatus.OPEN.value,
                r.c.expires_at >= bindparam("b_now"),
            )
        )
        .values(last_seen_at=bindparam("b_seen"), expires_at=bindparam("b_expires"))
        .returning(
            *_RUN_COLUMNS,
            _LAST_EXCHANGE_UNANSWERED.label("awaiting_answer"),
            *([orders.waiting_of(_RUN_ID).label("waiting_orders")] if count_waiting else []),
            # The run's company comes along: one statement where a callback used to need
            # two. (Subqueries: SQLite's RETURNING cannot name another table's columns.)
            *_COMPANY_OF_RUN,
        )
    )


_LEASE = Direct(_lease_statement(count_waiting=False))
_LEASE_COUNTING = Direct(_lease_statement(count_waiting=True))
_SET_ERROR = update(r).where(r.c.id == bindparam("b_id")).values(last_error=bindparam("b_error"))
_UPDATES: dict[tuple[str, ...], Any] = {}


# How each database names a conflict with uq_runs_one_open_per_company.
_ONE_OPEN_RUN = ("uq_runs_one_open_per_company", "runs.company_id")


class CompanyBusy(Exception):
    """Another run holds this company."""


# --- how a run's typed values are kept in JSON columns ------------------------------------
# The keys are short: a request map is written at every sendRequestXML.


def _stored_purpose(purpose: RequestPurpose) -> dict[str, Any]:
    stored: dict[str, Any] = {"k": purpose.kind.value}
    if purpose.order_id is not None:
        stored["o"] = purpose.order_id
    if purpose.payment_id is not None:
        stored["p"] = purpose.payment_id
    if purpose.kind is RequestKind.CUSTOMER_QUERY:
        stored["n"] = list(purpose.customer_names)
    elif purpose.customer_names:
        stored["n"] = purpose.customer_names[0]
    if purpose.inventory_phase is not None:
        stored["phase"] = purpose.inventory_phase
    if purpose.item_names:
        stored["i"] = list(purpose.item_names)
    return stored


def _purpose(stored: dict[str, Any]) -> RequestPurpose:
    names = stored.get("n", ())
    return RequestPurpose(
        kind=RequestKind(stored["k"]),
        order_id=int(stored["o"]) if "o" in stored else None,
        payment_id=int(stored["p"]) if "p" in stored else None,
        customer_names=(names,) if isinstance(names, str) else tuple(names),
        inventory_phase=stored.get("phase"),
        item_names=tuple(stored.get("i", ())),
    )


def stored_request_map(request_map: RequestMap) -> dict[str, dict[str, Any]]:
    return {request_id: _stored_purpose(p) for request_id, p in request_map.items()}


def _request_map(stored: dict[str, dict[str, Any]]) -> RequestMap:
    return {request_id: _purpose(p) for request_id, p in stored.items()}


def _stored_summary(summary: RunSummary) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    if summary.suspects:
        stored["suspects"] = list(summary.suspects)
    if summary.outcomes is not None:
        stored["outcomes"] = summary.outcomes
    return stored


def _summary(stored: dict[str, Any] | None) -> RunSummary:
    stored = stored or {}
    return RunSummary(
        suspects=tuple(int(s) for s in stored.get("suspects", ())),
        outcomes=stored.get("outcomes"),
    )


def _stored_state(state: InventoryState) -> dict[str, Any]:
    stored = dataclasses.asdict(state)
    stored["started_at"] = state.started_at.isoformat()
    stored["from"] = state.modified_from.isoformat() if state.modified_from else ""
    del stored["modified_from"]
    return stored


def _state(stored: dict[str, Any] | None) -> InventoryState | None:
    if not stored:
        return None
    values = dict(stored)
    modified_from = values.pop("from", "")
    values["modified_from"] = datetime.fromisoformat(modified_from) if modified_from else None
    values["started_at"] = datetime.fromisoformat(values["started_at"])
    return InventoryState(**values)


def _stored_export_state(state: ExportState) -> dict[str, Any]:
    stored = dataclasses.asdict(state)
    stored["phases"] = list(state.phases)
    stored["started_at"] = state.started_at.isoformat()
    stored["from"] = state.modified_from.isoformat() if state.modified_from else ""
    del stored["modified_from"]
    return stored


def _export_state(stored: dict[str, Any] | None) -> ExportState | None:
    if not stored:
        return None
    values = dict(stored)
    modified_from = values.pop("from", "")
    values["modified_from"] = datetime.fromisoformat(modified_from) if modified_from else None
    values["started_at"] = datetime.fromisoformat(values["started_at"])
    values["phases"] = tuple(values["phases"])
    return ExportState(**values)


def _to_run(
    row: Sequence[Any], *, awaiting_answer: bool = False, waiting_orders: int | None = None
) -> Run:
    """The Run of a row that starts with _RUN_COLUMNS, in their order."""
    (
        run_id, company_id, status, stage, expires_at, qbxml_version, country, company_file,
        last_error, batch_size, exchanges, inventory_due, inventory_state, summary,
        export_due, export_state,
    ) = row[: len(_RUN_COLUMNS)]  # fmt: skip
    return Run(
        id=run_id,
        company_id=company_id,
        status=RunStatus(status),
        stage=RunStage(stage),
        expires_at=as_utc(expires_at),
        qbxml_version=qbxml_version,
        country=country,
        company_file=company_file,
        last_error=last_error,
        batch_size=batch_size,
        exchanges=exchanges,
        inventory_due=inventory_due,
        inventory_state=_state(inventory_state),
        summary=_summary(summary),
        export_due=bool(export_due),
        export_state=_export_state(export_state),
        awaiting_answer=awaiting_answer,
        waiting_orders=waiting_orders,
    )


def open_run(
    tx: Tx,
    company_id: int,
    ticket_hash: bytes,
    now: datetime,
    expires_at: datetime,
    *,
    inventory_due: bool,
    export_due: bool = False,
) -> Run:
    """Start a run; raises CompanyBusy while another open run holds the company."""
    try:
        # The partial unique index allows one open run per company; a savepoint keeps the
        # surrounding transaction usable when it refuses.
        with tx.begin_nested():
            result = tx.execute(
                insert(r).values(
                    company_id=company_id,
                    ticket_hash=ticket_hash,
                    status=RunStatus.OPEN.value,
                    stage=RunStage.NEGOTIATE.value,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                    batch_size=0,
                    exchanges=0,
                    inventory_due=inventory_due,
                    export_due=export_due,
                    summary={},
                )
            )
    except IntegrityError as error:
        # Only the one-open-run index means "busy"; any other conflict is a real fault.
        if not any(mark in str(error.orig) for mark in _ONE_OPEN_RUN):
            raise
        raise CompanyBusy() from None
    assert result.inserted_primary_key is not None
    return get(tx, int(result.inserted_primary_key[0]))


def get(tx: Tx, run_id: int) -> Run:
    return _to_run(tx.execute(select(*_RUN_COLUMNS).where(r.c.id == run_id)).one())


def by_ticket(tx: Tx, ticket_hash: bytes, *, lock: bool = False) -> Run:
    """The run a ticket names, or InvalidTicket. ``lock`` serialises callbacks of one run."""
    query = _BY_TICKET_LOCKED if lock else _BY_TICKET
    row = tx.execute(query, {"b_ticket": ticket_hash}).one_or_none()
    if row is None:
        raise InvalidTicket()
    return _to_run(row)


def lease(
    tx: Tx, ticket_hash: bytes, now: datetime, expires_at: datetime, *, count_waiting: bool = False
) -> tuple[Run, Company]:
    """The ticket's open run, locked and its lease extended, and its company: one statement.

    The run comes with ``awaiting_answer`` (whether one of its requests still waits) and,
    with ``count_waiting``, ``waiting_orders`` (how many of its orders are in progress).

    Raises InvalidTicket saying why when the ticket is unknown, or its run ended or expired.
    """
    rows = (_LEASE_COUNTING if count_waiting else _LEASE).rows(
        tx, {"b_ticket": ticket_hash, "b_now": now, "b_seen": now, "b_expires": expires_at}
    )
    if rows:
        row = rows[0]
        run = _to_run(
            row,
            awaiting_answer=bool(row[len(_RUN_COLUMNS)]),
            waiting_orders=row[len(_RUN_COLUMNS) + 1] if count_waiting else None,
        )
        return run, companies.from_columns(*row[-len(companies.COMPANY_COLUMNS) :])
    run = by_ticket(tx, ticket_hash)
    if run.status is not RunStatus.OPEN:
        raise InvalidTicket("This run has ended: let the Web Connector start a new one.")
    raise InvalidTicket(
        "The run of this ticket has expired or was closed: let the Web Connector start a new run"
    )


def start_orders(
    tx: Tx, run_id: int, *, qbxml_version: str, country: str, company_file: str, batch_size: int
) -> None:
    """The run has negotiated its qbXML version and claimed its batch: walk the orders."""
    _update(
        tx,
        run_id,
        stage=RunStage.ORDERS.value,
        qbxml_version=qbxml_version,
        country=country,
        company_file=company_file,
        batch_size=batch_size,
    )


def set_stage(tx: Tx, run_id: int, stage: RunStage) -> None:
    _update(tx, run_id, stage=stage.value)


def set_summary(tx: Tx, run_id: int, summary: RunSummary) -> None:
    _update(tx, run_id, summary=_stored_summary(summary))


def set_inventory_state(tx: Tx, run_id: int, state: InventoryState) -> None:
    _update(tx, run_id, inventory_state=_stored_state(state))


def set_export_state(tx: Tx, run_id: int, state: ExportState) -> None:
    _update(tx, run_id, export_state=_stored_export_state(state))


def _update(tx: Tx, run_id: int, **values: Any) -> None:
    columns = tuple(sorted(values))
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = _UPDATES[columns] = (
            update(r)
            .where(r.c.id == bindparam("b_id"))
            .values({column: bindparam(column) for column in columns})
        )
    tx.execute(statement, {"b_id": run_id, **values})


def set_error(tx: Tx, run_id: int, message: str) -> None:
    tx.execute(_SET_ERROR, {"b_id": run_id, "b_error": message})


def close(tx: Tx, run_id: int, status: RunStatus, now: datetime) -> bool:
    """Close an open run; False when it was already closed (closing twice is harmless)."""
    result = tx.execute(
        update(r)
        .where(and_(r.c.id == run_id, r.c.status == RunStatus.OPEN.value))
        .values(status=status.value, closed_at=now, exchanges=_EXCHANGES_SENT)
    )
    return result.rowcount == 1


def expired_open_runs(tx: Tx, now: datetime, company_id: int | None = None) -> list[int]:
    query = select(r.c.id).where(and_(r.c.status == RunStatus.OPEN.value, r.c.expires_at < now))
    if company_id is not None:
        query = query.where(r.c.company_id == company_id)
    return [int(v) for v in tx.execute(query).scalars()]


def open_runs(tx: Tx, company_id: int | None = None) -> list[OpenRun]:
    last_sent = (
        select(x.c.sent_at)
        .where(and_(x.c.run_id == r.c.id, x.c.received_at.is_(None)))
        .order_by(x.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            r.c.id,
            c.c.name,
            r.c.created_at,
            r.c.last_seen_at,
            r.c.expires_at,
            last_sent,
        )
        .join(c, c.c.id == r.c.company_id)
        .where(r.c.status == RunStatus.OPEN.value)
        .order_by(r.c.id)
    )
    if company_id is not None:
        query = query.where(r.c.company_id == company_id)
    return [
        OpenRun(
            int(run_id),
            name,
            as_utc(created_at),
            as_utc(last_seen_at),
            as_utc(expires_at),
            as_utc(in_flight),
        )
        for run_id, name, created_at, last_seen_at, expires_at, in_flight in tx.execute(query)
    ]


# --- exchanges --------------------------------------------------------------------------


def _to_exchange(row: Sequence[Any]) -> Exchange:
    """The Exchange of an _ANSWER_PENDING row."""
    exchange_id, run_id, seq, request_map, sent_at, received_at = row
    return Exchange(
        id=exchange_id,
        run_id=run_id,
        seq=seq,
        request_map=_request_map(request_map),
        sent_at=as_utc(sent_at),
        received_at=as_utc(received_at),
    )


# The exchange numbers itself (one after the run's last): one statement per send. The
# callback holds the run's row locked, so no other exchange of the run is added meanwhile.
_ADD_EXCHANGE = Direct(
    insert(x)
    .values(
        run_id=bindparam("b_run"),
        seq=select(func.coalesce(func.max(x.c.seq), 0) + 1)
        .where(x.c.run_id == bindparam("b_run"))
        .scalar_subquery(),
        request_xml=bindparam("b_xml"),
        request_map=bindparam("b_map", type_=x.c.request_map.type),
        sent_at=bindparam("b_now", type_=x.c.sent_at.type),
    )
    .returning(x.c.id, x.c.seq)
)
# A run's exchange count is written once, when it ends.
_EXCHANGES_SENT = select(func.count()).where(x.c.run_id == r.c.id).scalar_subquery()


def add_exchange(
    tx: Tx, run_id: int, request_xml: str, request_map: RequestMap, now: datetime
) -> Exchange:
    stored = stored_request_map(request_map)
    ((exchange_id, seq),) = _ADD_EXCHANGE.rows(
        tx, {"b_run": run_id, "b_xml": request_xml, "b_map": stored, "b_now": now}
    )
    return Exchange(id=exchange_id, run_id=run_id, seq=seq, request_map=request_map, sent_at=now)


# Enough of a response to diagnose a run; a full inventory page (0.4 MB) each time would
# make the exchanges table the largest in the database. QBWC_BRIDGE_RECORD_DIR keeps all.
STORED_RESPONSE_CHARS = 65536


_ANSWER_PENDING = Direct(
    update(x)
    .where(
        and_(
            # The run's last exchange, if it still waits (only the last one can; see
            # _LAST_EXCHANGE_UNANSWERED). Asking the subquery for "the last unanswered
            # one" instead made PostgreSQL's cached plan read all of the run's exchanges
            # and sort them: it could not count on the newest matching.
            x.c.id
            == select(x.c.id)
            .where(x.c.run_id == bindparam("b_run"))
            .order_by(x.c.seq.desc())
            .limit(1)
            .scalar_subquery(),
            x.c.received_at.is_(None),
        )
    )
    .values(
        response_xml=bindparam("b_xml"),
        hresult=bindparam("b_hresult"),
        message=bindparam("b_message"),
        received_at=bindparam("b_now"),
    )
    .returning(x.c.id, x.c.run_id, x.c.seq, x.c.request_map, x.c.sent_at, x.c.received_at)
)


def answer_pending(
    tx: Tx, run_id: int, response_xml: str, hresult: str, message: str, now: datetime
) -> Exchange | None:
    """Record the answer to the run's waiting exchange (QuickBooks' response, or "lost")
    and return that exchange, in one statement; None when nothing waits."""
    if len(response_xml) > STORED_RESPONSE_CHARS:
        response_xml = response_xml[:STORED_RESPONSE_CHARS] + "\n<!-- truncated -->"
    rows = _ANSWER_PENDING.rows(
        tx,
        {
            "b_run": run_id,
            "b_xml": response_xml,
            "b_hresult": hresult,
            "b_message": message,
            "b_now": now,
        },
    )
    return _to_exchange(rows[0]) if rows else None
