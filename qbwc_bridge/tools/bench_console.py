"""Benchmark the admin console (/admin) on a temporary SQLite database: the server time of
each page with 100 000 orders queued and 100 000 inventory rows.

Server time is the WSGI application's own: each request is handed to it in this process
(an environ with the session cookie) and timed until its answer's last byte. Every page is
asked for several times; the figure is the median, and the slowest is shown beside it.

    qbwc-bridge bench --only console [--json result.json]
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import urlencode

from qbwc_bridge.services import admin_users as admin_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.tools import inprocess
from qbwc_bridge.tools.bench_connex import sample_order, sample_stock
from qbwc_bridge.web.app import make_wsgi_app

ADMIN, ADMIN_PASSWORD = "bench-admin", "bench-admin-password"
COMPANY = "acme"
# What docs/console.md promises: every page well under 200 ms of server time (medians).
TARGET_PAGE_MS = 200.0
REPEATS = 11


def _order(number: int) -> dict[str, Any]:
    """The Connex benchmark's order (customer "N, Buyer", N = number % 997)."""
    order = sample_order(number, 0)
    del order["UserConnectionId"]
    return order


class Client:
    """GETs pages of the WSGI application in this process with the session cookie, timed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookie = ""

    def call(
        self, path: str, query: dict[str, str] | None = None, body: bytes = b"", method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes, float]:
        answer = inprocess.call(
            self.app,
            method,
            path,
            body,
            QUERY_STRING=urlencode(query or {}),
            CONTENT_TYPE="application/x-www-form-urlencoded",
            HTTP_HOST="127.0.0.1",
            **({"HTTP_COOKIE": self.cookie} if self.cookie else {}),
        )
        set_cookies = [v for k, v in answer.headers if k.lower() == "set-cookie"]
        cookies = "; ".join(v.split(";")[0] for v in set_cookies)
        return answer.status, {"cookies": cookies}, answer.content, answer.milliseconds

    def login(self) -> None:
        status, seen, page, _ = self.call("/admin/login")
        token = page.split(b'name="csrf_token" value="', 1)[1].split(b'"', 1)[0].decode()
        self.cookie = seen["cookies"]
        form = urlencode({"csrf_token": token, "username": ADMIN, "password": ADMIN_PASSWORD})
        status, seen, page, _ = self.call("/admin/login", body=form.encode(), method="POST")
        if status != 303:
            raise SystemExit(f"the admin login failed ({status}): {page[:300]!r}")
        self.cookie = seen["cookies"]


def _seed(store: Store, orders: int, products: int) -> None:
    company_service.add_company(store, COMPANY, "bench-user", "bench-password")
    admin_service.add(store, ADMIN, ADMIN_PASSWORD)
    order_service.enqueue(store, COMPANY, (_order(i) for i in range(orders)))
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, COMPANY).id
    now = utcnow()
    for levels in sample_stock(products):
        with store.transaction() as tx:
            inventory_store.upsert(tx, company_id, levels, now)


def _pages(orders: int) -> dict[str, tuple[str, dict[str, str]]]:
    company = {"company": COMPANY}
    middle = f"B{orders // 2:07d}"
    return {
        "companies": ("/admin/", {}),
        "orders_first_page": ("/admin/orders", company),
        "orders_deep_page": ("/admin/orders", {**company, "before": str(orders // 10)}),
        "orders_pending": ("/admin/orders", {**company, "status": "pending"}),
        "orders_in_error": ("/admin/orders", {**company, "status": "error"}),
        "orders_by_number": ("/admin/orders", {**company, "q": middle}),
        "orders_by_customer": ("/admin/orders", {**company, "q": "42, Buyer"}),
        "orders_matching_all": ("/admin/orders", {**company, "q": "B"}),
        "orders_search_no_match": ("/admin/orders", {**company, "q": "nobody-at-all"}),
        "order": ("/admin/order", {**company, "number": middle}),
        "runs": ("/admin/runs", company),
        "channels": ("/admin/channels", company),
        "inventory": ("/admin/inventory", company),
        "inventory_search": ("/admin/inventory", {**company, "q": "SKU-0421"}),
        "settings": ("/admin/settings", company),
        "qwc": ("/admin/qwc", {**company, "url": "https://bridge.example.com/qbwc"}),
    }


def run(orders: int = 100_000, products: int = 100_000) -> dict[str, Any]:
    with inprocess.bridge() as (store, settings):
        began = time.perf_counter()
        _seed(store, orders, products)
        figures: dict[str, Any] = {
            "orders_queued": orders,
            "inventory_rows": products,
            "seed_seconds": round(time.perf_counter() - began, 1),
            "repeats": REPEATS,
        }
        client = Client(make_wsgi_app(settings, store))
        client.login()
        for name, (path, query) in _pages(orders).items():
            client.call(path, query)  # warm up: statements compiled, templates loaded
            times = []
            for _ in range(REPEATS):
                status, _, page, milliseconds = client.call(path, query)
                if status != 200:
                    raise SystemExit(f"{path}?{urlencode(query)} answered {status}: {page[:300]!r}")
                times.append(milliseconds)
            figures[f"{name}_ms_p50"] = round(statistics.median(times), 2)
            figures[f"{name}_ms_max"] = round(max(times), 2)
        figures["target_page_ms"] = TARGET_PAGE_MS
    return figures


def problems(figures: dict[str, Any]) -> list[str]:
    """The pages slower than docs/console.md promises (200 ms of server time, medians)."""
    return [
        f"{name.removesuffix('_ms_p50')} took {value} ms"
        for name, value in figures.items()
        if name.endswith("_ms_p50") and value > TARGET_PAGE_MS
    ]
