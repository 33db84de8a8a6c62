"""docs/openapi.yaml against the running service: every answer the document describes is
asked for over HTTP, and its status, headers and body must be what the document says."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import yaml
from factories import make_order_json
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from soapclient import PASSWORD, Service

from qbwc_bridge.config import Settings
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import exports as export_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector
from qbwc_bridge.simulator.quickbooks import ItemStock, SaleLine
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.web import connex
from qbwc_bridge.web.app import BridgeApp, make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
LOGIN = ("acme-user", PASSWORD)
TOKEN = "metrics-token-for-the-document"


class Checked:
    """Sends requests to a service and checks every answer against the document."""

    def __init__(self, openapi: OpenAPI, base: str) -> None:
        self.openapi, self.base = openapi, base
        self.answered: set[tuple[str, str, int]] = set()

    def call(
        self,
        method: str,
        path: str,
        *,
        valid_request: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        response = requests.request(method, self.base + path, timeout=30, **kwargs)
        request = RequestsOpenAPIRequest(response.request)
        if valid_request:  # a request the document allows (not one made wrong on purpose)
            self.openapi.validate_request(request)
        self.openapi.validate_response(request, RequestsOpenAPIResponse(response))
        self.answered.add((method, path.split("?")[0], response.status_code))
        return response


@contextmanager
def _served(service: Service, **settings: Any) -> Iterator[Checked]:
    changed = dataclasses.replace(service.settings, **settings)
    with BackgroundServer(make_wsgi_app(changed, service.store)) as server:
        yield Checked(_document(), server.base_url)


def _document() -> OpenAPI:
    """The document, checked first against the OpenAPI 3.1 specification."""
    return OpenAPI.from_file_path(str(DOCUMENT))


def _orders(*numbers: str, **override: Any) -> bytes:
    return json.dumps([make_order_json(OrderNumber=n, **override) for n in numbers]).encode()


JSON = {"Content-Type": "application/json"}


def test_post_orders_answers_as_documented(service: Service) -> None:
    with _served(service) as api:
        queued = api.call("POST", "/api/orders", auth=LOGIN, headers=JSON, data=_orders("D1"))
        assert queued.status_code == 200 and queued.json()["queued"] == 1
        again = api.call("POST", "/api/orders", auth=LOGIN, headers=JSON, data=_orders("D1"))
        assert again.json()["unchanged"] == 1
        mixed = json.dumps(
            [make_order_json(OrderNumber="D2"), make_order_json(OrderNumber="D3", TotalTax="-5")]
        ).encode()
        refused = api.call("POST", "/api/orders", auth=LOGIN, headers=JSON, data=mixed)
        assert refused.status_code == 422 and "skip_invalid=true" in refused.json()["error"]
        skipped = api.call(
            "POST", "/api/orders?skip_invalid=true", auth=LOGIN, headers=JSON, data=mixed
        )
        assert skipped.status_code == 200 and skipped.json()["errors"][0]["order_number"] == "D3"
        wrong = {"valid_request": False}
        assert api.call("POST", "/api/orders", headers=JSON, data=b"[]", **wrong).status_code == 401
        assert (
            api.call(
                "POST",
                "/api/orders",
                auth=LOGIN,
                headers={"Content-Type": "text/plain"},
                data=b"[]",
                **wrong,
            ).status_code
            == 415
        )
        assert (
            api.call(
                "POST", "/api/orders", auth=LOGIN, headers=JSON, data=b"{oops", **wrong
            ).status_code
            == 400
        )
        assert (
            api.call(
                "POST",
                "/api/orders?skip_invalid=maybe",
                auth=LOGIN,
                headers=JSON,
                data=b"[]",
                **wrong,
            ).status_code
            == 400
        )
        many = _orders(*(f"N{i}" for i in range(101)))
        assert (
            api.call("POST", "/api/orders", auth=LOGIN, headers=JSON, data=many).status_code == 413
        )


def test_product_updates_answer_as_documented(service: Service) -> None:
    with service.store.transaction() as tx:
        company = company_store.by_name(tx, "acme")
        inventory_store.upsert(
            tx,
            company.id,
            [
                StockLevel("WIDGET-RED", Decimal("41"), Decimal("0"), Decimal("2.5"), "80000001-1"),
                StockLevel("SERVICE-HOUR", None, None, None, "80000002-1", "2024-03-04T09:15:00"),
            ],
            utcnow(),
        )
    with _served(service) as api:
        rows = api.call("GET", "/api/product-updates", auth=LOGIN)
        assert rows.status_code == 200 and len(rows.json()["rows"]) == 2
        cursor = rows.json()["next_cursor"]
        none = api.call("GET", f"/api/product-updates?since={cursor}&limit=5", auth=LOGIN)
        assert none.json() == {"rows": [], "next_cursor": cursor}
        bad = api.call("GET", "/api/product-updates?since=x", auth=LOGIN, valid_request=False)
        assert bad.status_code == 400
        far = api.call(
            "GET", f"/api/product-updates?since={2**63}", auth=LOGIN, valid_request=False
        )
        assert far.status_code == 400
        assert api.call("GET", "/api/product-updates", valid_request=False).status_code == 401


def _export(service: Service) -> None:
    """Sales read back out of the stand-in QuickBooks through the real service: entered by
    hand with addresses and charge lines, and a web order the bridge added and QuickBooks
    then deleted."""
    company_service.set_company_setting(
        service.store, "acme", "export_transactions", "invoice,sales_receipt"
    )
    fake = FakeQuickBooks()
    for name in ("WIDGET-RED", "TSHIRT-M"):
        fake.set_item(ItemStock(full_name=name, quantity_on_hand=Decimal(50)))
    for name in ("Shipping", "Discount", "Sales Tax"):
        fake.set_item(ItemStock(full_name=name, kind="ItemOtherCharge"))
    fake.add_sale(
        "Invoice",
        "Smith, John",
        [
            SaleLine("WIDGET-RED", Decimal(2), Decimal("12.50"), "Red widget"),
            SaleLine("Shipping", amount=Decimal("5.00"), desc="Courier"),
            SaleLine("Discount", amount=Decimal("-2.00"), desc="Loyalty"),
            SaleLine("Sales Tax", amount=Decimal("1.80"), desc="Sales tax"),
        ],
        ref_number="BK-1",
        bill_address={"Addr1": "John Smith", "Addr2": "1 High Street", "City": "Springfield"},
        ship_address={"Addr1": "John Smith", "Addr2": "40 Elm Road", "PostalCode": "62701"},
    )
    fake.add_sale(
        "SalesReceipt", "Cash Sales", [SaleLine("TSHIRT-M", Decimal("1.5"), Decimal("20"))]
    )
    order_service.enqueue(service.store, "acme", [make_order_json(OrderNumber="WEB-1")])
    assert WebConnector(service.url, LOGIN[0], PASSWORD, fake).run().outcome == "done"
    web = next(txn for txn in fake.invoices() if txn.ref_number == "WEB-1")
    fake.delete_transaction(web.txn_id)
    export_service.request_export(service.store, "acme")
    assert WebConnector(service.url, LOGIN[0], PASSWORD, fake).run().outcome == "done"


def test_quickbooks_transactions_answer_as_documented(service: Service, tmp_path: Path) -> None:
    _export(service)
    with _served(service) as api:
        answer = api.call("GET", "/api/quickbooks-transactions", auth=LOGIN)
        assert answer.status_code == 200
        rows = answer.json()["rows"]
        assert len(rows) == 3 and answer.json()["next_cursor"] == rows[-1]["cursor"]
        # What the document's row describes, in rows that were checked against it.
        hand = next(row for row in rows if row["OrderNumber"] == "BK-1")
        assert hand["billingAddress"]["city"] == "Springfield"
        assert (
            hand["ShippingMethod"] == "Courier" and hand["orderDetails"][0]["sku"] == "WIDGET-RED"
        )
        gone = next(row for row in rows if row["created_by_bridge"])
        assert gone["deleted"] is True and gone["queued_order_number"] == "WEB-1"
        page = api.call("GET", "/api/quickbooks-transactions?since=0&limit=2", auth=LOGIN)
        assert page.json()["rows"] == rows[:2]
        cursor = rows[-1]["cursor"]
        none = api.call("GET", f"/api/quickbooks-transactions?since={cursor}", auth=LOGIN)
        assert none.json() == {"rows": [], "next_cursor": cursor}
        for query in ("?since=x", "?limit=many", f"?since={2**63}", "?since=-1"):
            bad = api.call(
                "GET", f"/api/quickbooks-transactions{query}", auth=LOGIN, valid_request=False
            )
            assert bad.status_code == 400, query
        assert (
            api.call("GET", "/api/quickbooks-transactions", valid_request=False).status_code == 401
        )
        wrong = api.call("GET", "/api/quickbooks-transactions", auth=("acme-user", "wrong"))
        assert wrong.status_code == 401
    down = Settings(database_url=f"sqlite:///{tmp_path}/missing-dir/none.db")
    with BackgroundServer(make_wsgi_app(down)) as server:
        api = Checked(_document(), server.base_url)
        assert api.call("GET", "/api/quickbooks-transactions", auth=LOGIN).status_code == 503


def test_a_locked_out_login_answers_as_documented(service: Service) -> None:
    with _served(service, max_failed_logins=2) as api:
        for _ in range(30):
            answer = api.call(
                "GET",
                "/api/product-updates",
                auth=("acme-user", "wrong password"),
            )
            if answer.status_code == 429:
                break
            assert answer.status_code == 401
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) == answer.json()["retry_after_seconds"]
        feed = api.call("GET", "/api/quickbooks-transactions", auth=("acme-user", "wrong password"))
        assert feed.status_code == 429


def test_health_and_metrics_answer_as_documented(service: Service, tmp_path: Path) -> None:
    with _served(service) as api:
        assert api.call("GET", "/healthz").json() == {"status": "ok"}
        assert api.call("GET", "/metrics", valid_request=False).status_code == 404  # no token set
    with _served(service, metrics_token=TOKEN) as api:
        scraped = api.call("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200 and "qbwc_bridge_orders" in scraped.text
        refused = api.call(
            "GET", "/metrics", headers={"Authorization": "Bearer wrong"}, valid_request=True
        )
        assert refused.status_code == 401
    down = Settings(database_url=f"sqlite:///{tmp_path}/missing-dir/none.db")
    with BackgroundServer(make_wsgi_app(down)) as server:
        api = Checked(_document(), server.base_url)
        assert api.call("GET", "/healthz").status_code == 503


def test_every_documented_answer_is_one_the_service_gives() -> None:
    """The document lists no status the tests above never saw (and so never checked)."""
    seen = {
        ("POST", "/api/orders"): {200, 400, 401, 413, 415, 422},
        ("GET", "/api/product-updates"): {200, 400, 401, 429},
        ("GET", "/api/quickbooks-transactions"): {200, 400, 401, 429, 503},
        ("GET", "/healthz"): {200, 503},
        ("GET", "/metrics"): {200, 401, 404},
    }
    # Answers no test here provokes over HTTP, each covered elsewhere: 408 and 411
    # (tests/acceptance/test_hostile_input.py), 503 on a database outage
    # (tests/integration/test_crash_safety.py), 429 on /api/orders (the same lockout).
    elsewhere = {
        ("POST", "/api/orders"): {408, 411, 429, 503},
        ("GET", "/api/product-updates"): {503},
    }
    # The Connex-compatible API: tests/acceptance/test_connex_api.py provokes each of these
    # and checks it against the document.
    elsewhere |= {
        ("POST", "/api/account/login"): {200, 400, 401, 429, 503},
        ("POST", "/api/ConnexUser/Login"): {200, 400, 401, 429, 503},
        ("POST", "/api/orders/createorders"): {200, 400, 401, 413, 503},
        ("POST", "/api/orders/list"): {200, 400, 401, 503},
        ("POST", "/api/products/list"): {200, 400, 401, 503},
        ("POST", "/api/UserConnections/List"): {200, 401, 503},
        ("POST", "/api/Settings/Update"): {200, 400, 401, 503},
        ("POST", "/api/ScheduledTask/RunNow"): {200, 400, 401, 503},
        ("GET", "/api/DatabaseDownload/List"): {200, 400, 401, 503},
    }
    paths = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            documented = {int(code) for code in operation["responses"]}
            key = (method.upper(), path)
            assert documented == seen.get(key, set()) | elsewhere.get(key, set()), key


# --- every route the service serves is in the document ------------------------------------


def _bridge_routes() -> set[tuple[str | None, str]]:
    """(method, path) of each route BridgeApp.__call__ dispatches, read from its source:
    every branch that compares the path with a string (method None: any method)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(BridgeApp.__call__)))
    routes: set[tuple[str | None, str]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        paths, methods = [], []
        for compare in ast.walk(node.test):
            if not (
                isinstance(compare, ast.Compare)
                and isinstance(compare.ops[0], ast.Eq)
                and isinstance(compare.comparators[0], ast.Constant)
                and isinstance(compare.comparators[0].value, str)
            ):
                continue
            side, value = ast.unparse(compare.left), compare.comparators[0].value
            if side.startswith("path"):
                paths.append(value)
            elif side == "method":
                methods.append(value)
        routes |= {(method, path) for path in paths for method in methods or [None]}
    return routes


def _connex_routes(url: str) -> set[tuple[str, str]]:
    """(method, path) of each rule of the Connex-compatible Flask app."""
    store = Store.from_url(url)
    try:
        app = connex.create_app(store, Settings(database_url=url))
        return {
            (method, rule.rule)
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        }
    finally:
        store.database.dispose()


def test_every_route_the_service_serves_is_documented(sqlite_url: str) -> None:
    """An undocumented route fails here: the document lists every path and method of
    web/app.py (but the SOAP endpoint, which its WSDL describes, and the admin console's
    HTML pages, which docs/console.md describes) and of web/connex.py."""
    documented = {
        (method.upper(), path)
        for path, item in yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["paths"].items()
        for method in item
    }
    documented_paths = {path for _, path in documented}
    bridge = {
        (method, path) for method, path in _bridge_routes() if path not in {"/qbwc", "/admin"}
    }
    # The reading of the source finds the routes known today (so it cannot find none).
    assert {
        ("POST", "/api/orders"),
        ("GET", "/api/product-updates"),
        ("GET", "/api/quickbooks-transactions"),
        ("GET", "/metrics"),
        (None, "/healthz"),
    } <= bridge
    for method, path in sorted(bridge, key=str):
        assert path in documented_paths, f"{path} is served but not in docs/openapi.yaml"
        if method is not None:
            assert (method, path) in documented, f"{method} {path} is not in docs/openapi.yaml"
    served = _connex_routes(sqlite_url)
    assert {path for _, path in served} == set(connex.PATHS), "each Connex path has its rule"
    missing = sorted(served - documented)
    assert not missing, f"Connex routes not in docs/openapi.yaml: {missing}"


def test_every_documented_path_is_served(service: Service) -> None:
    """The converse: no path in the document answers the service's "No route" 404."""
    paths = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    served = dataclasses.replace(service.settings, metrics_token=TOKEN)
    with BackgroundServer(make_wsgi_app(served, service.store)) as server:
        for path, item in paths.items():
            for method in item:
                answer = requests.request(
                    method.upper(), server.base_url + path, timeout=30, data=b"[]"
                )
                assert "No route for" not in answer.text, (method, path, answer.text)
