"""Benchmark the channel half on a temporary SQLite database and loopback HTTP: one pull of
10 000 orders in 20 pages from the stand-in store, the time from a Web Connector login to the
worker taking the company's pull, and 100 000 stock rows pushed to a receiver.

    qbwc-bridge bench --only channels
"""

from __future__ import annotations

import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from qbwc_bridge import sealing
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import push as push_service
from qbwc_bridge.simulator.store import StandInStore
from qbwc_bridge.store import Database, Store, upgrade, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.worker.runner import Worker

USER, PASSWORD = "bench-user", "bench-password"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _order(number: int) -> dict[str, object]:
    return {
        "OrderNumber": f"P{number:06d}",
        "OrderDate": "2026-12-01T10:00:00Z",
        "CustomerName": f"Buyer {number % 500}",
        "orderDetails": [{"sku": "MUG", "name": "Mug", "quantity": 2, "priceExclTax": "7.50"}],
        "TotalTax": "1.20",
        "OrderTotal": "16.20",
    }


@contextmanager
def _bridge(folder: Path) -> Iterator[tuple[Store, Settings]]:
    url = f"sqlite:///{folder / 'bench.db'}"
    database = Database(url)
    upgrade(database)
    settings = Settings(database_url=url, secret_key=sealing.new_key())
    store = Store(database)
    company_service.add_company(store, "acme", USER, PASSWORD)
    try:
        yield store, settings
    finally:
        database.dispose()


def bench_pull(orders: int = 10_000, pages: int = 20) -> dict[str, Any]:
    shop = StandInStore(page_size=orders // pages)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(orders):
        shop.add(_order(i), modified_at=start + timedelta(seconds=i))
    with (
        tempfile.TemporaryDirectory() as folder,
        shop.serve(),
        _bridge(Path(folder)) as (
            store,
            settings,
        ),
    ):
        channel_service.add_custom_store(
            store,
            settings,
            name="shop",
            company="acme",
            url=shop.base_url,
            username="store-user",
            password="store-password",
            since=start,
        )
        found = channel_service.channel(store, "shop")
        rss_before = _peak_rss_mib()
        began = time.perf_counter()
        report = channel_service.pull(store, settings, found)
        seconds = time.perf_counter() - began
        return {
            "orders": report.received,
            "queued": report.queued,
            "pages": sum(1 for r in shop.requests if "/orders" in r),
            "seconds": round(seconds, 2),
            "orders_per_s": round(report.received / seconds),
            "peak_rss_mib_before": round(rss_before, 1),
            "peak_rss_mib_after": round(_peak_rss_mib(), 1),
        }


def bench_due_after_login() -> dict[str, Any]:
    """Seconds from authenticate to a running worker taking the company's pull."""
    shop = StandInStore()
    with (
        tempfile.TemporaryDirectory() as folder,
        shop.serve(),
        _bridge(Path(folder)) as (
            store,
            settings,
        ),
    ):
        added = channel_service.add_custom_store(
            store,
            settings,
            name="shop",
            company="acme",
            url=shop.base_url,
            username="store-user",
            password="store-password",
        )
        worker = Worker(store, settings)
        worker.run_once(added.id, TaskKind.PULL)  # the first pull; the next is an hour away
        worker.run_once(added.id, TaskKind.PUSH)
        taken = threading.Event()
        thread = threading.Thread(
            target=worker.run_forever, kwargs={"on_ran": lambda ran: taken.set()}, daemon=True
        )
        thread.start()
        time.sleep(1.5)  # the worker is idle, polling
        began = time.perf_counter()
        RunEngine(store, settings).authenticate(USER, PASSWORD)
        taken.wait(10)
        seconds = time.perf_counter() - began
        worker.stop()
        thread.join(10)
        return {"login_to_pull_seconds": round(seconds, 2)}


class _Sink(BaseHTTPRequestHandler):
    rows = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Sink.rows += body.count(b'"sku"')
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def bench_push(rows: int = 100_000) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with tempfile.TemporaryDirectory() as folder, _bridge(Path(folder)) as (store, settings):
            with store.transaction() as tx:
                company_id = store.companies.by_name(tx, "acme").id
                for first in range(0, rows, 5000):
                    inventory_store.upsert(
                        tx,
                        company_id,
                        [
                            StockLevel(
                                f"SKU-{i:06d}", Decimal(i % 90), Decimal(0), Decimal(1), "", ""
                            )
                            for i in range(first, min(first + 5000, rows))
                        ],
                        utcnow(),
                    )
            sealed = sealing.Sealer.from_settings(settings).seal("store-password")
            with store.transaction() as tx:
                channel_store.add(
                    tx,
                    company_id=company_id,
                    name="shop",
                    kind=ChannelKind.CUSTOM_STORE,
                    url=url,
                    username="u",
                    sealed_secret=sealed,
                    every_minutes=60,
                    window=Window.first(utcnow()),
                    order_statuses=(),
                    store_names=(),
                    now=utcnow(),
                )
            _Sink.rows = 0
            began = time.perf_counter()
            report = push_service.push(store, settings, channel_service.channel(store, "shop"))
            seconds = time.perf_counter() - began
            return {
                "rows": _Sink.rows,
                "requests": report.delivered,
                "seconds": round(seconds, 2),
                "rows_per_s": round(_Sink.rows / seconds),
            }
    finally:
        server.shutdown()
        server.server_close()


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    figures.update({f"pull_{k}": v for k, v in bench_pull().items()})
    figures.update(bench_due_after_login())
    figures.update({f"push_{k}": v for k, v in bench_push().items()})
    return figures
