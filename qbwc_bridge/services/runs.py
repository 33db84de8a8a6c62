"""Run use cases: the open Web Connector runs, and ending one that went astray."""

from __future__ import annotations

from qbwc_bridge.domain.runs import OpenRun, RunStatus
from qbwc_bridge.engine.steps import MAX_RUNS
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import runs as run_store


def open_runs(store: Store, company_name: str) -> list[OpenRun]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return run_store.open_runs(tx, found.id)


def end_run(store: Store, company_name: str, run_id: int | None = None) -> tuple[int, int]:
    """End the company's open run (the one named, or the only one): its orders go back to
    the queue. Returns (run id, orders released)."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        runs = run_store.open_runs(tx, found.id)
        chosen = [r for r in runs if run_id is None or r.id == run_id]
        if not chosen:
            named = f"no open run {run_id}" if run_id is not None else "no open run"
            raise BridgeError(f"Company '{found.name}' has {named}: nothing to end.")
        if len(chosen) > 1:
            raise BridgeError("Several runs are open: name one (`qbwc-bridge runs --company C`).")
        now = utcnow()
        run_store.close(tx, chosen[0].id, RunStatus.ABANDONED, now)
        released = order_store.release_run(tx, chosen[0].id, now, max_attempts=MAX_RUNS)
        return chosen[0].id, released
