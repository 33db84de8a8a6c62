"""Channels, their windows and last pulls, and the worker's leased tasks.

A task is claimed like an order (docs/architecture.md): one guarded UPDATE whose WHERE
clause does the real work, with FOR UPDATE SKIP LOCKED on PostgreSQL so workers on many
hosts never wait for each other, and every later step repeats the lease token.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from qbwc_bridge.domain.channels import (
    Channel,
    ChannelKind,
    Conflict,
    LeasedTask,
    PullReport,
    PushState,
    Rejected,
    TaskKind,
    Window,
)
from qbwc_bridge.errors import BridgeError, LeaseLost
from qbwc_bridge.store import schema
from qbwc_bridge.store.database import Tx, as_utc

ch, t, c = schema.channels, schema.tasks, schema.companies


class ChannelExists(BridgeError):
    """A channel of that name exists already: choose another name."""


class UnknownChannel(BridgeError):
    """No such channel: `qbwc-bridge channel list` shows them."""


_CHANNEL_COLUMNS = (
    ch.c.id, ch.c.name, ch.c.company_id, c.c.name, ch.c.kind, ch.c.url, ch.c.username,
    ch.c.sealed_secret, ch.c.enabled, ch.c.every_minutes, ch.c.window_start, ch.c.window_end,
    ch.c.order_statuses, ch.c.store_names, ch.c.created_at, ch.c.last_pull, ch.c.events,
    ch.c.push_cursor, ch.c.last_delivery_at, ch.c.push_error,
)  # fmt: skip
_SELECT = select(*_CHANNEL_COLUMNS).join(c, c.c.id == ch.c.company_id)


def _to_channel(row: Any) -> Channel:
    (
        channel_id, name, company_id, company, kind, url, username, sealed, enabled, every,
        start, end, statuses, stores, created_at, last_pull, events, push_cursor,
        last_delivery_at, push_error,
    ) = row  # fmt: skip
    return Channel(
        id=channel_id,
        name=name,
        company_id=company_id,
        company=company,
        kind=ChannelKind(kind),
        url=url,
        username=username,
        sealed_secret=sealed,
        enabled=bool(enabled),
        every_minutes=every,
        window=Window(as_utc(start), as_utc(end)),
        order_statuses=tuple(statuses or ()),
        store_names=tuple(stores or ()),
        created_at=as_utc(created_at),
        last_pull=_report(last_pull),
        events=tuple(events or ()),
        push=PushState(int(push_cursor or 0), as_utc(last_delivery_at), push_error),
    )


def add(
    tx: Tx,
    *,
    company_id: int,
    name: str,
    kind: ChannelKind,
    url: str,
    username: str,
    sealed_secret: str,
    every_minutes: int,
    window: Window,
    order_statuses: tuple[str, ...],
    store_names: tuple[str, ...],
    now: datetime,
    events: tuple[str, ...] = (),
) -> Channel:
    """A new channel, its tasks due at once (a custom store: pull and push; a webhook: push)."""
    try:
        with tx.begin_nested():
            result = tx.execute(
                insert(ch).values(
                    company_id=company_id,
                    name=name,
                    kind=kind.value,
                    url=url,
                    username=username,
                    sealed_secret=sealed_secret,
                    enabled=True,
                    every_minutes=every_minutes,
                    order_statuses=list(order_statuses),
                    store_names=list(store_names),
                    window_start=window.start,
                    window_end=window.end,
                    events=list(events),
                    push_cursor=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        raise ChannelExists(f"A channel named {name!r} exists already") from None
    assert result.inserted_primary_key is not None
    channel_id = int(result.inserted_primary_key[0])
    kinds = [TaskKind.PULL, TaskKind.PUSH] if kind is ChannelKind.CUSTOM_STORE else [TaskKind.PUSH]
    tx.execute(
        insert(t), [{"channel_id": channel_id, "kind": k.value, "due_at": now} for k in kinds]
    )
    return get(tx, channel_id)


def get(tx: Tx, channel_id: int) -> Channel:
    row = tx.execute(_SELECT.where(ch.c.id == channel_id)).one_or_none()
    if row is None:
        raise UnknownChannel()
    return _to_channel(row)


def by_name(tx: Tx, name: str) -> Channel:
    row = tx.execute(_SELECT.where(ch.c.name == name)).one_or_none()
    if row is None:
        raise UnknownChannel(f"No channel named {name!r}: `qbwc-bridge channel list` shows them")
    return _to_channel(row)


def list_channels(tx: Tx, company_id: int | None = None) -> list[Channel]:
    query = _SELECT.order_by(ch.c.name)
    if company_id is not None:
        query = query.where(ch.c.company_id == company_id)
    return [_to_channel(row) for row in tx.execute(query)]


def remove(tx: Tx, channel_id: int) -> None:
    tx.execute(delete(t).where(t.c.channel_id == channel_id))
    tx.execute(delete(ch).where(ch.c.id == channel_id))


def update_settings(tx: Tx, channel_id: int, now: datetime, **values: Any) -> None:
    """Change settings `channel set` validated (names as the columns, secret sealed)."""
    if "window" in values:
        window: Window = values.pop("window")
        values.update(window_start=window.start, window_end=window.end)
    for key in ("order_statuses", "store_names", "events"):
        if key in values:
            values[key] = list(values[key])
    tx.execute(update(ch).where(ch.c.id == channel_id).values(updated_at=now, **values))


def start_at_newest_event(tx: Tx, channel_id: int, company_id: int) -> None:
    """A new webhook receives what happens from now on, not the company's history."""
    newest = tx.execute(
        select(func.coalesce(func.max(schema.outbox_events.c.id), 0)).where(
            schema.outbox_events.c.company_id == company_id
        )
    ).scalar_one()
    tx.execute(update(ch).where(ch.c.id == channel_id).values(push_cursor=int(newest)))


def reseal_all(tx: Tx, reseal: Any) -> int:
    """Seal every channel's secret again (key rotation); returns how many."""
    rows = tx.execute(select(ch.c.id, ch.c.sealed_secret)).all()
    for channel_id, sealed in rows:
        tx.execute(update(ch).where(ch.c.id == channel_id).values(sealed_secret=reseal(sealed)))
    return len(rows)


# --- a pull's outcome -------------------------------------------------------------------------


def _stored_report(report: PullReport) -> dict[str, Any]:
    stored = asdict(report)
    stored["started_at"] = report.started_at.isoformat()
    stored["finished_at"] = report.finished_at.isoformat() if report.finished_at else None
    return stored


def _report(stored: dict[str, Any] | None) -> PullReport | None:
    if not stored:
        return None
    values = dict(stored)
    values["started_at"] = datetime.fromisoformat(values["started_at"])
    finished = values.get("finished_at")
    values["finished_at"] = datetime.fromisoformat(finished) if finished else None
    values["conflicts"] = tuple(Conflict(**item) for item in values.get("conflicts", ()))
    values["rejected"] = tuple(
        Rejected(item["order_number"], tuple(item["problems"]))
        for item in values.get("rejected", ())
    )
    return PullReport(**values)


def record_pull(
    tx: Tx, channel_id: int, report: PullReport, next_window: Window | None, now: datetime
) -> None:
    """Keep the pull's report; move the window only after a complete pull."""
    values: dict[str, Any] = {"last_pull": _stored_report(report), "updated_at": now}
    if next_window is not None:
        values.update(window_start=next_window.start, window_end=next_window.end)
    tx.execute(update(ch).where(ch.c.id == channel_id).values(**values))


# --- tasks ------------------------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    return and_(
        or_(t.c.due_at <= now, t.c.requested_at.is_not(None)),
        or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at < now),
        t.c.channel_id.in_(select(ch.c.id).where(ch.c.enabled.is_(True))),
    )


def claim_task(
    tx: Tx,
    token: str,
    now: datetime,
    lease: timedelta,
    channel_id: int | None = None,
    kind: TaskKind = TaskKind.PULL,
) -> LeasedTask | None:
    """Lease the task due longest (or that channel's ``kind`` task), or None when nothing is
    due.

    PostgreSQL: the candidate is chosen with FOR UPDATE SKIP LOCKED, so concurrent workers
    take different tasks; SQLite (one writer) relies on the guard repeated in the UPDATE.
    """
    candidate = select(t.c.channel_id, t.c.kind).where(_claimable(now))
    if channel_id is not None:
        candidate = candidate.where(and_(t.c.channel_id == channel_id, t.c.kind == kind.value))
    candidate = (
        candidate.order_by(t.c.requested_at.is_(None), t.c.due_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    found = tx.execute(candidate).one_or_none()
    if found is None:
        return None
    expires = now + lease
    result = tx.execute(
        update(t)
        .where(and_(t.c.channel_id == found.channel_id, t.c.kind == found.kind, _claimable(now)))
        .values(lease_token=token, lease_expires_at=expires, requested_at=None, last_started_at=now)
    )
    if result.rowcount != 1:
        return None  # another worker took it between the two statements (SQLite)
    return LeasedTask(found.channel_id, TaskKind(found.kind), token, expires)


def _held(task: LeasedTask) -> Any:
    return and_(
        t.c.channel_id == task.channel_id,
        t.c.kind == task.kind.value,
        t.c.lease_token == task.token,
    )


def renew_task(tx: Tx, task: LeasedTask, now: datetime, lease: timedelta) -> LeasedTask:
    """Extend the lease while working; LeaseLost when another worker has the task now."""
    expires = now + lease
    result = tx.execute(update(t).where(_held(task)).values(lease_expires_at=expires))
    if result.rowcount != 1:
        raise LeaseLost(f"The {task.kind.value} task of channel {task.channel_id} was taken over")
    return LeasedTask(task.channel_id, task.kind, task.token, expires)


def finish_task(tx: Tx, task: LeasedTask, now: datetime, next_due: datetime) -> bool:
    """Give the task back with its next due time; False when the lease was lost."""
    result = tx.execute(
        update(t)
        .where(_held(task))
        .values(lease_token=None, lease_expires_at=None, due_at=next_due, last_finished_at=now)
    )
    return bool(result.rowcount == 1)


def request(tx: Tx, channel_id: int, kind: TaskKind, now: datetime) -> None:
    """Ask for the channel's task now (a worker, or the command that asked, runs it)."""
    tx.execute(
        update(t)
        .where(and_(t.c.channel_id == channel_id, t.c.kind == kind.value))
        .values(requested_at=now)
    )


def request_company_pulls(tx: Tx, company_id: int, now: datetime) -> None:
    """Make the company's channels due now: one statement, as an authenticate may afford."""
    tx.execute(
        update(t)
        .where(
            and_(
                t.c.kind == TaskKind.PULL.value,
                t.c.requested_at.is_(None),
                t.c.channel_id.in_(select(ch.c.id).where(ch.c.company_id == company_id)),
            )
        )
        .values(requested_at=now)
    )


def next_due_at(tx: Tx) -> datetime | None:
    """When the next task falls due (for the worker's sleep)."""
    value = tx.execute(
        select(t.c.due_at)
        .where(t.c.channel_id.in_(select(ch.c.id).where(ch.c.enabled.is_(True))))
        .order_by(t.c.due_at)
        .limit(1)
    ).scalar_one_or_none()
    return as_utc(value)
