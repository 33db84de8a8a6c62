"""Channel use cases shared by the CLI, the worker and the HTTP API: pair, configure, pull.

A pull streams the store's pages into the same intake as `enqueue`, one transaction per
page: what earlier pages queued stays queued when a later page fails, and the window moves
on only after a pull that read every page (docs/channels.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from qbwc_bridge.channels.custom_store import CustomStoreClient, StoreFailure
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import (
    SETTING_KEYS,
    WEBHOOK_EVENTS,
    Channel,
    ChannelKind,
    Conflict,
    PullReport,
    Rejected,
    TaskKind,
    Window,
    comma_list,
)
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.sealing import Sealer
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store

CONFLICT_PROBLEM = "changed after it reached QuickBooks: not posted again"
# Opens a store client; tests and the benchmark hand in their own timeouts.
ClientFactory = Callable[[Channel, str], CustomStoreClient]


class StoreRefused(BridgeError):
    """The store did not accept the bridge's credentials."""


def _client(channel: Channel, password: str) -> CustomStoreClient:
    return CustomStoreClient(channel.url, channel.username, password)


def add_custom_store(
    store: Store,
    settings: Settings,
    *,
    name: str,
    company: str,
    url: str,
    username: str,
    password: str,
    order_statuses: str = "",
    store_names: str = "",
    every_minutes: int = 60,
    since: datetime | None = None,
    client: ClientFactory = _client,
) -> Channel:
    """Pair a custom store: only after it answers OK to the bridge's credentials."""
    name = name.strip()
    if not name:
        raise BridgeError("A channel needs a name")
    if every_minutes < 1:
        raise BridgeError("every_minutes must be at least 1")
    sealer = Sealer.from_settings(settings)
    now = utcnow()
    probe = Channel(
        id=0,
        name=name,
        company_id=0,
        company=company,
        kind=ChannelKind.CUSTOM_STORE,
        url=url,
        username=username,
        sealed_secret="",
        enabled=True,
        every_minutes=every_minutes,
        window=Window.first(now, since),
    )
    with client(probe, password) as store_client:
        answer = store_client.authenticate()
    if not answer.ok:
        raise StoreRefused(
            f"The store at {url} did not accept the credentials of {username!r}: {answer.message}"
        )
    with store.transaction() as tx:
        found = company_store.by_name(tx, company)
        return channel_store.add(
            tx,
            company_id=found.id,
            name=name,
            kind=ChannelKind.CUSTOM_STORE,
            url=url,
            username=username,
            sealed_secret=sealer.seal(password),
            every_minutes=every_minutes,
            window=Window.first(now, since),
            order_statuses=comma_list(order_statuses),
            store_names=comma_list(store_names),
            now=now,
        )


def add_webhook(
    store: Store,
    settings: Settings,
    *,
    name: str,
    company: str,
    url: str,
    secret: str,
    events: str = "",
) -> Channel:
    """Pair a receiver of signed events; it first receives what happens from now on."""
    name = name.strip()
    chosen = comma_list(events) or WEBHOOK_EVENTS
    unknown = [event for event in chosen if event not in WEBHOOK_EVENTS]
    if not name or unknown:
        raise BridgeError(
            f"Unknown event type(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}"
            if unknown
            else "A channel needs a name"
        )
    if len(secret) < 16:
        raise BridgeError("A webhook secret needs at least 16 characters (the receiver's key)")
    if not url.startswith(("https://", "http://")):
        raise BridgeError("url is the receiver's address, https://…")
    sealer = Sealer.from_settings(settings)
    now = utcnow()
    with store.transaction() as tx:
        found = company_store.by_name(tx, company)
        added = channel_store.add(
            tx,
            company_id=found.id,
            name=name,
            kind=ChannelKind.WEBHOOK,
            url=url,
            username="",
            sealed_secret=sealer.seal(secret),
            every_minutes=60,
            window=Window.first(now),
            order_statuses=(),
            store_names=(),
            now=now,
            events=chosen,
        )
        channel_store.start_at_newest_event(tx, added.id, found.id)
        return channel_store.get(tx, added.id)


def channel(store: Store, name: str) -> Channel:
    with store.transaction() as tx:
        return channel_store.by_name(tx, name)


def channels(store: Store, company: str | None = None) -> list[Channel]:
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, company).id if company else None
        return channel_store.list_channels(tx, company_id)


def remove(store: Store, name: str) -> None:
    with store.transaction() as tx:
        channel_store.remove(tx, channel_store.by_name(tx, name).id)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BridgeError(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def set_setting(store: Store, settings: Settings, name: str, key: str, value: str) -> Channel:
    """`channel set`: validate one setting and store it (a password sealed)."""
    if key not in SETTING_KEYS:
        raise BridgeError(f"Unknown channel setting {key!r}; known: {', '.join(SETTING_KEYS)}")
    now = utcnow()
    with store.transaction() as tx:
        found = channel_store.by_name(tx, name)
        values: dict[str, Any] = {}
        if key == "password":
            values["sealed_secret"] = Sealer.from_settings(settings).seal(value)
        elif key == "enabled":
            if value.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise BridgeError("enabled is true or false")
            values["enabled"] = value.lower() in ("true", "yes", "1", "on")
        elif key == "every_minutes":
            if not value.isdigit() or int(value) < 1:
                raise BridgeError("every_minutes is a whole number of minutes, at least 1")
            values["every_minutes"] = int(value)
        elif key in ("order_statuses", "store_names"):
            values[key] = comma_list(value)
        elif key in ("window_start", "window_end"):
            when = parse_time(value)
            start = when if key == "window_start" else found.window.start
            end = when if key == "window_end" else found.window.end
            if end <= start:
                raise BridgeError("The window must end after it starts")
            values["window"] = Window(start, end)
        elif key == "url":
            if not value.startswith(("https://", "http://")):
                raise BridgeError("url is the store's API base, https://…")
            values["url"] = value
        else:
            values[key] = value
        channel_store.update_settings(tx, found.id, now, **values)
        return channel_store.get(tx, found.id)


def request_pull(store: Store, name: str) -> Channel:
    """Make the channel's pull due now (the worker takes it)."""
    with store.transaction() as tx:
        found = channel_store.by_name(tx, name)
        channel_store.request(tx, found.id, TaskKind.PULL, utcnow())
        return found


# --- the pull ---------------------------------------------------------------------------------


def pull(
    store: Store,
    settings: Settings,
    found: Channel,
    *,
    client: ClientFactory = _client,
    clock: Callable[[], datetime] = utcnow,
    on_page: Callable[[int], None] | None = None,
) -> PullReport:
    """Read the channel's window from its store into the queue; record what happened."""
    started = clock()
    password = Sealer.from_settings(settings).open(found.sealed_secret)
    report = PullReport(started_at=started)
    rejected: dict[str, list[str]] = defaultdict(list)
    conflicts: list[Conflict] = []
    try:
        with client(found, password) as store_client:
            for page in store_client.pages(
                found.window.start,
                found.window.end,
                order_statuses=found.order_statuses,
                store_names=found.store_names,
            ):
                queued = order_service.enqueue(store, found.company, page.orders, skip_invalid=True)
                for problem in queued.problems:
                    number = problem.order_number or "(no OrderNumber)"
                    rejected[number].append(f"{problem.field}: {problem.problem}")
                conflicts += [Conflict(n, CONFLICT_PROBLEM) for n in queued.conflicts]
                report = replace(
                    report,
                    received=report.received + len(page.orders),
                    queued=report.queued + queued.queued,
                    updated=report.updated + queued.updated,
                    unchanged=report.unchanged + queued.unchanged,
                )
                if on_page is not None:
                    on_page(report.received)
    except (StoreFailure, BridgeError) as error:
        report = replace(report, outcome="error", error=error.message)
    report = replace(
        report,
        finished_at=clock(),
        conflicts=tuple(conflicts),
        rejected=tuple(Rejected(n, tuple(p)) for n, p in rejected.items()),
    )
    with store.transaction() as tx:
        next_window = Window.after_pull(started) if report.complete else None
        channel_store.record_pull(tx, found.id, report, next_window, clock())
    return report


def next_pull_due(found: Channel, now: datetime) -> datetime:
    return now + timedelta(minutes=found.every_minutes)


# --- what `channel show --json` prints (docs/channels.md) --------------------------------------


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def channel_json(found: Channel, waiting: int = 0) -> dict[str, Any]:
    """``waiting``: what still waits for the channel (push.waiting_for)."""
    last = found.last_pull
    return {
        "name": found.name,
        "company": found.company,
        "kind": found.kind.value,
        "url": found.url,
        "enabled": found.enabled,
        "every_minutes": found.every_minutes,
        "order_statuses": list(found.order_statuses),
        "store_names": list(found.store_names),
        "window": {"start": _time(found.window.start), "end": _time(found.window.end)},
        "last_pull": None
        if last is None
        else {
            "started_at": _time(last.started_at),
            "finished_at": _time(last.finished_at),
            "outcome": last.outcome,
            "received": last.received,
            "queued": last.queued,
            "updated": last.updated,
            "unchanged": last.unchanged,
            "conflicts": [
                {"order_number": c.order_number, "problem": c.problem} for c in last.conflicts
            ],
            "rejected": [
                {"order_number": r.order_number, "problems": list(r.problems)}
                for r in last.rejected
            ],
            "error": last.error,
        },
        "events": list(found.events),
        "push": {
            "cursor": found.push.cursor if found.push else 0,
            "waiting": waiting,
            "last_delivery_at": _time(found.push.last_delivery_at) if found.push else None,
            "last_error": found.push.last_error if found.push else None,
        },
    }
