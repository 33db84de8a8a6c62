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
from servers import gunicorn
from soapclient import PASSWORD, Service

from qbwc_bridge import cli
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.exports import ExportedTxn
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.services import api_users as api_user_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import inventory as inventory_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector
from qbwc_bridge.simulator.quickbooks import ItemStock
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


def test_settings_and_run_now_refuse_a_missing_or_forged_token(world: World) -> None:
    api = world.api
    real = api.login()
    with world.store.transaction() as tx:
        window = channel_store.get(tx, world.shop).window
    change = {
        "userConnectionId": world.shop,
        "LastDownloadUtc": "2026-11-01T00:00:00Z",
        "SummaryTransactionGroupBy": 1,
    }
    refusals: dict[str, dict[str, Any]] = {
        "no header": {"token": ""},
        "forged": {"token": "forged-token"},
        "a real token altered": {"token": real[:-1] + ("A" if real[-1] != "A" else "B")},
        "another scheme": {"token": "", "headers": {"Authorization": f"Basic {real}"}},
        "no token after Bearer": {"token": "", "headers": {"Authorization": "Bearer "}},
    }
    for how, how_sent in refusals.items():
        for path, body in (
            ("/api/Settings/Update", change),
            ("/api/ScheduledTask/RunNow", {"userConnectionId": world.shop}),
        ):
            refused = api.post(path, body, **how_sent)
            assert refused.status_code == 401, (how, path)
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="qbwc-bridge"'
    # Nothing was changed or requested.
    with world.store.transaction() as tx:
        assert channel_store.get(tx, world.shop).window == window
        assert company_store.by_name(tx, "acme").settings.posting != "daily_summary"
        tasks = tx.execute(
            schema.tasks.select().where(schema.tasks.c.channel_id == world.shop)
        ).all()
    assert all(task.requested_at is None for task in tasks)
    # The real token still works.
    assert api.post("/api/ScheduledTask/RunNow", {"userConnectionId": world.shop}).ok


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
    # Sent again through the other connection, unchanged and changed: each follows it.
    changed = _order("C2", world.shop, CustomerName="Someone Else")
    assert api.post("/api/orders/createorders", [_order("C1", world.hook), changed]).ok
    listed = api.post("/api/orders/list", {"orderBy": "orderNumber", "direction": "asc"}).json()
    assert [(o["orderNumber"], o["userConnectionId"]) for o in listed["lstAllOrders"]] == [
        ("C1", world.hook),
        ("C2", world.shop),
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


# The createorders example of Connex's REST page (../shared/docs/connex/rest-api.txt), as
# printed there, line numbers aside.
CONNEX_EXAMPLE = """
[
{
  "billingAddress": {
    "address1": "123 Main St.",
    "address2": "STE 100",
    "city": "Watertown",
    "company": "Connex",
    "countryName": "United States",
   "email": "example@example.com",
   "firstName": "Joe",
   "fullName": "Joe Example",
   "lastName": "Example",
    "phoneNumber": "7813300737",
    "postalCode": "02472",
    "regionName": "MA",
    "twoLetterIsoCode": "US"
},
"shippingAddress": {
    "address1": "123 Main St.",
    "address2": "STE 100",
    "city": "Watertown",
    "company": "Connex",
    "countryName": "United States",
    "email": "example@example.com",
    "firstName": "Joe",
    "fullName": "Joe Example",
    "lastName": "Example",
    "phoneNumber": "7813300737",
    "postalCode": "02472",
    "regionName": "MA",
    "twoLetterIsoCode": "US"
},
"creationDate": "2024-09-06T13:33:28.283Z",
"creditCardName": "Credit Card",
"discountExclTax": 3,
"discountInclTax": 3,
"ShippingMethod": "UPS",
"ShippingExclTax": "2",
"ShippingInclTax": "2",
"TotalExclTax": 4,
"orderType": "0",
"orderDetails": [
    {
        "name": "My Product",
        "priceExclTax": 2,
        "priceInclTax": 3,
        "quantity": 2,
        "sku": "Product123",
        "options": [
            {
                "name": "Color",
                "value": "Red",
                "sku": "Product1234",
                "quantity": 2
            }
        ],
        "jmaCustomFields": [
            {
                "name": "sadsa",
                "value": "",
                "orderNumber": "",
                "mapped": true
            }
        ],
        "customFields": [
            {
                "name": "sadsa",
                "value": "",
                "orderNumber": "",
                "mapped": true
    }
  ],

  "orderNumbersForItemSummary": [
  ],

  "vendor": "Sample Vendor",
  "categories": [
    "My product categories"
  ],
  "hasKnownSKU": true,
  "fees": {
    "additionalProp1": 2,
    "additionalProp2": 2,
    "additionalProp3": 2
  }
}
]
}
]
"""


def test_the_createorders_example_of_the_connex_page_is_accepted(world: World) -> None:
    api = world.api
    api.login()
    (example,) = json.loads(CONNEX_EXAMPLE)
    # What the page's table of properties marks required and its example leaves out; the
    # total is the example's own arithmetic: lines 2 x 2 + shipping 2 - discount 3.
    required = {
        "ReportingUserId": "0e56eeb0-9c1d-42b3-8a61-4376516718d2",
        "UserConnectionId": world.shop,
        "OrderNumber": "CX-1001",
        "OrderDate": example["creationDate"],
        "CustomerName": "Joe Example",
        "OrderTotal": 3,
        "TotalTax": 0,
        "Deleted": False,
    }
    assert not set(required) & {key.casefold() for key in example}
    answer = api.post("/api/orders/createorders", [{**example, **required}])
    assert answer.status_code == 200, answer.text
    assert answer.json() == "Records inserted Successfully"
    assert _statuses(world.store) == {"CX-1001": "pending"}
    (listed,) = api.post("/api/orders/list", {}).json()["lstAllOrders"]
    assert listed["orderDate"] == "2024-09-06T00:00:00"
    assert listed["userConnectionId"] == world.shop
    assert listed["orderTotal"] == 3
    (line,) = listed["lstOrderItemDetails"]
    assert (line["productName"], line["sku"], line["orderedProductQuantity"]) == (
        "My Product",
        "Product123",
        2,
    )
    assert line["unitPrice"] == 2 and line["totalSoldPrice"] == 4
    # Without what the page marks required, the same body is refused and names each field.
    bare = api.post("/api/orders/createorders", [example])
    assert bare.status_code == 400
    fields = {problem["field"] for problem in bare.json()["errors"]}
    assert {"UserConnectionId", "OrderNumber", "OrderDate", "OrderTotal"} <= fields


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


def test_unknown_skus_ignore_case_follow_resent_orders_and_skip_cancelled_ones(
    world: World,
) -> None:
    api = world.api
    api.login()
    with world.store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        inventory_store.upsert(
            tx, company_id, [StockLevel("Widget", Decimal("1"), None, None, "80000001-1")], utcnow()
        )

    def unknown() -> list[str]:
        listed = api.post("/api/products/list", {"onlyFetchUnknownSkusProducts": True}).json()
        assert listed["unknownSkusCount"] == len(listed["lstProducts"])
        return [p["sku"] for p in listed["lstProducts"]]

    lines = [make_line(sku="WIDGET", quantity=1), make_line(sku="gizmo", quantity=1)]
    other = [make_line(sku="TSHIRT-M", quantity=1)]
    orders = [
        _order("U1", world.shop, orderDetails=lines),
        _order("U2", world.shop, orderDetails=other),
    ]
    assert api.post("/api/orders/createorders", orders).status_code == 200
    assert unknown() == ["TSHIRT-M", "gizmo"]  # WIDGET is QuickBooks' Widget
    resent = _order("U1", world.shop, orderDetails=[make_line(sku="Gadget", quantity=2)])
    assert api.post("/api/orders/createorders", [resent]).status_code == 200
    assert unknown() == ["Gadget", "TSHIRT-M"]  # the re-sent order's lines replace its own
    deleted = {"OrderNumber": "U2", "UserConnectionId": world.shop, "Deleted": True}
    assert api.post("/api/orders/createorders", [deleted]).status_code == 200
    assert unknown() == ["Gadget"]  # a cancelled order waits for nothing
    found = api.post("/api/orders/list", {"searchText": "gadget"}).json()["lstAllOrders"]
    assert found == []  # searchText looks at numbers and customers, not SKUs


def _synced(world: World, fake: FakeQuickBooks) -> dict[str, int]:
    """A Web Connector run with an inventory query; each SKU's product_updates cursor."""
    inventory_service.request_inventory_now(world.store, "acme")
    report = WebConnector(world.service.url, "acme-user", PASSWORD, fake).run()
    assert report.outcome == "done", report
    with world.store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        return {row.sku: row.cursor for row in inventory_store.since(tx, company_id, 0, 100)}


def test_products_list_shows_the_item_details_the_inventory_query_brings(world: World) -> None:
    fake = FakeQuickBooks()
    fake.set_item(
        ItemStock(
            "WIDGET",
            quantity_on_hand=Decimal(7),
            sales_price=Decimal("12.50"),
            sales_desc="Red widget, 10 cm",
            purchase_cost=Decimal("4.25"),
            average_cost=Decimal("4.31579"),
        )
    )
    fake.set_item(
        ItemStock(
            "WIDGET:Large",
            quantity_on_hand=Decimal(2),
            kind="ItemInventoryAssembly",
            sales_price=Decimal("19.99"),
            purchase_cost=Decimal(8),
            average_cost=Decimal("8.1"),
        )
    )
    fake.set_item(ItemStock("PLAIN", quantity_on_hand=Decimal(1)))  # no SalesDesc, no prices
    first = _synced(world, fake)
    api = world.api
    api.login()

    def listed(**body: Any) -> dict[str, dict[str, Any]]:
        rows = api.post("/api/products/list", body).json()["lstProducts"]
        return {row["sku"]: row for row in rows}

    products = listed()
    details = {
        sku: (p["name"], p["description"], p["salesPrice"], p["averageCost"], p["unitCost"])
        for sku, p in products.items()
    }
    assert details == {
        "PLAIN": ("PLAIN", None, 0, 0, 0),
        "WIDGET": ("WIDGET", "Red widget, 10 cm", 12.5, 4.31579, 4.25),
        "WIDGET:Large": ("Large", None, 19.99, 8.1, 8),
    }
    assert products["WIDGET"]["quantityOnHand"] == 7
    by_price = api.post("/api/products/list", {"orderBy": "salesPrice", "direction": "desc"})
    assert [p["sku"] for p in by_price.json()["lstProducts"]] == ["WIDGET:Large", "WIDGET", "PLAIN"]
    # Nothing changed in QuickBooks: no row takes a new cursor.
    assert _synced(world, fake) == first
    # A new price, a new description: that row alone takes a new cursor.
    widget = fake.item("WIDGET")
    assert widget is not None
    fake.set_item(dataclasses.replace(widget.stock, sales_price=Decimal(13)))
    plain = fake.item("PLAIN")
    assert plain is not None
    fake.set_item(dataclasses.replace(plain.stock, sales_desc="Plain, at last"))
    second = _synced(world, fake)
    assert second["WIDGET:Large"] == first["WIDGET:Large"]
    assert min(second["WIDGET"], second["PLAIN"]) > max(first.values())
    products = listed()
    assert products["WIDGET"]["salesPrice"] == 13
    assert products["PLAIN"]["description"] == "Plain, at last"


def _many_orders(store: Store, count: int) -> list[str]:
    """``count`` orders queued in one call of the service (no HTTP): their numbers."""
    numbers = [f"M{i:05d}" for i in range(count)]
    template = make_order_json()
    if numbers:
        order_service.enqueue(store, "acme", ({**template, "OrderNumber": n} for n in numbers))
    return numbers


def _many_products(store: Store, count: int) -> list[str]:
    """``count`` inventory rows written in one transaction of the store: their SKUs."""
    skus = [f"SKU-{i:05d}" for i in range(count)]
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        levels = [StockLevel(sku, Decimal(i % 50), None, None) for i, sku in enumerate(skus)]
        inventory_store.upsert(tx, company_id, levels, utcnow())
    return skus


def _pages(api: Api, path: str, key: str, field: str, size: int, pages: int) -> list[str]:
    """Every row of ``pages`` pages of ``size``, checking the totals each page repeats."""
    seen: list[str] = []
    for number in range(1, pages + 1):
        body = {"pageNumber": number, "pageSize": size, "orderBy": field}
        # Validating 500 orders against the OpenAPI document is slow: the small pages are.
        answer = api.post(path, body, checked=size <= 10).json()
        assert answer["objMetaData"]["totalNumberOfPages"] == pages, (path, number)
        rows = [row[field] for row in answer[key]]
        assert len(rows) == (size if number < pages else len(rows)) and rows, (path, number)
        seen += rows
    return seen


@pytest.mark.parametrize("count", [0, 1, 10, 10_001])
def test_list_totals_hold_at_the_edges_of_a_page(world: World, count: int) -> None:
    """No rows, fewer than a page, exactly a page, and 10 001 rows: 1 001 pages of 10, and
    21 pages of 500 whose last holds one row."""
    api = world.api
    api.login()
    lists = {
        "/api/orders/list": ("lstAllOrders", "orderNumber", _many_orders(world.store, count)),
        "/api/products/list": ("lstProducts", "sku", _many_products(world.store, count)),
    }
    for path, (key, field, made) in lists.items():
        for size in (10, 500):
            pages = -(-count // size)
            first = api.post(path, {"pageNumber": 1, "pageSize": size}, checked=size <= 10)
            assert first.json()["objMetaData"] == {
                "totalRows": count,
                "totalNumberOfPages": pages,
            }, (path, size)
            assert len(first.json()[key]) == min(count, size)
            beyond = api.post(path, {"pageNumber": pages + 1, "pageSize": size}).json()
            assert beyond[key] == [], (path, size)
            assert beyond["objMetaData"] == {"totalRows": count, "totalNumberOfPages": pages}
            if pages:
                last = api.post(path, {"pageNumber": pages, "pageSize": size}, checked=False)
                assert len(last.json()[key]) == count - (pages - 1) * size, (path, size)
        # Every row once, in order, over the pages of 500.
        everything = _pages(api, path, key, field, 500, -(-count // 500))
        assert everything == sorted(made), path


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


# --- companies apart, under gunicorn ---------------------------------------------------------


def _requested(store: Store, channel_id: int) -> bool:
    with store.transaction() as tx:
        rows = tx.execute(
            schema.tasks.select().where(schema.tasks.c.channel_id == channel_id)
        ).all()
    return any(row.requested_at is not None for row in rows)


def test_a_token_of_one_company_is_useless_against_another(
    database_url: str, openapi: OpenAPI, tmp_path: Path
) -> None:
    """Each company's API user, both ways, against the other's orders, products,
    connections, settings, scheduled task and exported orders: as deployed, under gunicorn."""
    store = Store.from_url(database_url)
    try:
        users = {
            "acme": ("a@example.com", "acme-secret-1"),
            "other": ("b@example.com", "b-secret-2"),
        }
        shops: dict[str, int] = {}
        for company, (name, password) in users.items():
            company_service.add_company(store, company, f"{company}-user", PASSWORD)
            shops[company] = _channel(store, company, f"{company}-shop", ChannelKind.CUSTOM_STORE)
            api_user_service.add(store, name, company, password)
            with store.transaction() as tx:
                company_id = company_store.by_name(tx, company).id
                level = StockLevel(f"{company.upper()}-SKU", Decimal(5), None, None)
                inventory_store.upsert(tx, company_id, [level], utcnow())
            _export(store, company, f"{company.upper()}-EXPORTED")
        with gunicorn(database_url, workers=1, log=tmp_path / "gunicorn.log") as url:
            apis = {company: Api(openapi, url.removesuffix("/qbwc")) for company in users}
            for company, (name, password) in users.items():
                apis[company].login(name, password)
                own = [_order(f"{company}-1", shops[company])]
                assert apis[company].post("/api/orders/createorders", own).status_code == 200
            taken: set[str] = set()
            for mine, theirs in (("acme", "other"), ("other", "acme")):
                api, their_shop = apis[mine], shops[theirs]
                with store.transaction() as tx:
                    their_window = channel_store.get(tx, their_shop).window
                # Lists show the token's own company only; the other's connection is a 400.
                orders = api.post("/api/orders/list", {}).json()["lstAllOrders"]
                assert [o["orderNumber"] for o in orders] == [f"{mine}-1"]
                products = api.post("/api/products/list", {}).json()["lstProducts"]
                assert [p["sku"] for p in products] == [f"{mine.upper()}-SKU"]
                connections = api.post("/api/UserConnections/List").json()
                assert [c["id"] for c in connections] == [shops[mine]]
                for path in ("/api/orders/list", "/api/products/list"):
                    assert api.post(path, {"userConnectionId": their_shop}).status_code == 400
                exported = api.call("GET", "/api/DatabaseDownload/List?deleteOrders=true")
                assert [o["OrderNumber"] for o in exported.json()] == [f"{mine.upper()}-EXPORTED"]
                # Nothing of the other company's changes: orders, timers, posting, pulls.
                sneaked = api.post(
                    "/api/orders/createorders",
                    [_order(f"{mine}-2", their_shop), _order(f"{theirs}-1", their_shop)],
                )
                assert sneaked.status_code == 400
                cancel = [{"OrderNumber": f"{theirs}-1", "UserConnectionId": shops[mine],
                           "Deleted": True}]  # fmt: skip
                assert api.post("/api/orders/createorders", cancel).status_code == 200
                settings = {"userConnectionId": their_shop, "LastDownloadUtc": "2026-11-01",
                            "SummaryTransactionGroupBy": 1}  # fmt: skip
                assert api.post("/api/Settings/Update", settings).status_code == 400
                run_now = {"userConnectionId": their_shop}
                assert api.post("/api/ScheduledTask/RunNow", run_now).status_code == 400
                assert _statuses(store, theirs) == {f"{theirs}-1": "pending"}
                assert _statuses(store, mine) == {f"{mine}-1": "pending"}
                with store.transaction() as tx:
                    assert channel_store.get(tx, their_shop).window == their_window
                    theirs_now = company_store.by_name(tx, theirs)
                assert theirs_now.settings.posting != "daily_summary"
                assert not _requested(store, their_shop)
                taken.add(mine)
                # What waits for the other company's user is untouched by this one's taking.
                waiting = apis[theirs].call("GET", "/api/DatabaseDownload/List").json()
                expected = [] if theirs in taken else [f"{theirs.upper()}-EXPORTED"]
                assert [o["OrderNumber"] for o in waiting] == expected
    finally:
        store.database.dispose()


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
