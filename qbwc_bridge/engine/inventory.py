"""The inventory step: page ItemInventoryQuery (then assemblies) into product_updates.

The iterator lives only inside this run (QuickBooks expires it, and the Web Connector
may never come back), so its state is kept on the run and dropped with it; a query whose
iterator expired simply starts again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from qbwc_bridge.domain.company import Company
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.domain.runs import Run, RunStage
from qbwc_bridge.qbxml import build, versions
from qbwc_bridge.qbxml.responses import QbResponse
from qbwc_bridge.qbxml.status import Outcome, classify
from qbwc_bridge.store import Store, Tx
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.store import runs as run_store

PAGE_SIZE = 500
# Items changed while the previous query ran, or stamped by a QuickBooks clock that runs
# behind ours, are fetched again rather than missed.
CLOCK_SKEW_MARGIN = timedelta(minutes=10)
ITERATOR_INVALID_CODES = {3391, 3390, 3392}
ASSEMBLIES_FROM = versions.QbxmlVersion(2, 0)
MAX_RESTARTS = 3


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
            synced_from = company_store.inventory_synced_from(tx, company.id)
            self.state = {
                "phase": "items",
                "iterator_id": "",
                "started_at": now.isoformat(),
                "from": (synced_from - CLOCK_SKEW_MARGIN).isoformat() if synced_from else "",
                "fetched": 0,
                "remaining": 0,
                "changed": 0,
                "restarts": 0,
                "finished": False,
            }

    def next_requests(
        self, version: versions.QbxmlVersion
    ) -> tuple[list[tuple[str, build.Request]], dict[str, dict[str, object]]]:
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
        for response in responses:
            if response.request_id in request_map:
                self._page(response)
        self._save()

    def _page(self, response: QbResponse) -> None:
        outcome = classify(response.status, response.kind)
        if outcome is Outcome.FAILED:
            if (
                response.status.code in ITERATOR_INVALID_CODES
                and self.state["restarts"] < MAX_RESTARTS
            ):
                self.state.update(iterator_id="", restarts=self.state["restarts"] + 1)
                return
            run_store.set_error(
                self.tx,
                self.run.id,
                f"The inventory query failed: QuickBooks error {response.status.code}: "
                f"{response.status.message}",
            )
            self._next_phase()
            return
        levels = [
            StockLevel(
                sku=record.full_name or record.name,
                quantity_on_hand=record.quantity_on_hand,
                quantity_on_order=record.quantity_on_order,
                quantity_on_sales_order=record.quantity_on_sales_order,
                qb_list_id=record.list_id,
                qb_time_modified=record.time_modified,
            )
            for record in response.records
            if record.full_name or record.name
        ]
        self.state["changed"] += inventory_store.upsert(self.tx, self.company.id, levels, self.now)
        self.state["fetched"] += len(levels)
        remaining = response.iterator_remaining or 0
        self.state["remaining"] = remaining
        if outcome is Outcome.OK and response.iterator_id and remaining > 0:
            self.state["iterator_id"] = response.iterator_id
        else:
            self._next_phase()

    def _next_phase(self) -> None:
        self.state.update(iterator_id="", remaining=0)
        if self.state["phase"] == "items":
            self.state["phase"] = "assemblies"
            return
        self.state["finished"] = True
        started = datetime.fromisoformat(self.state["started_at"])
        company_store.set_inventory_synced_from(self.tx, self.company.id, started)
        every = timedelta(minutes=self.company.settings.inventory_every_minutes)
        company_store.set_inventory_due_at(self.tx, self.company.id, self.now + every)
        run_store.update_run(self.tx, self.run.id, stage=RunStage.DONE)

    def _save(self) -> None:
        fetched, remaining = self.state["fetched"], self.state["remaining"]
        self.state["fraction"] = 0.5 * (self.state["phase"] == "assemblies") + 0.5 * (
            fetched / (fetched + remaining) if fetched + remaining else 0.0
        )
        run_store.update_run(self.tx, self.run.id, inventory_state=self.state)
