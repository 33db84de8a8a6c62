"""A Web Connector run and its exchanges, as the engine sees them between callbacks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    DONE = "done"


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
    inventory_state: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
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
    request_map: dict[str, dict[str, Any]]
    sent_at: datetime
    received_at: datetime | None = None
