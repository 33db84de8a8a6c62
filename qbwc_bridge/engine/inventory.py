"""The inventory step: page ItemInventoryQuery (then assemblies) into product_updates.

The iterator lives only inside this run (QuickBooks expires it, and the Web Connector
may never come back), so its state is kept on the run and dropped with it; a query whose
iterator expired simply starts again.

Which items are asked for: everything on a company's first query; afterwards only items
modified since the last *successful* query started, less a safety margin. QuickBooks does
not touch an item's TimeModified when sales move its quantities, so such changes only show
up in a full query: the first query of each UTC day is a full one. A failed query (an
error status, an iterator that kept expiring) does not move the "since" mark forward, so
nothing it missed is skipped by the next one.

Like engine/steps.py, these halves talk to no database: the unit of work (engine/run.py)
loads the state and writes what an answer decided.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qbwc_bridge.domain.inventory import ItemDetails, StockLevel
from qbwc_bridge.domain.runs import InventoryState, RequestKind, RequestMap, RequestPurpose
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.responses import QbRecord, QbResponse
from qbwc_bridge.qbxml.status import Outcome, classify, explain

PAGE_SIZE = 500
# Items changed while the previous query ran, or stamped by a QuickBooks clock that runs
# behind ours, are fetched again rather than missed.
CLOCK_SKEW_MARGIN = timedelta(minutes=10)
# An iterator QuickBooks no longer knows (expired, or from another session).
ITERATOR_INVALID_CODES = frozenset({3390, 3391, 3392})
# "Feature not enabled": an edition without assemblies (Pro) simply has none.
FEATURE_NOT_ENABLED = 3250
MAX_RESTARTS = 3
PHASES = ("items", "assemblies")


def query_from(synced_from: datetime | None, now: datetime) -> datetime | None:
    """FromModifiedDate for a query starting ``now``; None means a full query."""
    if synced_from is None or synced_from.date() < now.date():
        return None
    return synced_from - CLOCK_SKEW_MARGIN


def stock_level(record: QbRecord) -> StockLevel | None:
    """The product_updates row of one ItemInventoryRet / ItemInventoryAssemblyRet, with
    the item's details where the answer has them (an older qbXML version may lack some)."""
    sku = record.full_name or record.name
    if not sku:
        return None
    return StockLevel(
        sku=sku,
        quantity_on_hand=record.quantity_on_hand,
        quantity_on_order=record.quantity_on_order,
        quantity_on_sales_order=record.quantity_on_sales_order,
        qb_list_id=record.list_id,
        qb_time_modified=record.time_modified,
        details=ItemDetails(
            name=record.name or None,
            description=record.sales_desc,
            sales_price=record.sales_price,
            average_cost=record.average_cost,
            purchase_cost=record.purchase_cost,
        ),
    )


@dataclass(frozen=True, slots=True)
class InventoryAnswer:
    """What one answer to the inventory query decided; the unit of work writes it."""

    state: InventoryState
    levels: list[StockLevel] = field(default_factory=list)
    error: str | None = None  # for getLastError: this query may be incomplete

    @property
    def succeeded(self) -> bool:
        """The query is over and read everything: the next one may start from now."""
        return self.state.finished and not self.state.failed


def start(synced_from: datetime | None, now: datetime) -> InventoryState:
    """The state of a query starting ``now``, incremental from ``synced_from`` if today."""
    return InventoryState(
        phase=PHASES[0], started_at=now, modified_from=query_from(synced_from, now)
    )


def next_request(state: InventoryState) -> tuple[list[tuple[str, build.Request]], RequestMap]:
    """The next page's request (Start or Continue), or nothing once the query is done."""
    if state.finished:
        return [], {}
    request = build.inventory_query(
        max_returned=PAGE_SIZE,
        from_modified=state.modified_from,
        iterator="Continue" if state.iterator_id else "Start",
        iterator_id=state.iterator_id or None,
        assemblies=state.phase == "assemblies",
    )
    purpose = RequestPurpose(RequestKind.INVENTORY, inventory_phase=state.phase)
    return [("inv", request)], {"inv": purpose}


def handle(
    state: InventoryState, request_map: RequestMap, responses: list[QbResponse]
) -> InventoryAnswer:
    """The response half: the page's stock levels and where the query goes next."""
    # The message carries one request: an answer without a requestID (QuickBooks omits
    # it when a request had none, as in recorded sessions) can only be that one.
    only = next(iter(request_map)) if len(request_map) == 1 else None
    answer = next(
        (
            response
            for response in responses
            if response.request_id in request_map or (not response.request_id and only)
        ),
        None,
    )
    if answer is None:
        # Whatever page QuickBooks produced was not read: this query cannot be complete.
        found = _fail(
            state, "QuickBooks' answer to the inventory query was missing from its response."
        )
    else:
        found = _page(state, answer)
    return dataclasses.replace(found, state=with_progress(found.state))


def _page(state: InventoryState, response: QbResponse) -> InventoryAnswer:
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED:
        return _failed(state, response)
    levels = [level for record in response.records if (level := stock_level(record)) is not None]
    remaining = response.iterator_remaining or 0
    state = dataclasses.replace(
        state,
        fetched=state.fetched + len(levels),
        pass_fetched=state.pass_fetched + len(levels),
        pages=state.pages + 1,
        remaining=remaining,
    )
    if response.iterator_id and remaining > 0:
        return InventoryAnswer(dataclasses.replace(state, iterator_id=response.iterator_id), levels)
    return InventoryAnswer(_next_phase(state), levels)


def _failed(state: InventoryState, response: QbResponse) -> InventoryAnswer:
    code = response.status.code
    if code in ITERATOR_INVALID_CODES and state.restarts < MAX_RESTARTS:
        # Start the same query again: rows already written are unchanged, so rewriting
        # them touches nothing.
        restarted = dataclasses.replace(
            state, iterator_id="", pass_fetched=0, remaining=0, restarts=state.restarts + 1
        )
        return InventoryAnswer(restarted)
    if code == FEATURE_NOT_ENABLED and state.phase == "assemblies":
        return InventoryAnswer(_next_phase(state))
    return _fail(state, explain(response.status, response.kind))


def _fail(state: InventoryState, reason: str) -> InventoryAnswer:
    error = (
        f"The inventory query ({state.phase}) failed, so product updates may be "
        f"incomplete until the next one: {reason}"
    )
    return InventoryAnswer(_next_phase(dataclasses.replace(state, failed=True)), error=error)


def _next_phase(state: InventoryState) -> InventoryState:
    position = PHASES.index(state.phase)
    state = dataclasses.replace(
        state,
        iterator_id="",
        pass_fetched=0,
        remaining=0,
        fraction=(position + 1) / len(PHASES),
    )
    if position + 1 < len(PHASES):
        return dataclasses.replace(state, phase=PHASES[position + 1])
    return dataclasses.replace(state, finished=True)


def with_progress(state: InventoryState) -> InventoryState:
    """The share of the query done, for the run's progress; never backwards, even when an
    expired iterator starts its phase again."""
    if state.finished:
        return state
    done, remaining = state.pass_fetched, state.remaining
    within = done / (done + remaining) if done + remaining else 0.0
    position = PHASES.index(state.phase)
    return dataclasses.replace(
        state, fraction=max(state.fraction, (position + within) / len(PHASES))
    )
