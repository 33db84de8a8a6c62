"""Stock levels and events out to the channels: at least once, in order, one delivery in
flight per channel (docs/channels.md).

A delivery is prepared from what waits after the channel's cursor, kept with its id and
exact body, and sent until the receiver answers 2xx; only then does the cursor move. A
failed delivery waits (exponential backoff with jitter) and is sent again, the same id and
body, for up to 24 hours; after that the channel shows the failure and waits for a person
(`push --channel`, which sends at once, ignoring the backoff).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from qbwc_bridge.channels.custom_store import CustomStoreClient
from qbwc_bridge.channels.http import Sent
from qbwc_bridge.channels.webhook import WebhookClient
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import (
    QUICKBOOKS_TRANSACTIONS,
    STOCK_LEVELS,
    TRANSACTIONS_PER_DELIVERY,
    WEBHOOK_EVENTS,
    Channel,
    ChannelKind,
)
from qbwc_bridge.domain.inventory import ProductUpdate
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.sealing import Sealer
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, Tx, outbox, utcnow
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.store import orders as order_store

STOCK_ROWS_PER_REQUEST = 500
OUTCOMES_PER_REQUEST = 100
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=1)


class Receiver(Protocol):
    """Sends one delivery: a custom store's inventory endpoint, or a webhook receiver."""

    def send(self, event: str, delivery_id: str, body: bytes) -> Sent: ...

    def close(self) -> None: ...


class _StoreReceiver:
    def __init__(self, client: CustomStoreClient) -> None:
        self.client = client

    def send(self, event: str, delivery_id: str, body: bytes) -> Sent:
        return self.client.push_inventory(body)

    def close(self) -> None:
        self.client.close()


class _WebhookReceiver:
    def __init__(self, client: WebhookClient) -> None:
        self.client = client

    def send(self, event: str, delivery_id: str, body: bytes) -> Sent:
        return self.client.deliver(event, delivery_id, body)

    def close(self) -> None:
        self.client.close()


def receiver_for(channel: Channel, secret: str) -> Receiver:
    if channel.kind is ChannelKind.WEBHOOK:
        return _WebhookReceiver(WebhookClient(channel.url, secret))
    return _StoreReceiver(CustomStoreClient(channel.url, channel.username, secret))


ReceiverFactory = Callable[[Channel, str], Receiver]


@dataclass(frozen=True, slots=True)
class PushReport:
    delivered: int = 0  # requests a receiver took
    waiting: int = 0  # events or stock rows still waiting
    error: str | None = None
    gave_up: bool = False

    @property
    def complete(self) -> bool:
        return self.waiting == 0 and self.error is None


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after ``attempts`` failed attempts: doubling from 10 s, at most an hour,
    each scaled by a random 0.5-1.5 so that many channels do not retry in step."""
    wait = min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST_WAIT)
    return wait * (rng or _JITTER).uniform(0.5, 1.5)


_JITTER = random.Random()


# How soon a channel with nothing waiting is looked at again: what the Web Connector's
# runs add reaches the channels within this (a COUNT on an index per channel and look).
IDLE_LOOK_AGAIN = timedelta(seconds=5)


def next_push_due(report: PushReport, now: datetime, retry_at: datetime | None) -> datetime:
    """When the worker should push this channel again."""
    if report.error is not None and retry_at is not None:
        return retry_at
    return now if report.waiting else now + IDLE_LOOK_AGAIN


def retry_at(store: Store, channel: Channel) -> datetime | None:
    """When the channel's failed delivery is due again (None: nothing in flight)."""
    with store.transaction() as tx:
        delivery = outbox.delivery_of(tx, channel.id)
    return None if delivery is None else delivery.next_attempt_at


def push(
    store: Store,
    settings: Settings,
    channel: Channel,
    *,
    force: bool = False,
    clock: Callable[[], datetime] = utcnow,
    receiver: ReceiverFactory = receiver_for,
    on_delivery: Callable[[], None] | None = None,
) -> PushReport:
    """Deliver what waits for ``channel``, a delivery at a time, until nothing waits or a
    delivery fails. ``force`` sends at once, ignoring the backoff and the 24-hour cap."""
    secret = Sealer.from_settings(settings).open(channel.sealed_secret)
    delivered = 0
    error: str | None = None
    gave_up = False
    sender = receiver(channel, secret)
    try:
        while True:
            now = clock()
            with store.transaction() as tx:
                delivery = outbox.delivery_of(tx, channel.id) or _prepare(tx, channel, now)
            if delivery is None:
                break
            if not force and delivery.next_attempt_at > now:
                error = delivery.last_error
                break
            first = delivery.first_attempt_at
            if not force and first is not None and now - first >= GIVE_UP_AFTER:
                error, gave_up = delivery.last_error, True
                break
            sent = sender.send(delivery.event, delivery.delivery_id, delivery.body.encode())
            with store.transaction() as tx:
                done = clock()
                if sent.ok:
                    outbox.delivered(tx, delivery, done)
                    delivered += 1
                else:
                    started = delivery.first_attempt_at or done
                    stops = done - started >= GIVE_UP_AFTER
                    outbox.failed(
                        tx,
                        delivery,
                        done,
                        done + backoff(delivery.attempts + 1),
                        sent.status,
                        sent.answer,
                        _gave_up_message(sent.answer) if stops else None,
                    )
                    error, gave_up = sent.answer, stops
            if not sent.ok:
                break
            if on_delivery is not None:
                try:
                    on_delivery()  # holds the worker's lease; raises when it must stop
                except BridgeError as stopped:
                    error = stopped.message
                    break
    finally:
        sender.close()
    with store.transaction() as tx:
        waiting = waiting_for(tx, channel)
    return PushReport(delivered=delivered, waiting=waiting, error=error, gave_up=gave_up)


def _gave_up_message(answer: str) -> str:
    return (
        "Delivery failed for 24 hours; it waits for `qbwc-bridge push --channel NAME` "
        f"(the receiver's last answer: {answer})"
    )


def waiting_for(tx: Tx, channel: Channel) -> int:
    """Stock rows (custom store) or events (webhook) after the channel's cursor."""
    cursor = outbox.push_cursor(tx, channel.id)
    if channel.kind is ChannelKind.CUSTOM_STORE:
        return outbox.count_stock_after(tx, channel.company_id, cursor)
    return outbox.count_events_after(tx, channel.company_id, cursor, _events(channel))


def _events(channel: Channel) -> tuple[str, ...]:
    return channel.events or WEBHOOK_EVENTS


# --- what a delivery carries ---------------------------------------------------------------------


def _stock_row(row: ProductUpdate) -> dict[str, Any]:
    """As the custom-store API and the stock_levels event carry a level (docs/channels.md)."""
    on_hand = row.quantity_on_hand or Decimal(0)
    available = max(on_hand - (row.quantity_on_sales_order or Decimal(0)), Decimal(0))
    return {
        "sku": row.sku,
        "quantity_on_hand": _number(on_hand),
        "quantity_available": _number(available),
        "updated_at": _time(row.updated_at),
    }


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _prepare(tx: Tx, channel: Channel, now: datetime) -> outbox.Delivery | None:
    """The channel's next delivery from what waits after its cursor, or None."""
    cursor = outbox.push_cursor(tx, channel.id)
    delivery_id = str(uuid.uuid4())
    if channel.kind is ChannelKind.CUSTOM_STORE:
        rows = inventory_store.since(tx, channel.company_id, cursor, STOCK_ROWS_PER_REQUEST)
        if not rows:
            return None
        body = _body([_stock_row(row) for row in rows])
        return outbox.start_delivery(
            tx, channel.id, delivery_id, STOCK_LEVELS, body, rows[-1].cursor, now
        )
    while True:
        events = outbox.events_after(
            tx, channel.company_id, cursor, _events(channel), OUTCOMES_PER_REQUEST
        )
        if not events:
            return None
        first = events[0]
        if first.kind != QUICKBOOKS_TRANSACTIONS:
            break
        data, last = _transactions(tx, channel, events)
        if data:
            return _start_event(tx, channel, delivery_id, first.kind, data, last, now)
        # Each of their rows changed again since, and goes out with that later event.
        outbox.skip_to(tx, channel.id, last)
        cursor = last
    if first.kind == STOCK_LEVELS:
        rows = inventory_store.since(
            tx,
            channel.company_id,
            first.from_cursor or 0,
            STOCK_ROWS_PER_REQUEST,
            upto=first.to_cursor,
        )
        data = [_stock_row(row) for row in rows]
        last = first.id
    else:
        batch = []
        for event in events:
            if event.kind != first.kind:
                break
            batch.append(event)
        found = {o.id: o for o in order_store.by_ids(tx, [e.order_id for e in batch if e.order_id])}
        data = [order_service.order_json(found[e.order_id]) for e in batch if e.order_id in found]
        last = batch[-1].id
    return _start_event(tx, channel, delivery_id, first.kind, data, last, now)


def _transactions(
    tx: Tx, channel: Channel, events: list[outbox.Event]
) -> tuple[list[dict[str, Any]], int]:
    """The exported rows of the leading quickbooks_transactions events, as the feed gives
    them (GET /api/quickbooks-transactions), and the last event they cover: consecutive
    events together while their cursors span at most TRANSACTIONS_PER_DELIVERY."""
    start = events[0].from_cursor or 0
    end = events[0].to_cursor or 0
    last = events[0].id
    for event in events[1:]:
        if event.kind != QUICKBOOKS_TRANSACTIONS:
            break
        upto = event.to_cursor or 0
        if upto - start > TRANSACTIONS_PER_DELIVERY:
            break
        end, last = max(end, upto), event.id
    # A row has one cursor, so the range holds at most end - start rows: none is cut off.
    rows = export_store.since(tx, channel.company_id, start, max(end - start, 1), upto=end)
    return [row.as_json() for row in rows], last


def _start_event(
    tx: Tx,
    channel: Channel,
    delivery_id: str,
    kind: str,
    data: list[Any],
    last: int,
    now: datetime,
) -> outbox.Delivery:
    """A webhook delivery of one event type: the envelope of docs/channels.md."""
    body = _body(
        {
            "id": delivery_id,
            "type": kind,
            "company": channel.company,
            "created_at": _time(now),
            "data": data,
        }
    )
    return outbox.start_delivery(tx, channel.id, delivery_id, kind, body, last, now)
