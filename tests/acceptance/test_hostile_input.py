"""Hostile input on every surface gets a fault or a clear error, fast, and changes nothing.

Surfaces: SOAP envelopes (POST /qbwc), qbXML inside receiveResponseXML, JSON orders
(POST /api/orders and ``qbwc-bridge enqueue`` files). After every attack the service still
answers /healthz and the company's queue (``queue.status``) is exactly what it was.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from enginedriver import quickbooks
from factories import make_line, make_order_json, make_payment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import bridge
from soapclient import PASSWORD, Service, intuit_client

from qbwc_bridge import cli
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store.schema import metadata

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://developer.intuit.com/"
BOUND_SECONDS = 10.0
FIFTY_MB = 50 * 1024 * 1024
AUTH = "Basic " + base64.b64encode(f"acme-user:{PASSWORD}".encode()).decode()
JSON_HEADERS = {"Authorization": AUTH, "Content-Type": "application/json"}
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
SQL_METACHARACTERS = (
    "'; DROP TABLE orders; --",
    '" OR 1=1 --',
    "\\'; DELETE FROM companies WHERE '1'='1",
    "back\\slash\\\\ 100% _under_ $1 $$ E'\\x00' ;",
)

# --- HTTP helpers --------------------------------------------------------------------------


def _base(service_url: str) -> str:
    return service_url[: -len("/qbwc")]


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = BOUND_SECONDS,
) -> tuple[int, bytes, float]:
    """One HTTP request with a timeout: (status, body, wall seconds)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def raw_exchange(
    base: str, head: bytes, body: Iterable[bytes], timeout: float = BOUND_SECONDS
) -> tuple[int, bytes, float]:
    """Send ``head`` then stream ``body`` from a thread while reading the answer.

    The server may answer (413) and close before the body is all sent; the sender then
    stops, and whatever answer arrived is returned.
    """
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    started = time.monotonic()

    def send() -> None:
        try:
            sock.sendall(head)
            for part in body:
                sock.sendall(part)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
        sender.join(timeout=timeout)
    elapsed = time.monotonic() - started
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/"), received[:200]
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], elapsed


def envelope(operation: str, **fields: str) -> bytes:
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}">'
        f'<soap:Body><{operation} xmlns="{TNS}">{inner}</{operation}></soap:Body></soap:Envelope>'
    ).encode()


def soap_result(answer: bytes, operation: str) -> Any:
    """The <operationResult> element of a SOAP answer (None when absent)."""
    root = parse_xml(answer)
    return root.find(f"{{{SOAP}}}Body/{{{TNS}}}{operation}Response/{{{TNS}}}{operation}Result")


def assert_soap_fault(status: int, answer: bytes) -> str:
    assert status in (400, 500), (status, answer[:300])
    fault = parse_xml(answer).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert fault is not None, answer[:300]
    return fault.findtext("faultstring") or ""


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def service(store: Store, settings: Settings) -> Iterator[Service]:
    """Company acme on a dev server (the zeep client is made on first use: see ``soap``)."""
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    with bridge(store, settings) as url:
        yield Service(f"{url}/qbwc", store, settings, None)


@pytest.fixture
def base(service: Service) -> str:
    return _base(service.url)


@pytest.fixture
def soap(service: Service) -> Any:
    """A client from Intuit's WSDL: what the Web Connector speaks."""
    return intuit_client(service.url)


@pytest.fixture
def before(service: Service) -> dict[str, Any]:
    """acme with one queued order (and a payment): the state no attack may change."""
    order_service.enqueue(
        service.store, "acme", [make_order_json(OrderNumber="H-1", Payments=[make_payment()])]
    )
    return order_service.status(service.store, "acme")


def assert_unharmed(base: str, store: Store, before: dict[str, Any]) -> None:
    status, body, _ = request(base, "GET", "/healthz", timeout=5)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert order_service.status(store, "acme") == before
    with store.transaction() as tx:
        assert [c.name for c in company_store.list_all(tx)] == ["acme"]


# --- SOAP envelopes --------------------------------------------------------------------------

DEEP = 100_000
ENVELOPE_ATTACKS = {
    "xxe-external-file": (
        b'<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + envelope("authenticate", strUserName="USER", strPassword="x").replace(b"USER", b"&xxe;")
    ),
    "xxe-parameter-entity": (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]>'
        + envelope("serverVersion")
    ),
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY l0 "lol">'
        + b"".join(
            b'<!ENTITY l%d "%s">' % (i, b"".join(b"&l%d;" % (i - 1) for _ in range(10)))
            for i in range(1, 10)
        )
        + b"]>"
        + envelope("authenticate", strUserName="USER", strPassword="x").replace(b"USER", b"&l9;")
    ),
    "quadratic-blowup": (
        b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "'
        + b"A" * 50_000
        + b'">]>'
        + envelope("authenticate", strUserName="USER", strPassword="x").replace(
            b"USER", b"&a;" * 20_000
        )
    ),
    "deeply-nested": (
        envelope("authenticate", strUserName="USER", strPassword="x").replace(
            b"USER", b"<a>" * DEEP + b"</a>" * DEEP
        )
    ),
    "nested-just-past-our-depth-limit": (
        envelope("authenticate", strUserName="USER", strPassword="x").replace(
            b"USER", b"<a>" * 70 + b"</a>" * 70
        )
    ),
    "invalid-utf8-in-a-field": envelope("authenticate", strUserName="U", strPassword="x").replace(
        b">U<", b">\xc3\x28\xff<"
    ),
    "truncated": envelope("authenticate", strUserName="acme-user", strPassword="x")[:-40],
    "binary-noise": bytes(range(256)) * 64,
    "empty-document": b'<?xml version="1.0"?>',
    "json-instead-of-xml": b'{"authenticate": {"strUserName": "acme-user"}}',
    "empty-body": f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body/></soap:Envelope>'.encode(),
    "no-body": f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Header/></soap:Envelope>'.encode(),
    "not-an-envelope": b"<authenticate><strUserName>acme-user</strUserName></authenticate>",
}


def test_hostile_envelopes_get_a_soap_fault_fast(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    for name, body in ENVELOPE_ATTACKS.items():
        status, answer, seconds = request(base, "POST", "/qbwc", body, XML_HEADERS)
        fault = assert_soap_fault(status, answer)
        assert status == 400 and fault.startswith("Malformed SOAP request"), name
        assert seconds < BOUND_SECONDS, name
        assert b"root:" not in answer and b"lollol" not in answer, name
        assert_unharmed(base, service.store, before)


def test_xinclude_is_not_processed(service: Service, base: str, before: dict[str, Any]) -> None:
    body = envelope("authenticate", strUserName="USER", strPassword="x").replace(
        b"USER",
        b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
        b'parse="text"/>',
    )
    status, answer, seconds = request(base, "POST", "/qbwc", body, XML_HEADERS)
    assert seconds < BOUND_SECONDS and b"root:" not in answer
    if status == 200:
        result = soap_result(answer, "authenticate")
        assert [s.text for s in result.findall(f"{{{TNS}}}string")] == [None, "nvu"]
    else:
        assert_soap_fault(status, answer)
    assert_unharmed(base, service.store, before)


def test_no_attack_reaches_the_network(service: Service, base: str, before: dict[str, Any]) -> None:
    """External DTDs, entities and stylesheets pointing at a listener: nobody ever calls it."""
    with socket.socket() as canary:
        canary.bind(("127.0.0.1", 0))
        canary.listen(8)
        target = f"http://127.0.0.1:{canary.getsockname()[1]}/x".encode()
        soap_body = envelope("serverVersion")
        attacks = [
            b'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "' + target + b'">' + soap_body,
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "'
            + target
            + b'"> %p;]>'
            + soap_body,
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "'
            + target
            + b'">]>'
            + envelope("clientVersion", strVersion="V").replace(b">V<", b">&e;<"),
            b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="'
            + target
            + b'"?>'
            + soap_body.partition(b"?>")[2],
        ]
        for attack in attacks:
            status, _answer, seconds = request(base, "POST", "/qbwc", attack, XML_HEADERS)
            assert seconds < BOUND_SECONDS
            assert status in (200, 400, 500), status
        canary.settimeout(0.3)
        with pytest.raises(TimeoutError):
            canary.accept()
    assert_unharmed(base, service.store, before)


# --- qbXML inside receiveResponseXML -----------------------------------------------------

QBXML_ATTACKS = {
    "xxe": '<?xml version="1.0"?><!DOCTYPE QBXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<QBXML><QBXMLMsgsRs><InvoiceQueryRs requestID="1" statusCode="0">&x;</InvoiceQueryRs>'
    "</QBXMLMsgsRs></QBXML>",
    "billion-laughs": '<?xml version="1.0"?><!DOCTYPE QBXML [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10 if i else "&a;" * 10}">' for i in range(9))
    + "]><QBXML>&a8;</QBXML>",
    # 20,000 levels: past lxml's own limit, and the envelope stays under spyne's 2 MiB
    "deeply-nested": "<QBXML>" + "<QBXMLMsgsRs>" * 20_000 + "</QBXMLMsgsRs>" * 20_000 + "</QBXML>",
    "not-xml": "'; DROP TABLE orders; -- <QBXML",
}


def test_hostile_qbxml_stops_the_run_and_leaves_the_order_queued(
    service: Service, base: str, before: dict[str, Any], soap: Any
) -> None:
    # four runs: the order's attempts stay below engine.run.MAX_ATTEMPTS (5)
    for name, qbxml_answer in QBXML_ATTACKS.items():
        ticket, answer = list(soap.authenticate("acme-user", PASSWORD))[:2]
        assert answer in ("", None), name
        qbxml = soap.sendRequestXML(
            ticket, quickbooks().hcp_response(), r"C:\Company\Sample.QBW", "US", 13, 0
        )
        assert "H-1" in qbxml  # the order is claimed: the hostile answer is about it
        assert order_service.status(service.store, "acme")["counts"]["in_progress"] == 1
        started = time.monotonic()
        assert soap.receiveResponseXML(ticket, qbxml_answer, "", "") == -1, name
        assert time.monotonic() - started < BOUND_SECONDS, name
        last_error = soap.getLastError(ticket)
        assert "could not be read" in last_error and "root:" not in last_error, name
        soap.closeConnection(ticket)
        assert_unharmed(base, service.store, before)


# --- forged and expired tickets --------------------------------------------------------------

FORGED_TICKETS = [
    "",
    secrets.token_urlsafe(32),
    "' OR '1'='1' --",
    "\\\\%_*",
    "x" * 200_000,
]
TICKET_CALLS: dict[str, tuple[Callable[[str], dict[str, str]], str | None]] = {
    "sendRequestXML": (
        lambda t: {
            "ticket": t,
            "strHCPResponse": "",
            "strCompanyFileName": "",
            "qbXMLCountry": "US",
            "qbXMLMajorVers": "13",
            "qbXMLMinorVers": "0",
        },
        None,
    ),
    "receiveResponseXML": (
        lambda t: {"ticket": t, "response": "<QBXML/>", "hresult": "", "message": ""},
        "-1",
    ),
    "connectionError": (lambda t: {"ticket": t, "hresult": "0x1", "message": "m"}, "done"),
    "getLastError": (lambda t: {"ticket": t}, None),
    "closeConnection": (lambda t: {"ticket": t}, None),
}


def test_forged_tickets_get_failure_values_on_every_callback(
    service: Service, base: str, before: dict[str, Any], soap: Any
) -> None:
    # a real ticket of a run that has ended is as dead as a made-up one
    ended = next(iter(soap.authenticate("acme-user", PASSWORD)))
    soap.closeConnection(ended)
    for ticket in [*FORGED_TICKETS, ended]:
        for operation, (fields, expected) in TICKET_CALLS.items():
            status, answer, seconds = request(
                base, "POST", "/qbwc", envelope(operation, **fields(ticket)), XML_HEADERS
            )
            assert status == 200, (operation, answer[:300])
            assert seconds < BOUND_SECONDS
            result = soap_result(answer, operation)
            assert result is not None, (operation, answer[:300])
            if expected is not None:
                assert result.text == expected, operation
            if operation == "sendRequestXML":
                assert not (result.text or "").strip()
            if operation == "getLastError":
                assert "H-1" not in (result.text or "")
    assert_unharmed(base, service.store, before)


def test_an_expired_ticket_is_refused_over_http(store: Store, settings: Settings) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="H-1")])
    before = order_service.status(store, "acme")
    short = Settings(database_url=settings.database_url, run_timeout_seconds=1)
    with bridge(store, short) as url:
        auth = soap_result(
            request(
                url,
                "POST",
                "/qbwc",
                envelope("authenticate", strUserName="acme-user", strPassword=PASSWORD),
                XML_HEADERS,
            )[1],
            "authenticate",
        )
        ticket = auth.findall(f"{{{TNS}}}string")[0].text
        fields = TICKET_CALLS["sendRequestXML"][0](ticket)
        fields["strHCPResponse"] = quickbooks().hcp_response()
        answer = request(url, "POST", "/qbwc", envelope("sendRequestXML", **fields), XML_HEADERS)
        assert "H-1" in (soap_result(answer[1], "sendRequestXML").text or "")
        time.sleep(1.2)
        for operation in ("sendRequestXML", "receiveResponseXML"):
            status, answer_body, _ = request(
                url,
                "POST",
                "/qbwc",
                envelope(operation, **TICKET_CALLS[operation][0](ticket)),
                XML_HEADERS,
            )
            result = soap_result(answer_body, operation)
            assert status == 200 and result.text in (None, "-1"), answer_body[:300]
        # the next run finds the order back in the queue, unchanged
        request(
            url,
            "POST",
            "/qbwc",
            envelope("authenticate", strUserName="acme-user", strPassword=PASSWORD),
            XML_HEADERS,
        )
        assert order_service.status(store, "acme") == before


# --- request size ------------------------------------------------------------------------------


def _fifty_mb() -> Iterator[bytes]:
    block = b"<a>" + b"x" * (1024 * 1024 - 7) + b"</a>"
    for _ in range(FIFTY_MB // len(block)):
        yield block


def _chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def test_a_50_mb_body_with_its_length_declared_is_refused(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    for path in ("/qbwc", "/api/orders"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {FIFTY_MB}\r\n\r\n"
        ).encode()
        status, answer, seconds = raw_exchange(base, head, _fifty_mb())
        assert status == 413 and b"exceeds the limit" in answer
        assert seconds < BOUND_SECONDS
        assert_unharmed(base, service.store, before)


def test_a_50_mb_body_streamed_without_a_length_is_refused(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    for path in ("/qbwc", "/api/orders"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        status, answer, seconds = raw_exchange(base, head, _chunked(_fifty_mb()))
        # 413 where the server decodes chunked bodies (gunicorn); 411 would be as clear from
        # one that cannot (the dev server's wsgiref)
        assert status in (411, 413) and json.loads(answer)["error"], answer[:300]
        assert seconds < BOUND_SECONDS
        assert_unharmed(base, service.store, before)


def test_the_size_limit_is_a_setting(store: Store, settings: Settings) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    limit = 4096
    small = Settings(database_url=settings.database_url, max_request_bytes=limit)
    padded = envelope("clientVersion", strVersion="2.3.0.36 " + "p" * limit)
    order = json.dumps([make_order_json(OrderNumber="S-1")]).encode()
    big_order = json.dumps([make_order_json(OrderNumber="S-2", CustomerName="n" * limit)]).encode()
    assert len(order) < limit < len(big_order)
    with bridge(store, small) as url:
        assert request(url, "POST", "/qbwc", envelope("serverVersion"), XML_HEADERS)[0] == 200
        status, answer, _ = request(url, "POST", "/qbwc", padded, XML_HEADERS)
        assert status == 413 and f"limit of {limit} bytes".encode() in answer
        assert request(url, "POST", "/api/orders", big_order, JSON_HEADERS)[0] == 413
        assert request(url, "POST", "/api/orders", order, JSON_HEADERS)[0] == 200
    assert [o["order_number"] for o in order_service.status(store, "acme")["orders"]] == ["S-1"]
    assert Settings.from_env({"QBWC_BRIDGE_MAX_REQUEST_BYTES": "4096"}).max_request_bytes == limit


def test_every_body_up_to_the_limit_reaches_the_service(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    """A 3 MB receiveResponseXML (a big inventory answer) reaches the service: spyne's own
    cap (2 MiB by default) is raised to Settings.max_request_bytes (20 MiB)."""
    response = "<QBXML><QBXMLMsgsRs>" + "<!-- padding -->" * 200_000 + "</QBXMLMsgsRs></QBXML>"
    fields = TICKET_CALLS["receiveResponseXML"][0](secrets.token_urlsafe(32))
    body = envelope("receiveResponseXML", **{**fields, "response": response})
    assert 3_000_000 < len(body) < service.settings.max_request_bytes
    status, answer, _ = request(base, "POST", "/qbwc", body, XML_HEADERS)
    assert status == 200, answer[:300]
    assert soap_result(answer, "receiveResponseXML").text == "-1"  # the ticket is unknown
    assert_unharmed(base, service.store, before)


@pytest.mark.parametrize("content_length", ["0", "-1"], ids=["zero", "negative"])
def test_degenerate_content_lengths_get_a_fast_answer(
    service: Service, base: str, before: dict[str, Any], content_length: str
) -> None:
    """CONTENT_LENGTH "0" or negative gets a fast answer: the body reader never reads to
    EOF on an open socket."""
    head = (
        f"POST /qbwc HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()
    status, _answer, seconds = raw_exchange(base, head, [], timeout=1.0)
    assert 400 <= status < 500
    assert seconds < 1.0
    assert_unharmed(base, service.store, before)


# --- wrong content types and charsets ------------------------------------------------------


def test_orders_in_the_wrong_content_type_are_refused(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    order = json.dumps([make_order_json(OrderNumber="CT-1")]).encode()
    for content_type in ("text/xml; charset=utf-8", "application/x-www-form-urlencoded", ""):
        headers = {"Authorization": AUTH, "Content-Type": content_type}
        status, answer, _ = request(base, "POST", "/api/orders", order, headers)
        assert status == 415 and "application/json" in json.loads(answer)["error"]
    assert request(base, "PUT", "/qbwc", envelope("serverVersion"), XML_HEADERS)[0] == 405
    assert request(base, "GET", "/qbwc")[0] == 404
    assert request(base, "DELETE", "/api/orders", b"", {"Authorization": AUTH})[0] == 404
    assert_unharmed(base, service.store, before)


CHARSET_LIES = {
    "unknown-charset": (envelope("serverVersion"), "text/xml; charset=no-such-charset"),
    "utf-8-body-declared-utf-16": (envelope("serverVersion"), "text/xml; charset=utf-16"),
    "utf-16-body-declared-utf-8": (
        envelope("serverVersion").decode().replace("utf-8", "utf-16").encode("utf-16"),
        "text/xml; charset=utf-8",
    ),
}


def test_a_charset_that_lies_gets_an_answer_or_a_soap_fault(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    """A Content-Type charset that lies about the body gets an answer or a SOAP fault, never a
    plain-text 500 with a traceback (spyne reads the tree we parsed, not the bytes)."""
    failures = []
    for name, (body, content_type) in CHARSET_LIES.items():
        status, answer, _ = request(base, "POST", "/qbwc", body, {"Content-Type": content_type})
        answered = status == 200 and soap_result(answer, "serverVersion") is not None
        faulted = (
            status in (400, 500) and answer.lstrip().startswith(b"<?xml") and b"Fault" in answer
        )
        if not (answered or faulted):
            failures.append((name, status, answer[:100]))
        assert_unharmed(base, service.store, before)
    assert not failures


# --- JSON orders over HTTP -------------------------------------------------------------------

JSON_ATTACKS = {
    "deeply-nested": (b"[" * DEEP, 400),
    "deeply-nested-object": (b'[{"a":' * DEEP, 400),
    "invalid-utf8": (b'[{"OrderNumber": "\xc3\x28\xff"}]', 400),
    "truncated": (json.dumps([make_order_json(OrderNumber="T-1")]).encode()[:-20], 400),
    "an-object-not-an-array": (json.dumps(make_order_json(OrderNumber="T-2")).encode(), 400),
    "a-number-with-5000-digits": (b"[" + b"9" * 5000 + b"]", 400),
    "nan-and-infinity": (
        json.dumps([make_order_json(OrderNumber="T-3", OrderTotal=float("nan"))]).encode(),
        422,
    ),
    "exponent-1e999999": (b'[{"OrderNumber": "T-4", "OrderTotal": 1e999999}]', 422),
    "too-many-orders": (
        json.dumps([make_order_json(OrderNumber=f"M-{i}") for i in range(101)]).encode(),
        413,
    ),
    "valid-order-beside-a-bad-one": (
        json.dumps([make_order_json(OrderNumber="T-5"), {"OrderNumber": "T-6"}]).encode(),
        422,
    ),
}


def _assert_clear_json_errors(
    base: str, store: Store, before: dict[str, Any], names: list[str]
) -> None:
    for name in names:
        body, expected = JSON_ATTACKS[name]
        status, answer, seconds = request(base, "POST", "/api/orders", body, JSON_HEADERS)
        assert status == expected, (name, answer[:300])
        assert json.loads(answer)["error"], name
        assert seconds < BOUND_SECONDS, name
        assert_unharmed(base, store, before)


def test_hostile_json_gets_a_clear_error(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    names = [name for name in JSON_ATTACKS if not name.startswith("deeply")]
    _assert_clear_json_errors(base, service.store, before, names)


def test_deeply_nested_json_gets_a_clear_error(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    """Deeply nested JSON (json.loads raises RecursionError, not ValueError) gets a 400 with
    a clear message, not a 500."""
    names = [name for name in JSON_ATTACKS if name.startswith("deeply")]
    _assert_clear_json_errors(base, service.store, before, names)


# --- SQL metacharacters, NUL bytes, long fields ----------------------------------------------


def _every_string_field(text: str, number: str) -> dict[str, Any]:
    """An order whose every free-text field (top level, addresses, lines, options, payments)
    carries ``text``."""
    address = {
        key: text
        for key in (
            "firstName",
            "lastName",
            "fullName",
            "company",
            "address1",
            "address2",
            "city",
            "regionName",
            "postalCode",
            "countryName",
            "twoLetterIsoCode",
            "email",
            "phoneNumber",
        )
    }
    order: dict[str, Any] = make_order_json(
        OrderNumber=number,
        CustomerName=text,
        ChannelName=text,
        ShippingMethod=text,
        creditCardName=text,
        billingAddress=address,
        shippingAddress=address,
        orderDetails=[
            make_line(name=text, sku=text, options=[{"name": text, "value": text, "sku": text}])
        ],
        Payments=[make_payment(CreditCardName=text, ReferenceNumber=text[:100])],
    )
    return order


def _sql_orders() -> list[dict[str, Any]]:
    return [_every_string_field(text, f"{text}#{i}") for i, text in enumerate(SQL_METACHARACTERS)]


def _assert_stored_verbatim(store: Store, raws: list[dict[str, Any]]) -> None:
    with store.transaction() as tx:
        found = company_store.by_name(tx, "acme")
        stored = {
            q.order.order_number: q.order for q in order_store.iter_company_orders(tx, found.id)
        }
    for raw in raws:
        assert stored[raw["OrderNumber"]] == parse_order(raw)
    # every table is still there
    from sqlalchemy import inspect

    names = set(inspect(store.database.engine).get_table_names())
    assert {table.name for table in metadata.sorted_tables} <= names


def test_sql_metacharacters_in_every_field_are_stored_verbatim(service: Service, base: str) -> None:
    raws = _sql_orders()
    status, answer, _ = request(
        base, "POST", "/api/orders", json.dumps(raws).encode(), JSON_HEADERS
    )
    assert status == 200, answer[:500]
    assert json.loads(answer)["queued"] == len(raws)
    _assert_stored_verbatim(service.store, raws)
    numbers = [o["order_number"] for o in order_service.status(service.store, "acme")["orders"]]
    assert numbers == [raw["OrderNumber"] for raw in raws]
    # sent again: recognised as the same orders, not queued twice
    status, answer, _ = request(
        base, "POST", "/api/orders", json.dumps(raws).encode(), JSON_HEADERS
    )
    assert json.loads(answer)["unchanged"] == len(raws)
    assert request(base, "GET", "/healthz")[0] == 200


def test_nul_bytes_are_stored_verbatim_or_refused_clearly(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    """A NUL (which PostgreSQL's VARCHAR columns refuse) is refused at intake with a clear
    message, never a 500 with a traceback."""
    refused = make_order_json(OrderNumber="N\x00-1")
    status, answer, _ = request(
        base, "POST", "/api/orders", json.dumps([refused]).encode(), JSON_HEADERS
    )
    assert status == 422
    assert json.loads(answer)["errors"][0]["field"] == "OrderNumber"
    assert_unharmed(base, service.store, before)
    kept = _every_string_field("nul\x00byte", "N-2")
    status, answer, _ = request(
        base, "POST", "/api/orders", json.dumps([kept]).encode(), JSON_HEADERS
    )
    if status == 200:
        _assert_stored_verbatim(service.store, [kept])
    else:
        assert status == 422 and "control" in answer.decode()


def test_a_long_payment_reference_is_stored_or_refused_never_a_crash(
    service: Service, base: str, before: dict[str, Any]
) -> None:
    """BUG (PostgreSQL): payments.reference_number is VARCHAR(100) and intake has no limit."""
    raw = make_order_json(OrderNumber="R-1", Payments=[make_payment(ReferenceNumber="r" * 150)])
    status, answer, _ = request(
        base, "POST", "/api/orders", json.dumps([raw]).encode(), JSON_HEADERS
    )
    assert status in (200, 422), answer[:300]
    if status == 200:
        _assert_stored_verbatim(service.store, [raw])
    else:
        assert json.loads(answer)["errors"][0]["field"].endswith("ReferenceNumber")
        assert_unharmed(base, service.store, before)


def test_hostile_usernames_are_just_wrong(
    service: Service, base: str, before: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """SQL, NUL and 300-character usernames: nvu / 401, no crash logged (BUG on PostgreSQL:
    a NUL in an /api username is a 500; a 300-character SOAP username overflows
    login_failures.key VARCHAR(200) and logs a traceback)."""
    caplog.set_level("INFO")
    for username in ("' OR 1=1 --", '" OR ""="', "acme-user'--", "u" * 300):
        status, answer, _ = request(
            base,
            "POST",
            "/qbwc",
            envelope("authenticate", strUserName=username, strPassword="' OR 1=1 --"),
            XML_HEADERS,
        )
        strings = soap_result(answer, "authenticate").findall(f"{{{TNS}}}string")
        assert status == 200 and strings[1].text == "nvu"
    for username in ("' OR 1=1 --", "acme\x00user", "acme-user\x00", "u" * 300):
        token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        status, _, _ = request(base, "POST", "/api/orders", b"[]", headers)
        assert status == 401, username
    crashes = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not crashes, [r.getMessage() for r in crashes]
    assert_unharmed(base, service.store, before)


# --- qbwc-bridge enqueue files ---------------------------------------------------------------


def test_enqueue_files_with_hostile_json_change_nothing(
    store: Store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QBWC_BRIDGE_DATABASE_URL", database_url)
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="H-1")])
    before = order_service.status(store, "acme")
    for name, (body, _) in JSON_ATTACKS.items():
        if name == "too-many-orders":
            continue  # files may hold any number of orders
        path = tmp_path / f"{name}.json"
        path.write_bytes(body)
        started = time.monotonic()
        code = cli.main(["enqueue", "--company", "acme", str(path)])
        assert code != 0, name
        assert time.monotonic() - started < BOUND_SECONDS, name
        assert order_service.status(store, "acme") == before, name
    raws = _sql_orders()
    path = tmp_path / "sql.json"
    path.write_text(json.dumps(raws))
    assert cli.main(["enqueue", "--company", "acme", str(path)]) == 0
    _assert_stored_verbatim(store, raws)


# --- fuzzing over HTTP -----------------------------------------------------------------------

FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n'\";%_\\<>&"),
    max_size=200,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["OrderNumber", "orderDetails", "OrderTotal", "sku", "x"]) | st.text(),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(
    body=st.binary(min_size=1, max_size=2000) | json_values.map(lambda v: json.dumps(v).encode())
)
def test_fuzzed_bodies_never_break_the_service(
    service: Service, base: str, before: dict[str, Any], body: bytes
) -> None:
    status, answer, seconds = request(base, "POST", "/api/orders", body, JSON_HEADERS)
    assert status in (200, 400, 413, 422), (status, answer[:300])
    assert seconds < BOUND_SECONDS
    status, answer, seconds = request(base, "POST", "/qbwc", body, XML_HEADERS)
    assert_soap_fault(status, answer)
    assert order_service.status(service.store, "acme") == before


@FUZZ
@given(ticket=xml_text, hcp=xml_text, country=xml_text, response=xml_text)
def test_fuzzed_callback_fields_never_break_the_service(
    service: Service,
    base: str,
    before: dict[str, Any],
    ticket: str,
    hcp: str,
    country: str,
    response: str,
) -> None:
    calls = {
        "sendRequestXML": {
            "ticket": ticket,
            "strHCPResponse": hcp,
            "strCompanyFileName": hcp,
            "qbXMLCountry": country,
            "qbXMLMajorVers": "13",
            "qbXMLMinorVers": "0",
        },
        "receiveResponseXML": {
            "ticket": ticket,
            "response": response,
            "hresult": country,
            "message": hcp,
        },
        "clientVersion": {"strVersion": response},
        "getLastError": {"ticket": ticket},
    }
    for operation, fields in calls.items():
        status, answer, seconds = request(
            base, "POST", "/qbwc", envelope(operation, **fields), XML_HEADERS
        )
        assert status == 200 and soap_result(answer, operation) is not None, answer[:300]
        assert seconds < BOUND_SECONDS
    assert order_service.status(service.store, "acme") == before
