"""The Connex-compatible REST API over real HTTP, on SQLite and PostgreSQL: an integration
written against Connex's pages logs in, sends and lists orders, reads products and
connections, sets sync timers and polls QuickBooks' exported orders. Every answer is
checked against docs/openapi.yaml (its JSON schemas)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from factories import make_line, make_order_json
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from soapclient import PASSWORD, Service

from qbwc_bridge import cli
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.exports import ExportedTxn
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.services import api_users as api_user_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, schema, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
API_USER, API_PASSWORD = "integrator@example.com", "integrator-secret-9"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(DOCUMENT))


class Api:
    """A client of the service that checks every answer against the OpenAPI document."""

    def __init__(self, openapi: OpenAPI, base: str) -> None:
        self.openapi, self.base = openapi, base
        self.token = ""

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        checked: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["data"] = json.dumps(body)
        response = requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)
        assert response.headers["Content-Type"] == "application/json", response.text
        json.loads(response.text)  # every answer is JSON, errors included
        if checked:
            request = RequestsOpenAPIRequest(response.request)
            self.openapi.validate_response(request, RequestsOpenAPIResponse(response))
        return response

    def post(self, path: str, body: object = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, body, **kwargs)

    def login(self, username: str = API_USER, password: str = API_PASSWORD) -> str:
        answer = self.post("/api/account/login", {"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["data"]["Result"]["AccessToken"]
        return self.token


@dataclass
class World:
    """Two companies with channels, an API user of acme, and the service serving them."""

    service: Service
    api: Api
    shop: int  # acme's custom store: its UserConnectionId
    hook: int  # acme's webhook
    elsewhere: int  # another company's channel

    @property
    def store(self) -> Store:
        return self.service.store


def _channel(store: Store, company: str, name: str, kind: ChannelKind) -> int:
    with store.transaction() as tx:
        return channel_store.add(
            tx,
            company_id=company_store.by_name(tx, company).id,
            name=name,
            kind=kind,
            url=f"https://{name}.example.com/api",
            username="u",
            sealed_secret="sealed",
            every_minutes=60,
            window=Window.first(NOW),
            order_statuses=(),
            store_names=(),
            now=NOW,
        ).id


@contextmanager
def _served(service: Service, openapi: OpenAPI, **settings: Any) -> Iterator[Api]:
    changed = dataclasses.replace(service.settings, **settings)
    with BackgroundServer(make_wsgi_app(changed, service.store)) as server:
        yield Api(openapi, server.base_url)


@pytest.fixture
def world(service: Service, openapi: OpenAPI) -> Iterator[World]:
    store = service.store
    company_service.add_company(store, "other", "other-user", PASSWORD)
    shop = _channel(store, "acme", "shop", ChannelKind.CUSTOM_STORE)
    hook = _channel(store, "acme", "hook", ChannelKind.WEBHOOK)
    elsewhere = _channel(store, "other", "elsewhere", ChannelKind.CUSTOM_STORE)
    api_user_service.add(store, API_USER, "acme", API_PASSWORD)
    with _served(service, openapi) as api:
        yield World(service, api, shop, hook, elsewhere)


def _order(number: str, connection: int, **overrides: Any) -> dict[str, Any]:
    connex = {
        "OrderNumber": number,
        "UserConnectionId": connection,
        "ReportingUserId": "0e56eeb0-9c1d-42b3-8a61-4376516718d2",
        "Deleted": False,
    }
    return make_order_json(**{**connex, **overrides})


def _statuses(store: Store, company: str = "acme") -> dict[str, str]:
    listed = order_service.status(store, company)["orders"]
    return {order["order_number"]: order["status"] for order in listed}


# --- logins --------------------------------------------------------------------------------


def test_both_logins_hand_out_a_token_bound_to_the_company(world: World) -> None:
    api = world.api
    token = api.login()
    connections = api.post("/api/UserConnections/List").json()
    assert [(c["id"], c["name"], c["connectionType"]) for c in connections] == [
        (world.shop, "shop", "custom-store"),
        (world.hook, "hook", "webhook"),
    ]
    assert connections[0]["solutionWebsite"] == "https://shop.example.com/api"
    # The polling API's login: the password in base64, a device token not used.
    encoded = base64.b64encode(API_PASSWORD.encode()).decode()
    polling = api.post(
        "/api/ConnexUser/Login",
        {"Username": API_USER, "Password": encoded, "DeviceToken": "string"},
        token="",
    )
    assert polling.status_code == 200
    result = polling.json()["data"]["Result"]
    assert result["ExpiresIn"] == 3600 and result["AccessToken"] != token
    # Keys in any case; paths too.
    lower = api.call(
        "POST",
        "/API/ACCOUNT/LOGIN/",
        {"USERNAME": API_USER, "Password": API_PASSWORD},
        token="",
        checked=False,
    )
    assert lower.status_code == 200
    # Only a SHA-256 of each token is kept.
    with world.store.transaction() as tx:
        kept = {row.token_hash for row in tx.execute(schema.api_tokens.select())}
    assert hashlib.sha256(token.encode()).digest() in kept
    assert not any(token.encode() in bytes(value) for value in kept)


def test_wrong_credentials_and_missing_tokens_are_refused(world: World) -> None:
    api = world.api
    wrong = api.post("/api/account/login", {"username": API_USER, "password": "nope"}, token="")
    assert wrong.status_code == 401 and wrong.json()["error"] == "Wrong username or password"
    unknown = api.post("/api/account/login", {"username": "nobody", "password": "x"}, token="")
    assert unknown.status_code == 401
    # The company's Web Connector login is not an API user.
    company = api.post("/api/account/login", {"username": "acme-user", "password": PASSWORD})
    assert company.status_code == 401
    missing = api.post("/api/account/login", {"username": API_USER}, token="")
    assert missing.status_code == 400
    not_base64 = api.post(
        "/api/ConnexUser/Login", {"Username": API_USER, "Password": "%%%"}, token=""
    )
    assert not_base64.status_code == 400
    wrong_polling = api.post(
        "/api/ConnexUser/Login",
        {"Username": API_USER, "Password": base64.b64encode(b"wrong").decode()},
        token="",
    )
    assert wrong_polling.status_code == 401
    for path in ("/api/UserConnections/List", "/api/orders/list", "/api/products/list"):
        refused = api.post(path, {}, token="")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="qbwc-bridge"'
    forged = api.post("/api/orders/createorders", [], token="forged-token")
    assert forged.status_code == 401
    assert api.call("GET", "/api/DatabaseDownload/List", token="x" * 43).status_code == 401


def test_a_token_expires_and_dies_with_its_user(world: World) -> None:
    api = world.api
    api.login()
    with world.store.transaction() as tx:
        tx.execute(schema.api_tokens.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = api.post("/api/UserConnections/List")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    api.login()
    assert api.post("/api/UserConnections/List").status_code == 200
    api_user_service.remove(world.store, API_USER)
    assert api.post("/api/UserConnections/List").status_code == 401


def test_failed_logins_lock_the_api_user_out_as_other_logins_are(
    service: Service, openapi: OpenAPI
) -> None:
    api_user_service.add(service.store, API_USER, "acme", API_PASSWORD)
    with _served(service, openapi, max_failed_logins=2, api_token_seconds=60) as api:
        for attempt in range(30):
            path = "/api/account/login" if attempt % 2 else "/api/ConnexUser/Login"
            body = (
                {"username": API_USER, "password": "guess"}
                if attempt % 2
                else {"Username": API_USER, "Password": base64.b64encode(b"guess").decode()}
            )
            answer = api.post(path, body)
            if answer.status_code == 429:
                break
            assert answer.status_code == 401
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) == answer.json()["retry_after_seconds"]
        # Locked: the right password is refused unchecked, at both doors.
        right = api.post("/api/account/login", {"username": API_USER, "password": API_PASSWORD})
        assert right.status_code == 429
        encoded = base64.b64encode(API_PASSWORD.encode()).decode()
        assert (
            api.post(
                "/api/ConnexUser/Login", {"Username": API_USER, "Password": encoded}
            ).status_code
            == 429
        )
        # The company's own login is another username: /api still takes it.
        basic = requests.get(
            f"{api.base}/api/product-updates", auth=("acme-user", PASSWORD), timeout=30
        )
        assert basic.status_code == 200
    with _served(service, openapi, api_token_seconds=60) as api:
        with service.store.transaction() as tx:
            tx.execute(schema.login_failures.delete())
        assert api.login() and api.post("/api/UserConnections/List").status_code == 200
        token = api.post("/api/account/login", {"username": API_USER, "password": API_PASSWORD})
        assert token.json()["data"]["Result"]["ExpiresIn"] == 60


# --- orders in -----------------------------------------------------------------------------


def test_createorders_queues_like_enqueue_and_remembers_the_connection(world: World) -> None:
    api = world.api
    api.login()
    first = _order("C1", world.shop)
    # Keys in any letter case, as Connex matches them.
    second = {key.lower(): value for key, value in _order("C2", world.hook).items()}
    answer = api.post("/api/orders/createorders", [first, second])
    assert answer.status_code == 200 and answer.json() == "Records inserted Successfully"
    assert _statuses(world.store) == {"C1": "pending", "C2": "pending"}
    again = api.post("/api/orders/createorders", [first])  # an identical re-send: harmless
    assert again.status_code == 200
    listed = api.post("/api/orders/list", {"orderBy": "orderNumber", "direction": "asc"}).json()
    assert [(o["orderNumber"], o["userConnectionId"]) for o in listed["lstAllOrders"]] == [
        ("C1", world.shop),
        ("C2", world.hook),
    ]


def test_createorders_is_all_or_nothing_and_names_every_problem(world: World) -> None:
    api = world.api
    api.login()
    batch = [
        _order("G1", world.shop),
        _order("B1", world.shop, TotalTax="-5"),
        _order("B2", world.elsewhere),  # another company's channel
        {k: v for k, v in _order("B3", world.shop).items() if k != "UserConnectionId"},
        _order("B4", world.shop, Deleted="maybe"),
    ]
    refused = api.post("/api/orders/createorders", batch)
    assert refused.status_code == 400
    problems = {(p["order_number"], p["field"]) for p in refused.json()["errors"]}
    assert {
        ("B1", "TotalTax"),
        ("B2", "UserConnectionId"),
        ("B3", "UserConnectionId"),
        ("B4", "Deleted"),
    } <= problems
    assert "nothing was queued" in refused.json()["error"]
    assert _statuses(world.store) == {}
    too_many = [_order(f"N{i}", world.shop) for i in range(101)]
    assert api.post("/api/orders/createorders", too_many).status_code == 413
    assert api.post("/api/orders/createorders", {"not": "an array"}).status_code == 400
    not_json = api.call(
        "POST",
        "/api/orders/createorders",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert _statuses(world.store) == {}


def test_deleted_cancels_a_waiting_order_and_reports_one_in_quickbooks(world: World) -> None:
    api = world.api
    api.login()
    assert api.post(
        "/api/orders/createorders", [_order(n, world.shop) for n in ("D1", "D2", "D3")]
    ).ok
    with world.store.transaction() as tx:
        tx.execute(
            schema.orders.update()
            .where(schema.orders.c.order_number == "D2")
            .values(status="synced", qb_txn_id="TX-D2")
        )
    cancelled = api.post(
        "/api/orders/createorders",
        [{"OrderNumber": "D1", "UserConnectionId": world.shop, "Deleted": True}],
    )
    assert cancelled.status_code == 200
    assert _statuses(world.store)["D1"] == "cancelled"
    # An order already in QuickBooks is reported, not deleted; nothing of the call applies.
    reported = api.post(
        "/api/orders/createorders",
        [
            _order("D4", world.shop),
            {"OrderNumber": "D3", "UserConnectionId": world.shop, "Deleted": True},
            {"orderNumber": "D2", "userConnectionId": world.shop, "deleted": "true"},
        ],
    )
    assert reported.status_code == 400
    (problem,) = reported.json()["errors"]
    assert (problem["order_number"], problem["field"]) == ("D2", "Deleted")
    assert "already in QuickBooks (TxnID TX-D2)" in problem["problem"]
    assert _statuses(world.store) == {"D1": "cancelled", "D2": "synced", "D3": "pending"}
    # Sent again, not deleted: the order waits for QuickBooks again.
    assert api.post("/api/orders/createorders", [_order("D1", world.shop)]).status_code == 200
    assert _statuses(world.store)["D1"] == "pending"
    listed = api.post("/api/orders/list", {"searchText": "d2"}).json()["lstAllOrders"]
    assert [(o["orderNumber"], o["syncStatus"], o["qbTxnId"]) for o in listed] == [
        ("D2", "synced", "TX-D2")
    ]


# --- lists ---------------------------------------------------------------------------------


def test_orders_list_pages_filters_and_sorts(world: World) -> None:
    api = world.api
    api.login()
    orders = [
        _order("L1", world.shop, OrderDate="2024-05-05", CustomerName="Ann Archer"),
        _order("L2", world.shop, OrderDate="2024-06-10", CustomerName="Bob Baker"),
        _order("L3", world.hook, OrderDate="2024-09-05", CustomerName="Cid Cole"),
    ]
    assert api.post("/api/orders/createorders", orders).status_code == 200
    first = api.post(
        "/api/orders/list",
        {
            "beginDate": "05/05/2024",
            "endDate": "09/05/2024",
            "pageNumber": 1,
            "pageSize": 2,
            "searchText": "",
            "orderBy": "orderDate",
            "direction": "desc",
            "userConnectionId": 0,
        },
    ).json()
    assert first["objMetaData"] == {"totalRows": 3, "totalNumberOfPages": 2}
    assert [o["orderNumber"] for o in first["lstAllOrders"]] == ["L3", "L2"]
    top = first["lstAllOrders"][0]
    assert top["orderDate"] == "2024-09-05T00:00:00" and top["channel"] == "Shopify"
    assert top["totalProductSales"] == 45 and top["syncStatus"] == "pending"
    assert top["lstOrderItemDetails"][0] == {
        "productName": "Red widget",
        "sku": "WIDGET-RED",
        "orderedProductQuantity": 2,
        "totalSoldPrice": 25,
        "unitPrice": 12.5,
        "imagesUrl": [],
        "orderNumberSummary": ["L3"],
    }
    second = api.post("/api/orders/list", {"pageNumber": 2, "pageSize": 2}).json()
    assert [o["orderNumber"] for o in second["lstAllOrders"]] == ["L1"]
    window = api.post("/api/orders/list", {"beginDate": "06/01/2024", "endDate": "06/30/2024"})
    assert [o["orderNumber"] for o in window.json()["lstAllOrders"]] == ["L2"]
    found = api.post("/api/orders/list", {"searchText": "baker"}).json()["lstAllOrders"]
    assert [o["orderNumber"] for o in found] == ["L2"]
    by_number = api.post(
        "/api/orders/list", {"orderBy": "ORDERNUMBER", "direction": "ASC", "pageSize": 500}
    )
    assert [o["orderNumber"] for o in by_number.json()["lstAllOrders"]] == ["L1", "L2", "L3"]
    hooked = api.post("/api/orders/list", {"userConnectionId": world.hook}).json()
    assert [o["orderNumber"] for o in hooked["lstAllOrders"]] == ["L3"]
    for wrong in (
        {"userConnectionId": world.elsewhere},
        {"pageSize": 501},
        {"pageNumber": 0},
        {"beginDate": "2024/31/12"},
        {"orderBy": "colour"},
        {"direction": "sideways"},
    ):
        assert api.post("/api/orders/list", wrong).status_code == 400, wrong


def test_products_list_reads_quickbooks_inventory_and_counts_unknown_skus(
    world: World,
) -> None:
    api = world.api
    api.login()
    with world.store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        inventory_store.upsert(
            tx,
            company_id,
            [
                StockLevel("WIDGET-RED", Decimal("41"), Decimal("3"), Decimal("2.5"), "80000001-1"),
                StockLevel("GADGET", Decimal("0"), None, None, "80000002-1"),
            ],
            utcnow(),
        )
    # TSHIRT-M and MYSTERY are in waiting orders but not in QuickBooks' inventory.
    orders = [
        _order("P1", world.shop),
        _order("P2", world.shop, orderDetails=[make_line(sku="MYSTERY", quantity=1)]),
    ]
    assert api.post("/api/orders/createorders", orders).status_code == 200
    listed = api.post(
        "/api/products/list",
        {
            "pageNumber": 1,
            "pageSize": 10,
            "searchText": "",
            "orderBy": "",
            "direction": "",
            "isManual": False,
            "onlyFetchUnknownSkusProducts": False,
            "productType": None,
            "userConnectionId": 0,
        },
    ).json()
    assert listed["unknownSkusCount"] == 2
    assert listed["objMetaData"] == {"totalRows": 2, "totalNumberOfPages": 1}
    gadget, widget = listed["lstProducts"]
    assert (gadget["sku"], gadget["quantityOnHand"], gadget["quantityOnOrder"]) == (
        "GADGET",
        0,
        None,
    )
    assert widget["quantityOnHand"] == 41 and widget["quantityOnSalesOrder"] == 2.5
    assert widget["quantity"] == 38.5 and widget["name"] == "WIDGET-RED"
    unknown = api.post("/api/products/list", {"onlyFetchUnknownSkusProducts": True}).json()
    assert [p["sku"] for p in unknown["lstProducts"]] == ["MYSTERY", "TSHIRT-M"]
    assert all(p["hasUnknownSku"] for p in unknown["lstProducts"])
    page = api.post("/api/products/list", {"pageSize": 1, "pageNumber": 2, "orderBy": "sku"}).json()
    assert [p["sku"] for p in page["lstProducts"]] == ["WIDGET-RED"]
    assert page["objMetaData"] == {"totalRows": 2, "totalNumberOfPages": 2}
    searched = api.post("/api/products/list", {"searchText": "widg"}).json()
    assert [p["sku"] for p in searched["lstProducts"]] == ["WIDGET-RED"]
    by_stock = api.post(
        "/api/products/list", {"orderBy": "quantityOnHand", "direction": "desc"}
    ).json()
    assert [p["sku"] for p in by_stock["lstProducts"]] == ["WIDGET-RED", "GADGET"]
    manual = api.post("/api/products/list", {"isManual": True}).json()
    assert manual["lstProducts"] == [] and manual["unknownSkusCount"] == 2
    assert api.post("/api/products/list", {"userConnectionId": world.elsewhere}).status_code == 400


# --- connections ---------------------------------------------------------------------------


def test_settings_update_sets_the_sync_timers_and_the_posting(world: World) -> None:
    api = world.api
    api.login()
    answer = api.post(
        "/api/Settings/Update",
        {
            "userConnectionId": world.shop,
            "LastDownloadUtc": "2026-11-01T08:00:00.3903372",
            "lastdownloadutcend": "2026-11-02T08:00:00Z",
            "SummaryTransactionGroupBy": 1,
            "SolutionUserName": "token",
            "OrderStatuses": "shipped",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "updated": ["LastDownloadUtc", "LastDownloadUtcEnd", "SummaryTransactionGroupBy"],
        "not_used": ["SolutionUserName", "OrderStatuses"],
    }
    with world.store.transaction() as tx:
        window = channel_store.get(tx, world.shop).window
        company = company_store.by_name(tx, "acme")
    assert window == Window(
        datetime(2026, 11, 1, 8, 0, 0, 390337, tzinfo=UTC), datetime(2026, 11, 2, 8, tzinfo=UTC)
    )
    assert company.settings.posting == "daily_summary"
    # Anything that is not a Connex setting: 400, and nothing applied.
    refused = api.post(
        "/api/Settings/Update",
        {"userConnectionId": world.shop, "SummaryTransactionGroupBy": 0, "Colour": "red"},
    )
    assert refused.status_code == 400 and "Colour" in refused.json()["error"]
    assert company_service.company(world.store, "acme").settings.posting == "daily_summary"
    individual = api.post(
        "/api/Settings/Update", {"userConnectionId": world.shop, "SummaryTransactionGroupBy": "0"}
    )
    assert individual.json()["updated"] == ["SummaryTransactionGroupBy"]
    assert company_service.company(world.store, "acme").settings.posting == "individual"
    for wrong in (
        {"userConnectionId": world.elsewhere, "LastDownloadUtc": "2026-11-01T00:00:00Z"},
        {"LastDownloadUtc": "2026-11-01T00:00:00Z"},
        {"userConnectionId": world.shop, "LastDownloadUtc": "yesterday"},
        {"userConnectionId": world.shop, "LastDownloadUtc": "2026-11-03T00:00:00Z"},
        {"userConnectionId": world.shop, "SummaryTransactionGroupBy": 7},
        {"userConnectionId": world.hook, "LastDownloadUtc": "2026-11-01T00:00:00Z"},
    ):
        assert api.post("/api/Settings/Update", wrong).status_code == 400, wrong
    with world.store.transaction() as tx:
        assert channel_store.get(tx, world.shop).window == window


def test_run_now_makes_the_pull_due(world: World) -> None:
    api = world.api
    api.login()
    answer = api.post("/api/ScheduledTask/RunNow", {"userConnectionId": world.shop})
    assert answer.status_code == 200 and answer.json()["userConnectionId"] == world.shop
    with world.store.transaction() as tx:
        requested = tx.execute(
            schema.tasks.select().where(
                schema.tasks.c.channel_id == world.shop,
                schema.tasks.c.kind == TaskKind.PULL.value,
            )
        ).one()
    assert requested.requested_at is not None
    for wrong in ({"userConnectionId": world.elsewhere}, {"userConnectionId": world.hook}, {}):
        assert api.post("/api/ScheduledTask/RunNow", wrong).status_code == 400, wrong


# --- the polling API -----------------------------------------------------------------------


def _export(store: Store, company: str, *numbers: str) -> None:
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, company).id
        txns = [
            ExportedTxn(
                f"TX-{number}",
                TxnKind.INVOICE,
                "2026-12-01T10:00:00-05:00",
                {"OrderNumber": number, "OrderType": 2, "CustomerName": "Smith, John"},
            )
            for number in numbers
        ]
        export_store.write(tx, company_id, txns, [], utcnow())


def test_database_download_hands_out_exported_orders_until_deleted(world: World) -> None:
    api = world.api
    api.login()
    _export(world.store, "acme", "E1", "E2", "E3")
    _export(world.store, "other", "X1")
    query = "?solutionName=ShipStation&solutionWebsite=http%3A%2F%2Fwwwshipstation.com"
    path = "/api/DatabaseDownload/List"
    waiting = api.call("GET", f"{path}{query}&deleteOrders=false").json()
    assert [(o["OrderNumber"], o["qb_txn_id"]) for o in waiting] == [
        ("E1", "TX-E1"),
        ("E2", "TX-E2"),
        ("E3", "TX-E3"),
    ]
    assert api.call("GET", path).json() == waiting  # they stay waiting
    taken = api.call("GET", f"{path}{query}&deleteOrders=true").json()
    assert taken == waiting
    assert api.call("GET", f"{path}?deleteOrders=true").json() == []
    _export(world.store, "acme", "E4")
    assert [o["OrderNumber"] for o in api.call("GET", f"{path}?deleteOrders=True").json()] == ["E4"]
    # Each API user has its own waiting list.
    api_user_service.add(world.store, "second@example.com", "acme", "second-secret-1")
    other = Api(api.openapi, api.base)
    other.login("second@example.com", "second-secret-1")
    assert len(other.call("GET", path).json()) == 4
    assert api.call("GET", f"{path}?deleteOrders=perhaps", checked=False).status_code == 400


# --- what every answer shares --------------------------------------------------------------


def test_an_unreachable_database_is_a_json_503(tmp_path: Path, openapi: OpenAPI) -> None:
    down = Settings(database_url=f"sqlite:///{tmp_path}/missing-dir/none.db")
    with BackgroundServer(make_wsgi_app(down)) as server:
        api = Api(openapi, server.base_url)
        login = {"username": API_USER, "password": API_PASSWORD}
        assert api.post("/api/account/login", login).status_code == 503
        encoded = base64.b64encode(b"x").decode()
        polling = api.post("/api/ConnexUser/Login", {"Username": API_USER, "Password": encoded})
        assert polling.status_code == 503
        api.token = "t" * 43
        for path in (
            "/api/orders/createorders",
            "/api/orders/list",
            "/api/products/list",
            "/api/UserConnections/List",
            "/api/Settings/Update",
            "/api/ScheduledTask/RunNow",
        ):
            body: object = [] if path.endswith("createorders") else {"userConnectionId": 1}
            assert api.post(path, body).status_code == 503, path
        assert api.call("GET", "/api/DatabaseDownload/List").status_code == 503


def test_wrong_methods_and_bodies_answer_json(world: World) -> None:
    api = world.api
    api.login()
    assert api.call("GET", "/api/orders/list", checked=False).status_code == 405
    assert api.call("PUT", "/api/account/login", checked=False).status_code == 405
    assert api.post("/api/orders/list", [1, 2], checked=False).status_code == 400
    big = Settings().max_request_bytes + 1
    too_big = api.call(
        "POST",
        "/api/orders/createorders",
        checked=False,
        data=io.BytesIO(b" " * big),
        headers={"Content-Type": "application/json", "Content-Length": str(big)},
    )
    assert too_big.status_code == 413


# --- the command line ----------------------------------------------------------------------


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(list(args))


def test_api_users_are_managed_from_the_command_line(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    openapi: OpenAPI,
) -> None:
    monkeypatch.setenv("QBWC_BRIDGE_DATABASE_URL", database_url)
    store = Store.from_url(database_url)
    try:
        company_service.add_company(store, "acme", "acme-user", PASSWORD)
        shop = _channel(store, "acme", "shop", ChannelKind.CUSTOM_STORE)
        assert _cli(monkeypatch, "api-user", "add", "bot", "--company", "acme",
                    "--password-stdin", stdin="bot-password-1\n") == 0  # fmt: skip
        added = capsys.readouterr().out
        assert f"{shop}  shop (custom-store)" in added
        assert _cli(monkeypatch, "api-user", "list", "--company", "acme", "--json") == 0
        (listed,) = json.loads(capsys.readouterr().out)
        assert (listed["name"], listed["company"]) == ("bot", "acme")
        assert _cli(monkeypatch, "api-user", "add", "bot", "--company", "acme",
                    "--password-stdin", stdin="another-pass\n") == 2  # fmt: skip
        assert "exists already" in capsys.readouterr().err
        with BackgroundServer(make_wsgi_app(Settings(database_url=database_url), store)) as server:
            api = Api(openapi, server.base_url)
            api.login("bot", "bot-password-1")
            assert api.post("/api/UserConnections/List").status_code == 200
            assert _cli(monkeypatch, "api-user", "remove", "bot") == 0
            assert api.post("/api/UserConnections/List").status_code == 401
        assert _cli(monkeypatch, "api-user", "list") == 0
        assert "No API users yet" in capsys.readouterr().out
    finally:
        store.database.dispose()
