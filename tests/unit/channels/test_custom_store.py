"""The custom-store client against the stand-in store and a scripted server, over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qbwc_bridge import __version__
from qbwc_bridge.channels.custom_store import (
    CustomStoreClient,
    Page,
    StoreAnswer,
    StoreFailure,
)
from qbwc_bridge.channels.http import UnsafeUrl
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.simulator.store import Fault, StandInStore

USER = "store-user"
PASSWORD = "s3cret-Pa55word-7f3a"
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
FIRST_PAGE = (
    "/api/v1/orders?date_modified_min=2026-12-01T10:00:00Z&date_modified_max=2026-12-02T11:00:00Z"
)
# The "timeout" fault sleeps a little longer than the client's read timeout.
READ_TIMEOUT = 0.3
STORE_SLEEP = 1.0


def jma_order(number: str, total: str = "10.50") -> dict[str, object]:
    return {
        "OrderNumber": number,
        "OrderDate": "2026-12-01T09:30:00Z",
        "CustomerName": "John Smith",
        "orderDetails": [
            {"name": "Mug", "sku": "MUG", "quantity": 1, "priceExclTax": Decimal(total)}
        ],
        "TotalTax": 0,
        "OrderTotal": Decimal(total),
    }


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture
def store() -> StandInStore:
    return StandInStore(username=USER, password=PASSWORD, page_size=2, timeout_seconds=STORE_SLEEP)


@pytest.fixture
def base(store: StandInStore) -> Iterator[str]:
    with store.serve() as url:
        yield url


def connect(base: str, password: str = PASSWORD, **options: float | int) -> CustomStoreClient:
    settings: dict[str, float | int] = {
        "connect_timeout": 2.0,
        "read_timeout": READ_TIMEOUT,
        "retries": 2,
        "retry_wait": 0.01,
    }
    settings.update(options)
    return CustomStoreClient(base, USER, password, **settings)  # type: ignore[arg-type]


def read_all(client: CustomStoreClient, **filters: list[str]) -> list[Page]:
    return list(client.pages(START, END, **filters))


def numbers(pages: list[Page]) -> list[str]:
    return [order["OrderNumber"] for page in pages for order in page.orders]  # type: ignore[index]


def assert_safe(failure: BaseException, client: CustomStoreClient) -> None:
    for text in (str(failure), repr(failure), repr(client), repr(failure.__cause__)):
        assert PASSWORD not in text


# --- pairing --------------------------------------------------------------------------------


def test_the_store_accepts_the_credentials(base: str, store: StandInStore) -> None:
    with connect(base) as client:
        assert client.authenticate() == StoreAnswer(ok=True, message="")
    assert store.requests == ["/api/v1/authenticatetowebservice"]


def test_wrong_credentials_are_refused_with_the_stores_words(base: str) -> None:
    with connect(base, password="wrong") as client:
        answer = client.authenticate()
    assert answer == StoreAnswer(ok=False, message="User name and password is incorrect")


@pytest.mark.parametrize(
    "body", [b"OK", b"ok", b'  "Ok"\r\n', b"'OK'", b"\nok\n", b"\xef\xbb\xbfOK"]
)
def test_ok_ignores_case_quotes_and_whitespace(body: bytes) -> None:
    routes: dict[str, Route] = {"/api/authenticatetowebservice": (200, {}, body)}
    with Scripted(routes) as server, connect(server.url("/api")) as client:
        assert client.authenticate().ok


def test_anything_else_is_the_stores_text_trimmed_or_the_status() -> None:
    routes: dict[str, Route] = {
        "/long/authenticatetowebservice": (200, {}, b"  Not OK:\n" + b"x" * 2000),
        "/empty/authenticatetowebservice": (503, {}, b""),
    }
    with Scripted(routes) as server:
        with connect(server.url("/long")) as client:
            long = client.authenticate()
        with connect(server.url("/empty")) as client:
            empty = client.authenticate()
    assert not long.ok
    assert long.message.startswith("Not OK: xxx")
    assert len(long.message) == 500
    assert empty == StoreAnswer(ok=False, message="HTTP 503 Service Unavailable")


# --- the window and the filters -------------------------------------------------------------


def test_the_window_is_sent_in_utc_to_the_second(base: str, store: StandInStore) -> None:
    plus_one = timezone(timedelta(hours=1))
    start = datetime(2026, 12, 1, 11, 0, 0, 999_999, tzinfo=plus_one)
    end = datetime(2026, 12, 2, 12, 0, tzinfo=plus_one)
    with connect(base) as client:
        assert list(client.pages(start, end)) == [Page(url=base + FIRST_PAGE[7:], orders=[])]
    assert store.requests == [FIRST_PAGE]


def test_a_window_without_a_time_zone_is_a_mistake(base: str) -> None:
    with connect(base) as client, pytest.raises(ValueError, match="timezone-aware"):
        client.pages(datetime(2026, 12, 1), END)


def test_statuses_and_store_names_are_sent_and_filter(base: str, store: StandInStore) -> None:
    store.add(jma_order("A1"), status="shipped", store_name="Amazon", modified_at=at(1))
    store.add(jma_order("A2"), status="pending", store_name="Amazon", modified_at=at(2))
    store.add(jma_order("E1"), status="shipped", store_name="eBay", modified_at=at(3))
    store.add(jma_order("M1"), status="completed", store_name="Main", modified_at=at(4))
    with connect(base) as client:
        pages = read_all(
            client, order_statuses=["shipped", "completed"], store_names=["Amazon", "Main"]
        )
    assert numbers(pages) == ["A1", "M1"]
    assert store.requests == [FIRST_PAGE + "&orderStatus=shipped,completed&storeName=Amazon,Main"]


def test_the_stand_in_window_takes_min_and_leaves_out_max(base: str, store: StandInStore) -> None:
    store.add(jma_order("BEFORE"), modified_at=START - timedelta(seconds=1))
    store.add(jma_order("AT-MIN"), modified_at=START)
    store.add(jma_order("AT-MAX"), modified_at=END)
    with connect(base) as client:
        assert numbers(read_all(client)) == ["AT-MIN"]


def test_a_changed_order_replaces_the_old_one(base: str, store: StandInStore) -> None:
    store.add(jma_order("R1", "10.50"), modified_at=at(1))
    store.add(jma_order("R1", "12.25"), modified_at=at(5))
    with connect(base) as client:
        (page,) = read_all(client)
    assert [order["OrderTotal"] for order in page.orders] == [Decimal("12.25")]  # type: ignore[index]


# --- pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_order_is_read_once_over_several_pages(
    base: str, store: StandInStore, slash: str
) -> None:
    for n in range(5):
        # Added out of order: the store sorts by modification time, then OrderNumber.
        store.add(jma_order(f"N{4 - n}"), modified_at=at(10 - n // 2))
    with connect(base + slash) as client:
        pages = client.pages(START, END)
        first = next(pages)
        # Pages come one at a time: the second is not asked for before it is wanted.
        assert len(store.requests) == 1
        rest = list(pages)
    assert [len(p.orders) for p in [first, *rest]] == [2, 2, 1]
    assert sorted(numbers([first, *rest])) == ["N0", "N1", "N2", "N3", "N4"]
    assert store.requests == [FIRST_PAGE, FIRST_PAGE + "&page=2", FIRST_PAGE + "&page=3"]
    assert [p.url for p in rest] == [base + FIRST_PAGE[7:] + f"&page={n}" for n in (2, 3)]


def test_numbers_with_a_fraction_are_decimal(base: str, store: StandInStore) -> None:
    store.add(jma_order("D1", "18.75"), modified_at=at(1))
    with connect(base) as client:
        (page,) = read_all(client)
    order = page.orders[0]
    assert isinstance(order, dict)
    assert order["OrderTotal"] == Decimal("18.75")
    assert isinstance(order["OrderTotal"], Decimal)
    assert order["TotalTax"] == 0


# --- faults ---------------------------------------------------------------------------------

FAULTS: list[tuple[Fault, list[str]]] = [
    ("401", ["HTTP 401", "text/plain", "User name and password is incorrect"]),
    ("500", ["HTTP 500", "text/plain", "Internal Server Error", "3 attempts"]),
    ("timeout", [f"no answer within {READ_TIMEOUT:g} s", "3 attempts"]),
    ("invalid-json", ["not valid JSON", "HTTP 200", "application/json", '[{"OrderNumber": "F1"']),
    ("html-login", ["HTML page", "HTTP 200", "text/html", "<html><body><form>Login</form>"]),
    ("not-an-array", ["not an array", "HTTP 200", "application/json", '{"error": "x"}']),
    ("foreign-next", ["next link", "another scheme, host or port", "http://example.invalid/"]),
]


@pytest.mark.parametrize(("fault", "said"), FAULTS, ids=[f for f, _ in FAULTS])
def test_a_fault_names_the_store_the_page_and_what_came_back(
    base: str, store: StandInStore, fault: Fault, said: list[str]
) -> None:
    store.add(jma_order("F1"), modified_at=at(1))
    store.fail_next(fault, times=3)
    with connect(base) as client, pytest.raises(StoreFailure) as caught:
        read_all(client)
    message = caught.value.message
    assert message.startswith(f"custom store {base}: GET {base}{FIRST_PAGE[7:]}: ")
    for words in said:
        assert words in message
    assert "\n" not in message
    assert_safe(caught.value, client)


def test_a_later_page_fails_after_the_earlier_ones_were_handed_over(
    base: str, store: StandInStore
) -> None:
    for n in range(4):
        store.add(jma_order(f"P{n}"), modified_at=at(n))
    store.fail_next("html-login", on_page=2)
    received: list[Page] = []
    with connect(base) as client, pytest.raises(StoreFailure, match=r"&page=2: an HTML page"):
        received.extend(client.pages(START, END))
    assert numbers(received) == ["P0", "P1"]


def test_a_next_link_elsewhere_is_never_followed(base: str, store: StandInStore) -> None:
    store.add(jma_order("F1"), modified_at=at(1))
    store.fail_next("foreign-next")
    received: list[Page] = []
    with connect(base) as client, pytest.raises(StoreFailure, match=r"example\.invalid"):
        received.extend(client.pages(START, END))
    assert numbers(received) == ["F1"]
    assert store.requests == [FIRST_PAGE]


def test_a_500_is_tried_again_and_then_succeeds(base: str, store: StandInStore) -> None:
    store.add(jma_order("S1"), modified_at=at(1))
    store.fail_next("500", times=2)
    with connect(base) as client:
        assert numbers(read_all(client)) == ["S1"]
    assert store.requests == [FIRST_PAGE] * 3


def test_a_timeout_is_tried_again(base: str, store: StandInStore) -> None:
    store.add(jma_order("T1"), modified_at=at(1))
    store.fail_next("timeout")
    began = time.monotonic()
    with connect(base) as client:
        assert numbers(read_all(client)) == ["T1"]
    assert store.requests == [FIRST_PAGE] * 2
    assert time.monotonic() - began < STORE_SLEEP


def test_a_4xx_is_not_tried_again(base: str, store: StandInStore) -> None:
    store.fail_next("401")
    with connect(base) as client, pytest.raises(StoreFailure, match="HTTP 401"):
        read_all(client)
    assert store.requests == [FIRST_PAGE]


def test_no_store_listening_is_a_failure_after_the_retries() -> None:
    with Scripted({}) as server:
        url = server.url("/api")
    with connect(url) as client, pytest.raises(StoreFailure, match=r"no answer .*\(3 attempts\)"):
        read_all(client)


def test_a_next_link_back_to_a_read_page_stops_the_pull() -> None:
    looping = {"/api/orders": (200, {"Link": '</api/orders?page=1>; rel="next"'}, b"[]")}
    looping["/api/orders?page=1"] = (200, {"Link": '</api/orders?page=1>; rel="next"'}, b"[]")
    with (
        Scripted(looping, prefix_match=True) as server,
        connect(server.url("/api")) as client,
        pytest.raises(StoreFailure, match="a page already read"),
    ):
        read_all(client)


# --- outbound HTTP rules --------------------------------------------------------------------


def test_a_page_over_the_cap_is_refused(base: str, store: StandInStore) -> None:
    for n in range(2):
        store.add(jma_order(f"B{n}"), modified_at=at(n))
    with connect(base, max_page_bytes=200) as client, pytest.raises(StoreFailure) as caught:
        read_all(client)
    assert "the body is over 200 bytes (HTTP 200, application/json)" in caught.value.message
    assert caught.value.message.startswith(f"custom store {base}: GET ")


def test_a_streamed_body_is_cut_off_at_the_cap() -> None:
    """Without a Content-Length the body is read until the cap, then refused."""
    big = b"[" + b'"xxxxxxxxx",' * 100_000 + b'"x"]'
    routes: dict[str, Route] = {"/api/orders": (200, {"Content-Type": "application/json"}, big)}
    with (
        Scripted(routes, prefix_match=True, chunked=True) as server,
        connect(server.url("/api"), max_page_bytes=10_000) as client,
        pytest.raises(StoreFailure, match="over 10000 bytes"),
    ):
        read_all(client)


def test_plain_http_is_refused_except_to_this_machine() -> None:
    with pytest.raises(UnsafeUrl, match="only to localhost") as caught:
        CustomStoreClient("http://shop.example/api/v1", USER, PASSWORD)
    assert isinstance(caught.value, BridgeError)
    for url in (
        "https://shop.example/api/v1",
        "http://localhost:8080/api",
        "http://[::1]:8080/",
        "http://127.0.0.1/a/",
    ):
        CustomStoreClient(url, USER, PASSWORD).close()


@pytest.mark.parametrize(
    "url",
    [
        f"https://{USER}:{PASSWORD}@shop.example/api",
        "ftp://shop.example/api",
        "https://shop.example/api?key=1",
    ],
)
def test_unusable_base_urls_are_refused_without_echoing_secrets(url: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        CustomStoreClient(url, USER, PASSWORD)
    assert PASSWORD not in str(caught.value)


def test_a_redirect_to_another_host_is_refused() -> None:
    with Scripted({}, prefix_match=True) as server:
        elsewhere = server.url("/api/orders").replace("127.0.0.1", "localhost")
        server.routes["/api/orders"] = (302, {"Location": elsewhere}, b"")
        with connect(server.url("/api")) as client, pytest.raises(StoreFailure) as caught:
            read_all(client)
    assert "redirected to another scheme, host or port" in caught.value.message
    assert "localhost" in caught.value.message
    assert len(server.seen) == 1


def test_a_redirect_on_the_same_host_is_followed_five_times_at_most() -> None:
    routes = {f"/r{n}/orders": (302, {"Location": f"/r{n + 1}/orders"}, b"") for n in range(7)}
    routes["/r5/orders"] = (200, {"Content-Type": "application/json"}, b'[{"OrderNumber": "X"}]')
    with Scripted(routes, prefix_match=True) as server:
        with connect(server.url("/r0")) as client:
            assert numbers(read_all(client)) == ["X"]
        with (
            connect(server.url("/r1")) as client,
            pytest.raises(StoreFailure, match="more than 5 redirects"),
        ):
            routes["/r6/orders"] = routes["/r7/orders"] = (302, {"Location": "/r1/orders"}, b"")
            routes["/r5/orders"] = (302, {"Location": "/r6/orders"}, b"")
            read_all(client)


def test_requests_say_who_sends_them_and_carry_basic_auth() -> None:
    routes: dict[str, Route] = {"/api/orders": (200, {}, b"[]")}
    with Scripted(routes, prefix_match=True) as server, connect(server.url("/api")) as client:
        read_all(client)
    headers = server.seen[0][1]
    assert headers["user-agent"] == f"qbwc-bridge/{__version__}"
    assert headers["authorization"].startswith("Basic ")


def test_the_client_shows_no_password() -> None:
    client = CustomStoreClient("https://shop.example/api/v1/", USER, PASSWORD)
    assert repr(client) == "CustomStoreClient('https://shop.example/api/v1', username='store-user')"
    client.close()


# --- a scripted server for what the stand-in store does not do ------------------------------

Route = tuple[int, dict[str, str], bytes]


class Scripted:
    """Answers each path (with its query; or by path alone with ``prefix_match``) as set."""

    def __init__(
        self, routes: dict[str, Route], *, prefix_match: bool = False, chunked: bool = False
    ) -> None:
        self.routes = routes
        self.seen: list[tuple[str, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                scripted.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                key = (
                    self.path
                    if self.path in scripted.routes or not prefix_match
                    else self.path.split("?")[0]
                )
                status, headers, body = scripted.routes.get(key, (404, {}, b"not here"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for start in range(0, len(body), 4096):
                            piece = body[start : start + 4096]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
