"""Benchmark: page N items from the stand-in QuickBooks into product_updates on SQLite.

Drives RunEngine callback by callback like the Web Connector (no HTTP), on a temporary SQLite
database, and reports rows upserted per second (end to end, and for the bridge's own share:
its callbacks, and the store writes alone), pages, wall time, and memory: peak RSS, and the
RSS over the pages, which stays flat when paging holds only one page at a time.

    qbwc-bridge bench --only inventory [--items 100000] [--json result.json]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.engine import inventory as inventory_step
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock
from qbwc_bridge.store import Database, Store, Tx, upgrade
from qbwc_bridge.store import inventory as inventory_store

USER, PASSWORD = "bench-user", "bench-password"
PAGE_SIZE = inventory_step.PAGE_SIZE


def rss_mib() -> float:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mib()
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def seed(fake: FakeQuickBooks, items: int) -> None:
    """Inventory items, every 50th a sub-item and every 100th an assembly."""
    for i in range(items):
        name = f"SKU-{i:07d}"
        kind = "ItemInventory"
        if i % 50 == 7:
            name = f"SKU-{i - 7:07d}:{i:07d}"
        elif i % 100 == 3:
            kind = "ItemInventoryAssembly"
        fake.set_item(
            ItemStock(
                full_name=name,
                quantity_on_hand=Decimal(i % 997),
                quantity_on_order=Decimal(i % 13),
                quantity_on_sales_order=Decimal(i % 7),
                kind=kind,  # type: ignore[arg-type]
            )
        )


class Timed:
    """Wraps inventory_store.upsert to add up the time the store writes take."""

    def __init__(self, upsert: Callable[[Tx, int, Sequence[StockLevel], datetime], int]) -> None:
        self.upsert = upsert
        self.seconds = 0.0
        self.rows = 0

    def __call__(self, tx: Tx, company_id: int, levels: Sequence[StockLevel], now: Any) -> int:
        start = time.perf_counter()
        changed = self.upsert(tx, company_id, levels, now)
        self.seconds += time.perf_counter() - start
        self.rows += changed
        return changed


def run(items: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="qbwc-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    database = Database(url)
    upgrade(database)
    database.dispose()
    store = Store.from_url(url)
    company_service.add_company(store, "bench", USER, PASSWORD)
    engine = RunEngine(store, Settings(database_url=url))
    fake = FakeQuickBooks(validate=False)
    seed(fake, items)
    timed = Timed(inventory_store.upsert)
    inventory_store.upsert = timed
    try:
        rss_start = rss_mib()
        samples: list[float] = []
        quickbooks_seconds = bridge_seconds = 0.0
        started = time.perf_counter()
        auth = engine.authenticate(USER, PASSWORD)
        fake.begin_session()
        hcp = fake.hcp_response()
        pages = 0
        percent = 0
        while percent < 100:
            t0 = time.perf_counter()
            request = engine.next_request(auth.ticket, hcp, r"C:\Bench.QBW", "US", 13, 0)
            hcp = ""
            if not request:
                break
            t1 = time.perf_counter()
            response = fake.process(request)
            t2 = time.perf_counter()
            percent = engine.record_response(auth.ticket, response, "", "")
            t3 = time.perf_counter()
            quickbooks_seconds += t2 - t1
            bridge_seconds += (t1 - t0) + (t3 - t2)
            pages += 1
            samples.append(rss_mib())
            if percent < 0:
                raise SystemExit(f"the run failed: {engine.last_error(auth.ticket)}")
        engine.close(auth.ticket)
        wall = time.perf_counter() - started
    finally:
        inventory_store.upsert = timed.upsert  # type: ignore[assignment]
    with store.transaction() as tx:
        rows = tx.exec_driver_sql("SELECT COUNT(*) FROM product_updates").scalar_one()
    store.database.dispose()
    if rows != items or timed.rows != items:
        raise SystemExit(f"expected {items} rows, found {rows} ({timed.rows} upserted)")
    tenth = samples[max(len(samples) // 10 - 1, 0)] if samples else rss_start
    return {
        "items": items,
        "pages": pages,
        "page_size": PAGE_SIZE,
        "rows_upserted": timed.rows,
        "wall_seconds": round(wall, 3),
        "quickbooks_seconds": round(quickbooks_seconds, 3),
        "bridge_seconds": round(bridge_seconds, 3),
        "store_seconds": round(timed.seconds, 3),
        "rows_per_second_end_to_end": round(items / wall),
        "rows_per_second_bridge": round(items / bridge_seconds) if bridge_seconds else None,
        "rows_per_second_store": round(items / timed.seconds) if timed.seconds else None,
        "rss_mib_before_paging": round(rss_start, 1),
        "rss_mib_after_10_percent": round(tenth, 1),
        "rss_mib_at_end": round(samples[-1] if samples else rss_start, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "database_mib": round((folder / "bench.db").stat().st_size / 2**20, 1),
    }
