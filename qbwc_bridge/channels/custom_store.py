"""The client of a store that implements the Connex custom-store API: pairing and order pages.

The contract: ``GET BASE/authenticatetowebservice`` answers ``OK`` to the right HTTP Basic
credentials; ``GET BASE/orders?date_modified_min=…Z&date_modified_max=…Z[&orderStatus=a,b]
[&storeName=s,t]`` answers a JSON array of JMAUser orders, continued by a
``Link: <URL>; rel="next"`` header on the same scheme, host and port.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import httpx

from qbwc_bridge.channels.http import (
    Closing,
    HttpClient,
    OutboundFailure,
    Reply,
    Sent,
    Unreachable,
    UnsafeUrl,
    check_url,
    one_line,
    redact,
    same_origin,
)
from qbwc_bridge.errors import BridgeError

# An answer to the pairing request is shown to the operator, not stored: read little of it.
AUTHENTICATE_MAX_BYTES = 64 * 1024
MESSAGE_CHARS = 500
_WINDOW_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_QUERY_SAFE = ":,"


class StoreFailure(BridgeError):
    """The store's answer could not be used."""


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    """The store's answer to the pairing request."""

    ok: bool
    # The store's own text when not OK (or the HTTP status when it sent none).
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of orders, as the store sent it."""

    # The page's URL, without credentials.
    url: str
    # The page's JSON array items; numbers with a fraction are Decimal.
    orders: list[object]


def window_time(moment: datetime) -> str:
    """A sync timer as the contract writes it: UTC, to the second, ending in Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"sync window times must be timezone-aware, not {moment!r}")
    return moment.astimezone(UTC).strftime(_WINDOW_FORMAT)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


class CustomStoreClient(Closing):
    """Talks to one custom store; one connection pool, closed with ``close()`` or ``with``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_page_bytes: int = 32 * 2**20,
        retries: int = 3,
        retry_wait: float = 1.0,
    ) -> None:
        parsed = check_url(base_url)
        if parsed.query or parsed.fragment:
            raise UnsafeUrl(parsed, "a store's base URL may not have a query or a fragment")
        self._base = parsed.copy_with(raw_path=parsed.raw_path.rstrip(b"/"))
        self.base_url = redact(self._base)
        self.username = username
        self._auth = (username, password)
        self.max_page_bytes = max_page_bytes
        self.retries = retries
        self.retry_wait = retry_wait
        self._http = HttpClient(connect_timeout=connect_timeout, read_timeout=read_timeout)

    def __repr__(self) -> str:
        return f"CustomStoreClient({self.base_url!r}, username={self.username!r})"

    def endpoint(self, name: str, query: str = "") -> httpx.URL:
        """``BASE/name?query``, whether or not the base URL ends with a slash."""
        path = self._base.raw_path + b"/" + name.encode()
        return self._base.copy_with(raw_path=path + (b"?" + query.encode() if query else b""))

    # --- pairing ---------------------------------------------------------------------------

    def authenticate(self) -> StoreAnswer:
        """``GET BASE/authenticatetowebservice``: OK, or the store's own words.

        One attempt: the operator pairing the channel is waiting for the answer. No answer at
        all (unreachable, redirected elsewhere) is a StoreFailure.
        """
        url = self.endpoint("authenticatetowebservice")
        try:
            reply = self._http.get(
                url,
                auth=self._auth,
                max_bytes=AUTHENTICATE_MAX_BYTES,
                accept="text/plain, */*",
                truncate=True,
            )
        except OutboundFailure as exc:
            raise self._failure(url, exc.problem) from exc
        text = reply.text().lstrip("\ufeff").strip()
        if reply.status == 200 and text.strip("\"'").strip().casefold() == "ok":
            return StoreAnswer(ok=True, message="")
        message = one_line(text, MESSAGE_CHARS)
        return StoreAnswer(
            ok=False, message=message or f"HTTP {reply.status} {reply.reason}".strip()
        )

    # --- orders ----------------------------------------------------------------------------

    def orders_url(
        self,
        start: datetime,
        end: datetime,
        *,
        order_statuses: Sequence[str] = (),
        store_names: Sequence[str] = (),
    ) -> httpx.URL:
        """The first page's URL for the window [start, end) and the optional filters."""
        parameters = [
            ("date_modified_min", window_time(start)),
            ("date_modified_max", window_time(end)),
        ]
        if statuses := [s for s in order_statuses if s]:
            parameters.append(("orderStatus", ",".join(statuses)))
        if names := [s for s in store_names if s]:
            parameters.append(("storeName", ",".join(names)))
        query = "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in parameters)
        return self.endpoint("orders", query)

    def pages(
        self,
        start: datetime,
        end: datetime,
        *,
        order_statuses: Sequence[str] = (),
        store_names: Sequence[str] = (),
    ) -> Iterator[Page]:
        """The window's orders page by page, following the store's next links.

        A page is yielded before its next link is judged, so the pages read before a failure
        are in the caller's hands. Anything unusable raises StoreFailure.
        """
        first = self.orders_url(start, end, order_statuses=order_statuses, store_names=store_names)
        return self._pages(first)

    def _pages(self, url: httpx.URL | None) -> Iterator[Page]:
        seen: set[str] = set()
        while url is not None:
            seen.add(str(url))
            reply = self._get_page(url)
            yield Page(url=redact(url), orders=self._orders(url, reply))
            url = self._next(url, reply, seen)

    def _get_page(self, url: httpx.URL) -> Reply:
        """GET one page; a 5xx or no answer is tried again, up to ``retries`` more times."""
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.retries
            try:
                reply = self._http.get(
                    url, auth=self._auth, max_bytes=self.max_page_bytes, accept="application/json"
                )
            except Unreachable as exc:
                if last:
                    raise self._failure(url, f"{exc.problem}{_attempts(attempt)}") from exc
                self._wait(attempt)
                continue
            except OutboundFailure as exc:
                raise self._failure(url, exc.problem) from exc
            if 200 <= reply.status < 300:
                return reply
            if reply.status >= 500 and not last:
                self._wait(attempt)
                continue
            raise self._failure(url, f"the store answered {reply.came_back()}{_attempts(attempt)}")

    def _wait(self, attempt: int) -> None:
        time.sleep(self.retry_wait * 2 ** (attempt - 1))

    def _orders(self, url: httpx.URL, reply: Reply) -> list[object]:
        if reply.media_type in ("text/html", "application/xhtml+xml") or reply.body.lstrip(
            b"\xef\xbb\xbf \t\r\n"
        ).startswith(b"<"):
            raise self._failure(url, f"an HTML page, not JSON (a login page?): {reply.came_back()}")
        try:
            value = json.loads(reply.body, parse_float=Decimal, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise self._failure(
                url,
                f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): "
                f"{reply.came_back()}",
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise self._failure(url, f"not valid JSON ({exc}): {reply.came_back()}") from exc
        if not isinstance(value, list):
            raise self._failure(
                url, f"JSON {_json_kind(value)}, not an array of orders: {reply.came_back()}"
            )
        return value

    def _next(self, url: httpx.URL, reply: Reply, seen: set[str]) -> httpx.URL | None:
        link = reply.links.get("next", {}).get("url")
        if not link:
            return None
        try:
            target = url.join(link)
        except httpx.InvalidURL as exc:
            raise self._failure(url, "the next link is not a valid URL") from exc
        if not same_origin(self._base, target):
            raise self._failure(
                url,
                f"the next link points to another scheme, host or port ({redact(target)}), "
                "not followed",
            )
        target = target.copy_with(userinfo=b"") if target.userinfo else target
        if str(target) in seen:
            raise self._failure(
                url, f"the next link leads back to a page already read ({redact(target)})"
            )
        return target

    def _failure(self, url: httpx.URL, what: str) -> StoreFailure:
        return StoreFailure(f"custom store {self.base_url}: GET {redact(url)}: {what}")

    # --- lifetime --------------------------------------------------------------------------

    # --- stock out ---------------------------------------------------------------------------

    def push_inventory(self, body: bytes) -> Sent:
        """``POST BASE/inventory`` with a JSON array of stock rows: a 2xx took it."""
        return self._http.send_json(
            self.endpoint("inventory"), body, auth=self._auth, label=self.base_url
        )

    def close(self) -> None:
        self._http.close()


def _attempts(attempt: int) -> str:
    return f" ({attempt} attempts)" if attempt > 1 else ""
