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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from qbwc_bridge.domain.company import Company
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.domain.runs import Run, RunStage
from qbwc_bridge.qbxml import build, versions
from qbwc_bridge.qbxml.responses import QbRecord, QbResponse
from qbwc_bridge.qbxml.status import Outcome, classify, explain
from qbwc_bridge.store import Store, Tx
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.store import runs as run_store

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
    """The product_updates row of one ItemInventoryRet / ItemInventoryAssemblyRet."""
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
    )


class InventoryStep:
    """Request and response halves of the inventory query for one run."""

    def __init__(self, store: Store, tx: Tx, run: Run, company: Company, now: datetime) -> None:
        self.store = store
        self.tx = tx
        self.run = run
        self.company = company
        self.now = now
        self.state: dict[str, Any] = dict(run.inventory_state or {})
        if not self.state:
            since = query_from(company_store.inventory_synced_from(tx, company.id), now)
            self.state = {
                "phase": PHASES[0],
                "iterator_id": "",
                "started_at": now.isoformat(),
                "from": since.isoformat() if since else "",
                "fetched": 0,  # items read, over all pages and restarts
                "pass_fetched": 0,  # items read by the current iterator
                "remaining": 0,
                "changed": 0,
                "pages": 0,
                "restarts": 0,
                "failed": False,
                "finished": False,
                "fraction": 0.0,
            }

    def next_requests(
        self, version: versions.QbxmlVersion
    ) -> tuple[list[tuple[str, build.Request]], dict[str, dict[str, object]]]:
        """The next page's request (Start or Continue), or nothing once the query is done."""
        if self.state["finished"]:
            return [], {}
        iterator_id = self.state["iterator_id"]
        request = build.inventory_query(
            max_returned=PAGE_SIZE,
            from_modified=datetime.fromisoformat(self.state["from"])
            if self.state["from"]
            else None,
            iterator="Continue" if iterator_id else "Start",
            iterator_id=iterator_id or None,
            assemblies=self.state["phase"] == "assemblies",
        )
        self._save()
        return [("inv", request)], {"inv": {"k": "inv", "phase": self.state["phase"]}}

    def handle(
        self, request_map: dict[str, dict[str, object]], responses: list[QbResponse]
    ) -> None:
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
            self._fail("QuickBooks' answer to the inventory query was missing from its response.")
        else:
            self._page(answer)
        self._save()

    def _page(self, response: QbResponse) -> None:
        outcome = classify(response.status, response.kind)
        if outcome is Outcome.FAILED:
            self._failed(response)
            return
        levels = [
            level for record in response.records if (level := stock_level(record)) is not None
        ]
        self.state["changed"] += inventory_store.upsert(self.tx, self.company.id, levels, self.now)
        self.state["fetched"] += len(levels)
        self.state["pass_fetched"] += len(levels)
        self.state["pages"] += 1
        remaining = response.iterator_remaining or 0
        self.state["remaining"] = remaining
        if response.iterator_id and remaining > 0:
            self.state["iterator_id"] = response.iterator_id
        else:
            self._next_phase()

    def _failed(self, response: QbResponse) -> None:
        code = response.status.code
        if code in ITERATOR_INVALID_CODES and self.state["restarts"] < MAX_RESTARTS:
            # Start the same query again: rows already written are unchanged, so rewriting
            # them touches nothing.
            self.state.update(
                iterator_id="", pass_fetched=0, remaining=0, restarts=self.state["restarts"] + 1
            )
            return
        if code == FEATURE_NOT_ENABLED and self.state["phase"] == "assemblies":
            self._next_phase()
            return
        self._fail(explain(response.status, response.kind))

    def _fail(self, reason: str) -> None:
        self.state["failed"] = True
        run_store.set_error(
            self.tx,
            self.run.id,
            f"The inventory query ({self.state['phase']}) failed, so product updates may be "
            f"incomplete until the next one: {reason}",
        )
        self._next_phase()

    def _next_phase(self) -> None:
        self.state.update(iterator_id="", pass_fetched=0, remaining=0)
        position = PHASES.index(self.state["phase"])
        self.state["fraction"] = (position + 1) / len(PHASES)
        if position + 1 < len(PHASES):
            self.state["phase"] = PHASES[position + 1]
            return
        self.state["finished"] = True
        if not self.state["failed"]:
            started = datetime.fromisoformat(self.state["started_at"])
            company_store.set_inventory_synced_from(self.tx, self.company.id, started)
        every = timedelta(minutes=self.company.settings.inventory_every_minutes)
        company_store.set_inventory_due_at(self.tx, self.company.id, self.now + every)
        run_store.update_run(self.tx, self.run.id, stage=RunStage.DONE)

    def _save(self) -> None:
        if not self.state["finished"]:
            done, remaining = self.state["pass_fetched"], self.state["remaining"]
            within = done / (done + remaining) if done + remaining else 0.0
            position = PHASES.index(self.state["phase"])
            # Never backwards, even when an expired iterator starts its phase again.
            self.state["fraction"] = max(
                float(self.state["fraction"]), (position + within) / len(PHASES)
            )
        run_store.update_run(self.tx, self.run.id, inventory_state=self.state)
