"""`qbwc-bridge bench`: the speed figures the README quotes, printed and written as JSON.

Figures, each on a fresh temporary database unless a PostgreSQL URL is given:
- qbXML build time of one message of 250 InvoiceAdds;
- ingest: JMAUser orders parsed, validated and queued per second;
- round trips and modelled QuickBooks time (1 s per round trip + 0.05 s per request) for
  200 orders with payments and new customers, every invoice and payment checked on its own;
- server time per callback (p50/p99) with 100 000 orders queued;
- callbacks per second and p99 latency with concurrent Web Connector runs over HTTP.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbwc_bridge import queue
from qbwc_bridge.config import Settings
from qbwc_bridge.domain import intake, mapping
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.versions import QbxmlVersion
from qbwc_bridge.simulator.demo_company import PRODUCTS, demo_quickbooks
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, LatencyModel
from qbwc_bridge.store import Database, Store, upgrade

SKUS = [name for name in PRODUCTS if ":" not in name]


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="print speed figures (and write them as JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    p.add_argument(
        "--queued", type=int, default=100_000, help="orders queued for the callback timing"
    )
    p.add_argument("--ingest", type=int, default=20_000, help="orders for the ingest rate")
    p.add_argument(
        "--concurrent-runs", type=int, default=20, help="simultaneous Web Connector runs"
    )
    p.add_argument(
        "--workers", type=int, default=4, help="gunicorn workers for the concurrency figure"
    )
    p.add_argument(
        "--postgres", metavar="URL", help="use this PostgreSQL database (it is emptied!)"
    )
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.set_defaults(handler=run)


def order_json(number: int, *, payments: bool = True) -> dict[str, Any]:
    """A realistic order: 3 lines, shipping, tax, one payment, its own customer."""
    lines: list[dict[str, Any]] = [
        {
            "sku": SKUS[(number + i) % len(SKUS)],
            "name": f"Product {i}",
            "quantity": 1 + i,
            "priceExclTax": f"{9 + i}.99",
        }
        for i in range(3)
    ]
    subtotal = sum((Decimal(line["priceExclTax"]) * line["quantity"] for line in lines), Decimal(0))
    total = subtotal + Decimal("4.95") + Decimal("3.10")
    order: dict[str, Any] = {
        "OrderNumber": f"B{number:07d}",
        "OrderDate": "2026-11-02",
        "CustomerName": f"Buyer {number}",
        "billingAddress": {
            "firstName": f"Buyer{number}",
            "lastName": f"Family{number}",
            "address1": f"{number} Market St",
            "city": "Springfield",
            "postalCode": "62701",
        },
        "orderDetails": lines,
        "ShippingMethod": "Ground",
        "ShippingExclTax": "4.95",
        "TotalTax": "3.10",
        "OrderTotal": str(total),
        "ChannelName": "Shopify",
    }
    if payments:
        order["Payments"] = [
            {
                "PaymentAmount": str(total),
                "CreditCardName": "Visa",
                "PaymentDate": "2026-11-02",
                "ReferenceNumber": f"CH-{number}",
            }
        ]
    return order


@contextmanager
def fresh_store(postgres: str | None) -> Iterator[tuple[Store, Settings]]:
    with tempfile.TemporaryDirectory() as folder:
        url = postgres or f"sqlite:///{Path(folder) / 'bench.db'}"
        database = Database(url)
        if postgres:
            from qbwc_bridge.store.schema import metadata

            with database.engine.begin() as conn:
                metadata.drop_all(conn)
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade(database)
        try:
            yield Store(database), Settings(database_url=url)
        finally:
            database.dispose()


def _company(store: Store, name: str = "bench") -> None:
    queue.add_company(store, name, f"{name}-user", "bench-password")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


# --- the figures -------------------------------------------------------------------------


def bench_build() -> dict[str, float]:
    orders = [intake.parse_order(order_json(i)) for i in range(250)]
    records = [mapping.txn_record(order, CompanySettings()) for order in orders]
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        build.message(
            [(str(i), build.txn_add(r)) for i, r in enumerate(records, 1)], QbxmlVersion(13, 0)
        )
        timings.append((time.perf_counter() - started) * 1000)
    return {"build_250_invoices_ms_median": round(statistics.median(timings), 1)}


def bench_ingest(count: int, postgres: str | None) -> dict[str, float]:
    raw = [order_json(i) for i in range(count)]
    started = time.perf_counter()
    for item in raw:
        intake.parse_order(item)
    parse_rate = count / (time.perf_counter() - started)
    with fresh_store(postgres) as (store, _settings):
        _company(store)
        started = time.perf_counter()
        report = queue.enqueue(store, "bench", iter(raw))
        seconds = time.perf_counter() - started
    assert report.queued == count
    return {
        "parse_validate_orders_per_s": round(parse_rate),
        "ingest_orders_per_s": round(count / seconds),
    }


def drive_run(
    engine: RunEngine, fake: FakeQuickBooks, user: str, timings: list[float] | None = None
) -> int:
    """One Web Connector run straight against the engine; returns the round trips."""

    def timed(call: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = call(*args)
        if timings is not None:
            timings.append((time.perf_counter() - started) * 1000)
        return result

    # authenticate is slow on purpose (scrypt): it is not one of the timed data callbacks
    auth = engine.authenticate(user, "bench-password")
    if auth.answer:
        return 0
    fake.begin_session()
    hcp, trips = fake.hcp_response(), 0
    while True:
        request = timed(engine.next_request, auth.ticket, hcp, "C:\\bench.QBW", "US", 13, 0)
        hcp = ""
        if not request:
            break
        response = fake.process(request)
        trips += 1
        percent = timed(engine.record_response, auth.ticket, response, "", "")
        if percent < 0 or percent >= 100:
            break
    timed(engine.close, auth.ticket)
    return trips


def bench_round_trips(postgres: str | None) -> dict[str, float]:
    with fresh_store(postgres) as (store, settings):
        _company(store)
        queue.set_company_setting(store, "bench", "inventory_every_minutes", "100000")
        queue.enqueue(store, "bench", [order_json(i) for i in range(200)])
        _not_due(store)
        fake = demo_quickbooks(
            latency=LatencyModel(per_round_trip=1.0, per_request=0.05), validate=False
        )
        engine = RunEngine(store, settings)
        trips = drive_run(engine, fake, "bench-user")
        log = fake.request_log
        counts = queue.status(store, "bench")["counts"]
    return {
        "round_trips_200_orders": trips,
        "modelled_quickbooks_seconds": round(fake.modelled_seconds, 1),
        "requests": len(log),
        "invoice_checks": sum(1 for r in log if r.startswith("InvoiceQuery")),
        "payment_checks": sum(1 for r in log if r.startswith("ReceivePaymentQuery")),
        "orders_synced": counts["synced"],
        "payments_added": len(fake.payments),
    }


def _not_due(store: Store) -> None:
    """Keep the inventory query out of order figures."""
    from datetime import timedelta

    from qbwc_bridge.store import companies as company_store
    from qbwc_bridge.store import utcnow

    with store.transaction() as tx:
        for company in company_store.list_all(tx):
            company_store.set_inventory_due_at(tx, company.id, utcnow() + timedelta(days=365))


def bench_callbacks(queued: int, postgres: str | None, runs: int = 4) -> dict[str, float]:
    """Server time of every data callback, as the service logs it, from a deep queue.

    The service runs under gunicorn in its own process (as in production), the stand-in
    Web Connector and QuickBooks in this one; four runs of up to 250 orders each.
    """
    from qbwc_bridge.simulator.webconnector import WebConnector

    with fresh_store(postgres) as (store, settings), tempfile.TemporaryDirectory() as folder:
        _company(store)
        queue.enqueue(store, "bench", (order_json(i) for i in range(queued)))
        _not_due(store)
        log = Path(folder) / "service.log"
        with _gunicorn(settings.database_url, 1, log) as url:
            reports = [
                WebConnector(
                    url, "bench-user", "bench-password", demo_quickbooks(validate=False)
                ).run()
                for _ in range(runs)
            ]
        timings = [
            float(match.group(2))
            for match in _CALLBACK_LINE.finditer(log.read_text(encoding="utf-8"))
            if match.group(1) in ("sendRequestXML", "receiveResponseXML", "closeConnection")
        ]
    return {
        "queued_orders": queued,
        "runs": runs,
        "callback_ms_p50": round(percentile(timings, 0.5), 2),
        "callback_ms_p99": round(percentile(timings, 0.99), 2),
        "callback_ms_max": round(max(timings), 2),
        "callbacks_timed": len(timings),
        "round_trips_per_run": round(sum(r.exchanges for r in reports) / runs, 1),
    }


_CALLBACK_LINE = re.compile(r"callback=(\w+) .*? duration_ms=([0-9.]+)")


def bench_concurrency(runs: int, workers: int, postgres: str | None) -> dict[str, float]:
    from qbwc_bridge.simulator.webconnector import WebConnector

    with fresh_store(postgres) as (store, settings):
        for number in range(runs):
            _company(store, f"c{number}")
            queue.enqueue(store, f"c{number}", [order_json(number * 10 + i) for i in range(3)])
        _not_due(store)
        with _server(settings, store, workers, postgres) as url:

            def one(number: int) -> Any:
                return WebConnector(
                    url, f"c{number}-user", "bench-password", demo_quickbooks(validate=False)
                ).run()

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=min(runs, 50)) as pool:
                reports = list(pool.map(one, range(runs)))
            seconds = time.perf_counter() - started
        calls = [t.seconds * 1000 for r in reports for t in r.timings]
        synced = sum(queue.status(store, f"c{n}")["counts"]["synced"] for n in range(runs))
    return {
        "concurrent_runs": runs,
        "server": "gunicorn" if postgres else "development server (SQLite)",
        "callbacks_per_s": round(len(calls) / seconds),
        "callback_latency_ms_p99": round(percentile(calls, 0.99), 1),
        "orders_synced": synced,
    }


@contextmanager
def _server(settings: Settings, store: Store, workers: int, postgres: str | None) -> Iterator[str]:
    if not postgres:
        from qbwc_bridge.devserver import BackgroundServer
        from qbwc_bridge.web import make_wsgi_app

        with BackgroundServer(make_wsgi_app(settings, store)) as server:
            yield server.url
        return
    with _gunicorn(postgres, workers, None) as url:
        yield url


@contextmanager
def _gunicorn(database_url: str, workers: int, log: Path | None) -> Iterator[str]:
    """gunicorn with deploy/gunicorn.conf.py on a free port; INFO log to ``log`` if given."""
    import os
    import signal
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"
    env = {
        **os.environ,
        "QBWC_BRIDGE_DATABASE_URL": database_url,
        "QBWC_BRIDGE_BIND": f"127.0.0.1:{port}",
        "QBWC_BRIDGE_WORKERS": str(workers),
        "QBWC_BRIDGE_LOG_LEVEL": "INFO" if log else "WARNING",
    }
    with open(log or os.devnull, "ab") as output:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-c",
                str(conf),
                "qbwc_bridge.wsgi:application",
            ],
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/qbwc"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    queued, ingest, runs = (
        (2_000, 2_000, 4) if args.quick else (args.queued, args.ingest, args.concurrent_runs)
    )
    figures: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("qbXML build", bench_build),
        ("ingest", lambda: bench_ingest(ingest, args.postgres)),
        ("round trips", lambda: bench_round_trips(args.postgres)),
        ("server time per callback", lambda: bench_callbacks(queued, args.postgres)),
        ("concurrent runs", lambda: bench_concurrency(runs, args.workers, args.postgres)),
    ]
    for title, step in steps:
        print(f"== {title}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        result = step()
        figures[title] = result
        for key, value in result.items():
            print(f"  {key:<34} {value}")
        print(f"  ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}", file=sys.stderr)
    return 0
