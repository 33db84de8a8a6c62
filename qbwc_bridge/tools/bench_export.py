"""Benchmark: export N QuickBooks sales from the stand-in into exported_transactions on SQLite.

Drives RunEngine callback by callback like the Web Connector (no HTTP), on a temporary SQLite
database, through one run whose only work is the export (a full first pass over invoices,
sales receipts, sales orders and credit memos with their lines, then the deletions), and
reports rows stored per second (end to end, for the bridge's own share: its callbacks, which
read each page and map it, and for the store writes alone), pages, wall time, and memory:
peak RSS, and the RSS over the pages, which stays flat when paging holds one page at a time.

    qbwc-bridge bench --only export [--transactions 10000] [--json result.json]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.exports import DeletedTxn, ExportedTxn
from qbwc_bridge.engine import export as export_step
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock, SaleLine
from qbwc_bridge.store import Database, Store, Tx, upgrade, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.tools.bench_inventory import peak_rss_mib, rss_mib

USER, PASSWORD = "bench-user", "bench-password"
KINDS = ("Invoice", "SalesReceipt", "SalesOrder", "CreditMemo")
SKUS = [f"SKU-{i:04d}" for i in range(200)]
# The figure this benchmark guards (docs/export.md): rows stored per second of the bridge's
# own time, over one run.
TARGET_ROWS_PER_SECOND = 5_000
# Paging holds one page at a time: past the first tenth of the pages, RSS stays put.
MAX_RSS_GROWTH_MIB = 16


def seed(fake: FakeQuickBooks, transactions: int) -> None:
    """Sales of every type, entered by hand: 1 to 4 item lines, shipping, tax, addresses."""
    for sku in SKUS:
        fake.set_item(ItemStock(full_name=sku, quantity_on_hand=Decimal(10**6)))
    for name in ("Shipping", "Discount", "Sales Tax"):
        fake.set_item(ItemStock(full_name=name, kind="ItemOtherCharge"))
    for i in range(transactions):
        lines = [
            SaleLine(SKUS[(i + n) % len(SKUS)], Decimal(1 + n), Decimal("12.95"), f"Item {n}")
            for n in range(1 + i % 4)
        ]
        lines += [
            SaleLine("Shipping", amount=Decimal("4.99"), desc="Ground"),
            SaleLine("Sales Tax", amount=Decimal("1.07"), desc="Sales tax"),
        ]
        address = {
            "Addr1": f"Customer {i % 997}",
            "Addr2": f"{i % 500} Main Street",
            "City": "Springfield",
            "State": "IL",
            "PostalCode": "62701",
        }
        fake.add_sale(
            KINDS[i % len(KINDS)],  # type: ignore[arg-type]
            f"Customer {i % 997}",
            lines,
            ref_number=f"B{i:07d}",
            txn_date=date(2026, 1, 1) + timedelta(days=i % 60),
            bill_address=address,
            ship_address=address,
        )


class Timed:
    """Wraps export_store.write to add up the time the store writes take."""

    def __init__(
        self,
        write: Callable[[Tx, int, Sequence[ExportedTxn], Sequence[DeletedTxn], datetime], int],
    ) -> None:
        self.write = write
        self.seconds = 0.0
        self.rows = 0

    def __call__(
        self,
        tx: Tx,
        company_id: int,
        txns: Sequence[ExportedTxn],
        deletions: Sequence[DeletedTxn],
        now: datetime,
    ) -> int:
        start = time.perf_counter()
        changed = self.write(tx, company_id, txns, deletions, now)
        self.seconds += time.perf_counter() - start
        self.rows += changed
        return changed


def run(transactions: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="qbwc-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    database = Database(url)
    upgrade(database)
    database.dispose()
    store = Store.from_url(url)
    company_service.add_company(store, "bench", USER, PASSWORD)
    company_service.set_company_setting(
        store, "bench", "export_transactions", "invoice,sales_receipt,sales_order,credit_memo"
    )
    with store.transaction() as tx:  # the export alone: no inventory query in this run
        company_id = company_store.by_name(tx, "bench").id
        company_store.set_inventory_due_at(tx, company_id, utcnow() + timedelta(days=365))
    engine = RunEngine(store, Settings(database_url=url))
    fake = FakeQuickBooks(validate=False)
    seed(fake, transactions)
    timed = Timed(export_store.write)
    export_store.write = timed
    try:
        rss_start = rss_mib()
        samples: list[float] = []
        quickbooks_seconds = bridge_seconds = bridge_cpu_seconds = 0.0
        started = time.perf_counter()
        auth = engine.authenticate(USER, PASSWORD)
        if auth.answer:
            raise SystemExit(f"the export was not due: authenticate answered {auth.answer!r}")
        fake.begin_session()
        hcp = fake.hcp_response()
        pages = 0
        percent = 0
        while percent < 100:
            t0, c0 = time.perf_counter(), time.process_time()
            request = engine.next_request(auth.ticket, hcp, r"C:\Bench.QBW", "US", 13, 0)
            hcp = ""
            if not request:
                break
            t1, c1 = time.perf_counter(), time.process_time()
            response = fake.process(request)
            t2, c2 = time.perf_counter(), time.process_time()
            percent = engine.record_response(auth.ticket, response, "", "")
            t3, c3 = time.perf_counter(), time.process_time()
            quickbooks_seconds += t2 - t1
            bridge_seconds += (t1 - t0) + (t3 - t2)
            # CPU time too: on a busy machine the wall clock counts other programs' turns.
            bridge_cpu_seconds += (c1 - c0) + (c3 - c2)
            pages += 1
            samples.append(rss_mib())
            if percent < 0:
                raise SystemExit(f"the run failed: {engine.last_error(auth.ticket)}")
        engine.close(auth.ticket)
        wall = time.perf_counter() - started
    finally:
        export_store.write = timed.write  # type: ignore[assignment]
    with store.transaction() as tx:
        rows = tx.exec_driver_sql("SELECT COUNT(*) FROM exported_transactions").scalar_one()
    store.database.dispose()
    if rows != transactions or timed.rows != transactions:
        raise SystemExit(f"expected {transactions} rows, found {rows} ({timed.rows} written)")
    tenth = samples[max(len(samples) // 10 - 1, 0)] if samples else rss_start
    bridge_rate = round(transactions / bridge_seconds) if bridge_seconds else None
    return {
        "transactions": transactions,
        "pages": pages,
        "page_size": export_step.PAGE_SIZE,
        "rows_stored": timed.rows,
        "wall_seconds": round(wall, 3),
        "quickbooks_seconds": round(quickbooks_seconds, 3),
        "bridge_seconds": round(bridge_seconds, 3),
        "bridge_cpu_seconds": round(bridge_cpu_seconds, 3),
        "store_seconds": round(timed.seconds, 3),
        "rows_per_second_end_to_end": round(transactions / wall),
        "rows_per_second_bridge": bridge_rate,
        "rows_per_second_bridge_cpu": round(transactions / bridge_cpu_seconds)
        if bridge_cpu_seconds
        else None,
        "rows_per_second_store": round(transactions / timed.seconds) if timed.seconds else None,
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "rss_mib_before_paging": round(rss_start, 1),
        "rss_mib_after_10_percent": round(tenth, 1),
        "rss_mib_at_end": round(samples[-1] if samples else rss_start, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "database_mib": round((folder / "bench.db").stat().st_size / 2**20, 1),
    }


def problems(figures: dict[str, Any]) -> list[str]:
    """What falls short of the figure docs/export.md promises: rows stored per second, and
    memory that stays flat over the pages."""
    found = []
    stored = figures.get("rows_per_second_store") or 0
    if stored < TARGET_ROWS_PER_SECOND:
        found.append(f"{stored} rows/s stored, below {TARGET_ROWS_PER_SECOND}")
    growth = figures["rss_mib_at_end"] - figures["rss_mib_after_10_percent"]
    if growth > MAX_RSS_GROWTH_MIB:
        found.append(f"memory grew {growth:.1f} MiB over the pages")
    return found
