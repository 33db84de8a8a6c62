"""What the admin console shows, read in one transaction per page; every list is a page
(a LIMIT on indexed columns), so a page costs the same with 100 000 orders queued. The
console's buttons call the same services as the command line (orders, posting, companies,
channels), not these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from qbwc_bridge.domain.company import Company
from qbwc_bridge.domain.orders import OrderStatus, QueuedOrder
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import push as push_service
from qbwc_bridge.store import Store
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import console as console_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import posting as posting_store
from qbwc_bridge.store.console import ExchangeRow, Glance, OrderRecord, OrderRow, RunRow, StockRow

PAGE = 50
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: its rows and the key of the next page (None: the last)."""

    rows: list[T]
    next_key: str | None


@dataclass(frozen=True, slots=True)
class OrderDetail:
    company: Company
    order: QueuedOrder
    record: OrderRecord
    payload_json: str  # the JMAUser JSON, indented
    last_run: RunRow | None
    exchanges: list[ExchangeRow]
    summary: str | None  # the daily summary it is in


def glance(store: Store) -> list[Glance]:
    with store.transaction() as tx:
        return console_store.glance(tx)


def order_status(text: str) -> str | None:
    """A status filter from a form: None for all; BridgeError for one that is none."""
    if not text:
        return None
    known = [status.value for status in OrderStatus]
    if text not in known:
        raise BridgeError(f"Unknown order status {text!r}; known: {', '.join(known)}")
    return text


def _before(key: str) -> int | None:
    if not key:
        return None
    if not key.isdigit() or len(key) > 19:
        raise BridgeError(f"{key[:20]!r} is not a page of this list")
    return int(key)


def orders(
    store: Store, company_name: str, *, status: str = "", search: str = "", before: str = ""
) -> tuple[Company, dict[str, int], Page[OrderRow]]:
    """The company, its counts by status, and one page of its orders, newest first; with
    ``search``, the first PAGE whose order number, then customer, starts with it."""
    wanted = order_status(status)
    search = search.strip()[:100]
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        counts = order_store.counts(tx, found.id)
        if search:  # the first matches only: a narrower search finds the rest
            matches = console_store.search_orders(tx, found.id, search, status=wanted, limit=PAGE)
            return found, counts, Page(matches, None)
        rows = console_store.order_page(
            tx, found.id, status=wanted, before=_before(before), limit=PAGE + 1
        )
    more = str(rows[PAGE - 1].id) if len(rows) > PAGE else None
    return found, counts, Page(rows[:PAGE], more)


def order(store: Store, company_name: str, order_number: str) -> OrderDetail:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        queued = posting_store.order_by_number(tx, found.id, order_number)
        record = console_store.order_record(tx, found.id, order_number)
        if queued is None or record is None:
            raise UnknownOrder(f"Company '{found.name}' has no order {order_number!r}.")
        last_run = exchanges = None
        if record.lease_run_id is not None:
            last_run = console_store.run(tx, record.lease_run_id)
            exchanges = console_store.order_exchanges(tx, record.lease_run_id, record.id)
        summary = posting_store.in_summary(tx, record.id)
    try:
        shown = json.dumps(json.loads(record.payload), indent=2, ensure_ascii=False)
    except ValueError:
        shown = record.payload
    return OrderDetail(found, queued, record, shown, last_run, exchanges or [], summary)


class UnknownOrder(BridgeError):
    """No order of that number in the company."""


def runs(store: Store, company_name: str, *, before: str = "") -> tuple[Company, Page[RunRow]]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        rows = console_store.run_page(tx, found.id, before=_before(before), limit=PAGE + 1)
    more = str(rows[PAGE - 1].id) if len(rows) > PAGE else None
    return found, Page(rows[:PAGE], more)


def channels(store: Store, company_name: str) -> tuple[Company, list[dict[str, Any]]]:
    """The company's channels as `channel show --json` prints them."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        shown = [
            channel_service.channel_json(channel, push_service.waiting_for(tx, channel))
            for channel in channel_store.list_channels(tx, found.id)
        ]
    return found, shown


def stock(
    store: Store, company_name: str, *, search: str = "", after: str = ""
) -> tuple[Company, Page[StockRow]]:
    search = search.strip()[:200]
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        rows = console_store.stock_page(
            tx, found.id, search=search, after=after[:200], limit=PAGE + 1
        )
    more = rows[PAGE - 1].sku if len(rows) > PAGE else None
    return found, Page(rows[:PAGE], more)
