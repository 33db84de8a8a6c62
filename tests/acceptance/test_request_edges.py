"""Edges of /api and /qbwc where a request once got a 500 (or a refusal the documentation
does not allow): each gets a clear 4xx or succeeds.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from factories import make_order_json, make_payment
from servers import bridge
from soapclient import PASSWORD

from qbwc_bridge.config import Settings
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://developer.intuit.com/"
AUTH = "Basic " + base64.b64encode(f"acme-user:{PASSWORD}".encode()).decode()
JSON_HEADERS = {"Authorization": AUTH, "Content-Type": "application/json"}


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_orders(base: str, body: bytes) -> tuple[int, Any]:
    status, answer = request(base, "POST", "/api/orders", body, JSON_HEADERS)
    return status, json.loads(answer)


@pytest.fixture
def base(store: Store, settings: Settings) -> Iterator[str]:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    with bridge(store, settings) as url:
        yield url


def numbers(store: Store) -> list[str]:
    return [o["order_number"] for o in order_service.status(store, "acme")["orders"]]


def test_a_cursor_beyond_the_database_range_is_a_clear_400(base: str) -> None:
    for since in (str(2**63), str(10**30), "-1"):
        status, answer = request(
            base, "GET", f"/api/product-updates?since={since}", None, JSON_HEADERS
        )
        assert status == 400, (since, answer[:200])
        assert "since" in json.loads(answer)["error"]
    status, answer = request(
        base, "GET", f"/api/product-updates?since={2**63 - 1}", None, JSON_HEADERS
    )
    assert status == 200 and json.loads(answer)["rows"] == []


def test_a_lone_surrogate_in_an_order_number_is_refused_clearly(base: str, store: Store) -> None:
    for order in (
        make_order_json(OrderNumber="S-\ud800"),
        make_order_json(OrderNumber="S-2", Payments=[make_payment(ReferenceNumber="R-\udfff")]),
    ):
        status, answer = post_orders(base, json.dumps([order]).encode())  # "\ud800" escaped
        assert status == 422, answer
        assert "lone surrogate" in answer["errors"][0]["problem"]
    assert numbers(store) == []


def test_an_order_number_is_the_same_in_composed_and_decomposed_form(
    base: str, store: Store
) -> None:
    composed = unicodedata.normalize("NFC", "J-\u00e9")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    first = post_orders(base, json.dumps([make_order_json(OrderNumber=composed)]).encode())
    again = post_orders(base, json.dumps([make_order_json(OrderNumber=decomposed)]).encode())
    assert first == (200, {**first[1], "queued": 1})
    assert again[0] == 200 and (again[1]["queued"], again[1]["unchanged"]) == (0, 1)
    assert numbers(store) == [composed]


def test_the_same_new_order_posted_at_once_is_queued_once(
    database_url: str, settings: Settings
) -> None:
    """Eight callers post one new order at the same moment, each in its own transaction on a
    connection of its own: every one gets 200, the order is queued once."""
    store = Store.from_url(database_url)
    try:
        company_service.add_company(store, "acme", "acme-user", PASSWORD)
        body = json.dumps([make_order_json(OrderNumber="RACE-1")]).encode()
        barrier = threading.Barrier(8)
        results: list[tuple[int, Any]] = []
        with bridge(store, settings) as url:

            def post() -> None:
                barrier.wait()
                results.append(post_orders(url, body))

            threads = [threading.Thread(target=post) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert [status for status, _ in results] == [200] * 8, results
        assert sum(answer["queued"] for _, answer in results) == 1
        assert sum(answer["unchanged"] for _, answer in results) == 7
        assert numbers(store) == ["RACE-1"]
    finally:
        store.database.dispose()


def test_an_escaped_answer_of_15_mb_reaches_the_service(base: str, settings: Settings) -> None:
    """Between libxml2's 10 MB text-node cap and the 20 MiB body limit: read, and answered
    (-1: the ticket is unknown), not refused as malformed."""
    response = "<QBXML><QBXMLMsgsRs>" + "<!-- padding -->" * 950_000 + "</QBXMLMsgsRs></QBXML>"
    fields = {
        "ticket": secrets.token_urlsafe(32),
        "response": response,
        "hresult": "",
        "message": "",
    }
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        f'<receiveResponseXML xmlns="{TNS}">{inner}</receiveResponseXML></soap:Body></soap:Envelope>'
    ).encode()
    assert 15_000_000 < len(body) < settings.max_request_bytes
    status, answer = request(base, "POST", "/qbwc", body, {"Content-Type": "text/xml"})
    assert status == 200, answer[:300]
    result = parse_xml(answer).find(
        f"{{{SOAP}}}Body/{{{TNS}}}receiveResponseXMLResponse/{{{TNS}}}receiveResponseXMLResult"
    )
    assert result is not None and result.text == "-1"
