"""A stand-in custom store: serves the Connex custom-store API over real HTTP on loopback.

Tests pair a channel with it, fill it with JMAUser orders and make it misbehave the way real
stores do (a 500, a hang, a login page, truncated JSON, a next link to another host).

- ``GET BASE/authenticatetowebservice``, HTTP Basic: ``OK``, or 401 with the store's words.
- ``GET BASE/orders?date_modified_min=…&date_modified_max=…[&orderStatus=a,b][&storeName=s,t]
  [&page=N]``, HTTP Basic: the orders modified in [min, max) (min inclusive, max exclusive;
  a bound left out does not filter), with one of the statuses and store names when given,
  sorted by modification time then OrderNumber, ``page_size`` a page, as a JSON array; a
  ``Link: <…&page=N+1>; rel="next"`` header while more pages follow.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, quote

Fault = Literal[
    "500", "timeout", "invalid-json", "html-login", "not-an-array", "foreign-next", "401"
]

BASE_PATH = "/api/v1"
WRONG_CREDENTIALS = "User name and password is incorrect"
LOGIN_PAGE = "<html><body><form>Login</form></body></html>"
FOREIGN_HOST = "http://example.invalid"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoreOrder:
    """An order as the store keeps it: the JMAUser order and what the store filters on."""

    order: dict[str, object]
    status: str = "completed"
    store_name: str = "Main"
    modified_at: datetime = field(default_factory=_now)

    @property
    def number(self) -> str:
        return order_number(self.order)


@dataclass
class _PendingFault:
    fault: Fault
    on_page: int | None
    times: int


def order_number(order: dict[str, object]) -> str:
    """The order's OrderNumber (its key matched case-insensitively), as text."""
    for key, value in order.items():
        if key.lower() == "ordernumber":
            return str(value)
    return ""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class StandInStore:
    """A custom store with orders, credentials and faults set by the test."""

    def __init__(
        self,
        *,
        username: str = "store-user",
        password: str = "store-password",
        page_size: int = 100,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.username = username
        self.password = password
        self.page_size = page_size
        # How long the "timeout" fault keeps the client waiting before it answers.
        self.timeout_seconds = timeout_seconds
        # Every request's path and query, in the order they came.
        self.requests: list[str] = []
        self._orders: dict[str, StoreOrder] = {}
        self._faults: list[_PendingFault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._origin = ""

    def __repr__(self) -> str:
        return f"StandInStore({self.base_url or 'not serving'!r}, orders={len(self._orders)})"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v1`` while serving."""
        return f"{self._origin}{BASE_PATH}" if self._origin else ""

    # --- what the test sets -----------------------------------------------------------------

    def add(
        self,
        order: dict[str, object],
        *,
        status: str = "completed",
        store_name: str = "Main",
        modified_at: datetime | None = None,
    ) -> None:
        """Add an order, or replace the one with its OrderNumber (the store changed it)."""
        kept = StoreOrder(order, status, store_name, _utc(modified_at) if modified_at else _now())
        with self._lock:
            self._orders[kept.number] = kept

    @property
    def orders(self) -> list[StoreOrder]:
        """Every order, in the order the store serves them."""
        with self._lock:
            return sorted(self._orders.values(), key=lambda o: (o.modified_at, o.number))

    def fail_next(self, fault: Fault, *, on_page: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` orders requests (of page ``on_page`` only, if given)
        with ``fault`` instead of the page."""
        with self._lock:
            self._faults.append(_PendingFault(fault, on_page, times))

    def _take_fault(self, page: int) -> Fault | None:
        with self._lock:
            for pending in self._faults:
                if pending.on_page is None or pending.on_page == page:
                    pending.times -= 1
                    if pending.times <= 0:
                        self._faults.remove(pending)
                    return pending.fault
        return None

    # --- serving ----------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port in a thread; yields the base URL (``…/api/v1``)."""
        store = self

        class Handler(_Handler):
            stand_in = store

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = server.server_address[:2]
        self._origin = f"http://{host!s}:{port}"
        self._stopping.clear()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="stand-in-store",
            daemon=True,
        )
        thread.start()
        try:
            yield self.base_url
        finally:
            self._stopping.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    # --- answers ----------------------------------------------------------------------------

    def authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _, password = given.partition(":")
        return hmac.compare_digest(username, self.username) and hmac.compare_digest(
            password, self.password
        )

    def page_of(self, query: dict[str, str]) -> tuple[list[StoreOrder], int | None]:
        """The orders of the page ``query`` asks for, and the next page's number if any."""
        low = _bound(query.get("date_modified_min"))
        high = _bound(query.get("date_modified_max"))
        statuses = _names(query.get("orderStatus"))
        stores = _names(query.get("storeName"))
        chosen = [
            o
            for o in self.orders
            if (low is None or o.modified_at >= low)
            and (high is None or o.modified_at < high)
            and (not statuses or o.status.casefold() in statuses)
            and (not stores or o.store_name.casefold() in stores)
        ]
        page = _page_number(query.get("page"))
        start = (page - 1) * self.page_size
        more = start + self.page_size < len(chosen)
        return chosen[start : start + self.page_size], page + 1 if more else None

    def page_link(self, host: str, query: dict[str, str], page: int) -> str:
        parameters = {**query, "page": str(page)}
        text = "&".join(f"{k}={quote(v, safe=':,')}" for k, v in parameters.items())
        return f"{host}{BASE_PATH}/orders?{text}"


class BadQuery(ValueError):
    """A query parameter the stand-in cannot read."""


def _bound(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        raise BadQuery(f"not an ISO 8601 date and time: {text}") from None


def _names(text: str | None) -> set[str]:
    return {name.strip().casefold() for name in (text or "").split(",") if name.strip()}


def _page_number(text: str | None) -> int:
    if text is None:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise BadQuery(f"not a page number: {text}")
    return int(text)


class _Handler(BaseHTTPRequestHandler):
    stand_in: StandInStore
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``requests`` instead."""

    def do_GET(self) -> None:
        store = self.stand_in
        with store._lock:
            store.requests.append(self.path)
        path, _, raw_query = self.path.partition("?")
        if path == f"{BASE_PATH}/authenticatetowebservice":
            self._authenticate()
        elif path == f"{BASE_PATH}/orders":
            self._orders(raw_query)
        else:
            self._send(404, "text/plain", b"Not found")

    def _authenticate(self) -> None:
        if self.stand_in.authorized(self.headers.get("Authorization", "")):
            self._send(200, "text/plain", b"OK")
        else:
            self._refuse()

    def _refuse(self) -> None:
        self._send(
            401,
            "text/plain; charset=utf-8",
            WRONG_CREDENTIALS.encode(),
            {"WWW-Authenticate": 'Basic realm="store"'},
        )

    def _orders(self, raw_query: str) -> None:
        store = self.stand_in
        if not store.authorized(self.headers.get("Authorization", "")):
            self._refuse()
            return
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        try:
            orders, next_page = store.page_of(query)
        except BadQuery as exc:
            self._send(400, "text/plain; charset=utf-8", str(exc).encode())
            return
        fault = store._take_fault(_page_number(query.get("page")))
        if fault == "timeout":
            if store._stopping.wait(store.timeout_seconds):
                return
            fault = None
        if fault == "500":
            self._send(500, "text/plain", b"Internal Server Error")
            return
        if fault == "401":
            self._refuse()
            return
        if fault == "html-login":
            self._send(200, "text/html; charset=utf-8", LOGIN_PAGE.encode())
            return
        if fault == "not-an-array":
            self._send(200, "application/json", b'{"error": "x"}')
            return
        body = json.dumps([o.order for o in orders], default=_json_default).encode()
        if fault == "invalid-json":
            body = body[: max(1, len(body) // 2)]
        headers = {}
        if fault == "foreign-next":
            headers["Link"] = (
                f'<{store.page_link(FOREIGN_HOST, query, (next_page or 2))}>; rel="next"'
            )
        elif next_page is not None:
            headers["Link"] = f'<{store.page_link(store._origin, query, next_page)}>; rel="next"'
        self._send(200, "application/json", body, headers)

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a "timeout" fault); nobody is left to answer.
            self.close_connection = True
