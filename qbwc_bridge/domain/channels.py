"""Selling channels and their sync timers: what a pull reads and what it reports.

A channel is a store paired with one company (docs/channels.md). Its window is Connex's
pair of sync timers (LastDownloadUtc / LastDownloadUtcEnd): a pull reads the orders
modified inside it, and only a pull that read every page moves it on, to [pull start −
1 hour, pull start + 24 hours], so nothing between two pulls is ever skipped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

# After a complete pull the window restarts an hour before the pull began (orders modified
# while it ran, or stamped by a store clock that runs behind, are read again, harmlessly)
# and ends a day after (Connex: "an hour ago and tomorrow").
WINDOW_OVERLAP = timedelta(hours=1)
WINDOW_AHEAD = timedelta(hours=24)
# A new channel's window starts this long before it was added, unless told otherwise.
FIRST_WINDOW_BACK = timedelta(days=1)


class ChannelKind(enum.StrEnum):
    CUSTOM_STORE = "custom-store"  # the bridge pulls its orders and pushes stock to it
    WEBHOOK = "webhook"  # a receiver of signed JSON events


class TaskKind(enum.StrEnum):
    """What the worker does for a channel; each kind is leased on its own."""

    PULL = "pull"
    PUSH = "push"  # stock to a custom store, events to a webhook


@dataclass(frozen=True, slots=True)
class Window:
    """The modified-date range the next pull reads: [start, end), UTC."""

    start: datetime
    end: datetime

    @classmethod
    def first(cls, added_at: datetime, since: datetime | None = None) -> Window:
        start = since if since is not None else added_at - FIRST_WINDOW_BACK
        return cls(start, added_at + WINDOW_AHEAD)

    @classmethod
    def after_pull(cls, pull_started_at: datetime) -> Window:
        return cls(pull_started_at - WINDOW_OVERLAP, pull_started_at + WINDOW_AHEAD)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A pulled order that failed validation: not queued, listed with its problems."""

    order_number: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A pulled order that changed after it reached QuickBooks: reported, never re-posted."""

    order_number: str
    problem: str


@dataclass(frozen=True, slots=True)
class PullReport:
    """What one pull did (`channel show`'s last_pull)."""

    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "ok"  # "ok" or "error"
    received: int = 0  # orders read from the store
    queued: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: tuple[Conflict, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class PushState:
    """How far the channel has received what the bridge sends it."""

    cursor: int  # a product_updates cursor (custom store) or an outbox event id (webhook)
    last_delivery_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Channel:
    """A store paired with a company. Its secret stays sealed here (sealing.py opens it)."""

    id: int
    name: str
    company_id: int
    company: str
    kind: ChannelKind
    url: str
    username: str
    sealed_secret: str
    enabled: bool
    every_minutes: int
    window: Window
    order_statuses: tuple[str, ...] = ()
    store_names: tuple[str, ...] = ()
    created_at: datetime | None = None
    last_pull: PullReport | None = None
    events: tuple[str, ...] = ()  # a webhook's event types
    push: PushState | None = None


@dataclass(frozen=True, slots=True)
class LeasedTask:
    """A channel's task a worker holds: nobody else runs it until the lease ends."""

    channel_id: int
    kind: TaskKind
    token: str
    expires_at: datetime


# The events a webhook channel may receive (the outbox writes them, store/outbox.py).
STOCK_LEVELS = "stock_levels"
ORDER_OUTCOME = "order_outcome"
QUICKBOOKS_TRANSACTIONS = "quickbooks_transactions"  # exported_transactions rows
WEBHOOK_EVENTS = (STOCK_LEVELS, ORDER_OUTCOME, QUICKBOOKS_TRANSACTIONS)
# At most this many exported transactions go in one quickbooks_transactions delivery; the
# outbox records an export's rows as events of at most this many cursors each.
TRANSACTIONS_PER_DELIVERY = 100

# What `channel set NAME KEY VALUE` may change.
SETTING_KEYS = (
    "url",
    "username",
    "password",
    "enabled",
    "every_minutes",
    "order_statuses",
    "store_names",
    "window_start",
    "window_end",
    "events",
)


def comma_list(value: str) -> tuple[str, ...]:
    """ "shipped, completed" → ("shipped", "completed"); empty parts dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())
