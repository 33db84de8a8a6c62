"""A Web Connector run and its exchanges, as the engine sees them between callbacks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class RunStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"
    ABANDONED = "abandoned"


class RunStage(enum.StrEnum):
    """Where a run is: the step list of one Web Connector run."""

    NEGOTIATE = "negotiate"  # waiting for the first sendRequestXML (strHCPResponse)
    ORDERS = "orders"  # walking the claimed batch
    INVENTORY = "inventory"  # paging the inventory query
    EXPORT = "export"  # paging the transactions read back out for the channels
    DONE = "done"


class RequestKind(enum.StrEnum):
    """What one request of a message is for (the values are what an exchange stores)."""

    CUSTOMER_QUERY = "cq"
    CUSTOMER_ADD = "ca"
    TXN_QUERY = "tq"
    TXN_ADD = "ta"
    PAYMENT_QUERY = "pq"
    PAYMENT_ADD = "pa"
    INVENTORY = "inv"
    EXPORT = "exp"
    ITEM_QUERY = "iq"  # which of a message's SKUs QuickBooks has (create_missing_items)
    ITEM_ADD = "ia"  # a non-inventory item for an unknown SKU
    UNPOST_CHECK = "uc"  # an undo's check that what the bridge added is unchanged
    TXN_DEL = "td"  # an undo's TxnDel of a payment (with payment_id) or of the transaction


@dataclass(frozen=True, slots=True)
class RequestPurpose:
    """Why a request was sent, so its answer can be handed to the right step.

    ``customer_names`` holds every name a CustomerQuery asked for, or the one name a
    CustomerAdd adds; ``inventory_phase`` is the inventory query's phase; ``item_names``
    every item an ItemQuery asked for, or the one an item add adds.
    """

    kind: RequestKind
    order_id: int | None = None
    payment_id: int | None = None
    customer_names: tuple[str, ...] = ()
    inventory_phase: str | None = None
    item_names: tuple[str, ...] = ()


# A message's requests by their requestID.
RequestMap = dict[str, RequestPurpose]


def order_ids(request_map: RequestMap) -> list[int]:
    """The orders a message carried requests for, each once, in the message's order."""
    seen: dict[int, None] = {}
    for purpose in request_map.values():
        if purpose.order_id is not None:
            seen[purpose.order_id] = None
    return list(seen)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run notes about itself between callbacks.

    ``suspects``: orders of a message QuickBooks could not parse, sent one per message
    until the culprit is found; ``outcomes``: how the run's orders ended, once it has.
    """

    suspects: tuple[int, ...] = ()
    outcomes: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class InventoryState:
    """The inventory query's progress within one run (the iterator never outlives it)."""

    phase: str
    started_at: datetime
    modified_from: datetime | None  # None: a full query
    iterator_id: str = ""
    fetched: int = 0  # items read, over all pages and restarts
    pass_fetched: int = 0  # items read by the current iterator
    remaining: int = 0
    changed: int = 0
    pages: int = 0
    restarts: int = 0
    failed: bool = False
    finished: bool = False
    fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class ExportState:
    """The export's progress within one run: which query it pages (a transaction type of
    ``phases``, the last one "deleted"), its iterator (never outliving the run), counts."""

    phase: str
    phases: tuple[str, ...]
    started_at: datetime
    modified_from: datetime | None  # None: a full pass
    iterator_id: str = ""
    fetched: int = 0  # transactions and deletions read, over all pages and restarts
    pass_fetched: int = 0  # read by the current iterator
    remaining: int = 0
    changed: int = 0  # rows that took a new cursor
    pages: int = 0
    restarts: int = 0
    failed: bool = False
    finished: bool = False
    fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    company_id: int
    status: RunStatus
    stage: RunStage
    expires_at: datetime
    qbxml_version: str | None = None
    country: str | None = None
    company_file: str | None = None
    last_error: str | None = None
    batch_size: int = 0
    exchanges: int = 0
    inventory_due: bool = False
    inventory_state: InventoryState | None = None
    summary: RunSummary = field(default_factory=RunSummary)
    export_due: bool = False
    export_state: ExportState | None = None
    # As the callback's lease found them: a request of this run still waits for its answer;
    # how many of its orders are in progress (when the lease was asked to count them).
    awaiting_answer: bool = False
    waiting_orders: int | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One sendRequestXML answer: what each request was for, and when it was answered.

    The qbXML texts stay in the database for diagnosis; no step reads them back.
    """

    id: int
    run_id: int
    seq: int
    request_map: RequestMap
    sent_at: datetime
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenRun:
    """An open run as `runs --company` lists it, and as a new login weighs it."""

    id: int
    company: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    # When the request still waiting for its answer was sent; None when none waits.
    in_flight_since: datetime | None
