"""Security promises, end to end: /api/* authenticated, tickets and credentials bound to
their company, throttled logins, no secret in any log line, https-only .qwc URLs.

(Hash parameters, constant-time comparison, ticket randomness and expiry are unit-tested in
tests/unit/engine/test_authenticate.py; the .qwc basics in tests/unit/test_qwc.py.)
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from enginedriver import quickbooks
from factories import make_order_json
from oracle import require_oracle
from servers import bridge, gunicorn
from soapclient import PASSWORD, intuit_client

from qbwc_bridge.config import Settings
from qbwc_bridge.engine import logins
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator import WebConnector
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import companies as company_store

HCP_FILE = r"C:\Company\Sample.QBW"
CLIENT_SIDE_LOGGERS = ("zeep", "urllib3", "requests", "hypothesis")


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post_orders(base: str, authorization: str, orders: list[dict[str, Any]]) -> int:
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    return request(base, "POST", "/api/orders", json.dumps(orders).encode(), headers)[0]


@pytest.fixture
def two_companies(store: Store) -> Store:
    """acme and globex, one queued order each."""
    for name in ("acme", "globex"):
        company_service.add_company(store, name, f"{name}-user", f"{name}-{PASSWORD}")
        order_service.enqueue(store, name, [make_order_json(OrderNumber=f"{name}-1")])
    return store


@pytest.fixture
def base(two_companies: Store, settings: Settings) -> Iterator[str]:
    with bridge(two_companies, settings) as url:
        yield url


# --- /api/* ------------------------------------------------------------------------------------


def test_api_needs_valid_credentials(two_companies: Store, settings: Settings) -> None:
    # More failures than the lockout allows come from this one address: the lockout has its
    # own test; here a higher limit lets the right credentials through at the end.
    with bridge(two_companies, dataclasses.replace(settings, max_failed_logins=100)) as base:
        _check_api_credentials(two_companies, base)


def _check_api_credentials(two_companies: Store, base: str) -> None:
    before = order_service.status(two_companies, "acme")
    order = [make_order_json(OrderNumber="acme-2")]
    refused = [
        "",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"no-colon-at-all").decode(),
        "Bearer " + base64.b64encode(f"acme-user:acme-{PASSWORD}".encode()).decode(),
        basic("acme-user", ""),
        basic("acme-user", f"acme-{PASSWORD} "),
        basic("ACME-USER", f"acme-{PASSWORD}"),
        basic("acme-user", f"globex-{PASSWORD}"),  # another company's password
        basic("acme-user", "' OR '1'='1"),
        basic("' OR '1'='1' --", "' OR '1'='1"),
    ]
    for authorization in refused:
        headers = {"Authorization": authorization} if authorization else {}
        status, answer_headers, body = request(
            base,
            "POST",
            "/api/orders",
            json.dumps(order).encode(),
            {**headers, "Content-Type": "application/json"},
        )
        assert status == 401, authorization
        assert answer_headers.get("WWW-Authenticate", "").startswith("Basic")
        assert "Authentication required" in json.loads(body)["error"]
        assert request(base, "GET", "/api/product-updates?since=0", None, headers)[0] == 401
    assert order_service.status(two_companies, "acme") == before
    assert post_orders(base, basic("acme-user", f"acme-{PASSWORD}"), order) == 200


def test_api_keys_are_hashed_work_only_for_their_company_and_rotate(
    two_companies: Store, base: str
) -> None:
    acme_key = company_service.new_api_key(two_companies, "acme")
    globex_key = company_service.new_api_key(two_companies, "globex")
    with two_companies.transaction() as tx:
        acme = company_store.by_name(tx, "acme")
        stored = company_store.api_key_hash(tx, acme.id) or ""
    assert stored.startswith("scrypt$") and acme_key not in stored
    globex_before = order_service.status(two_companies, "globex")
    assert post_orders(base, basic("acme-user", globex_key), [make_order_json()]) == 401
    assert (
        post_orders(base, basic("acme-user", acme_key), [make_order_json(OrderNumber="k")]) == 200
    )
    assert "k" in [o["order_number"] for o in order_service.status(two_companies, "acme")["orders"]]
    # acme's key reached only acme
    assert order_service.status(two_companies, "globex") == globex_before
    company_service.new_api_key(two_companies, "acme")
    assert post_orders(base, basic("acme-user", acme_key), [make_order_json()]) == 401


def test_api_logins_are_throttled_like_web_connector_logins(
    two_companies: Store, base: str, settings: Settings
) -> None:
    """/api's HTTP Basic goes through the same throttle as authenticate: the Web Connector
    password cannot be guessed at full speed through /api while the username is locked.
    The locked-out caller is told so (429: until when, and why), not sent a bare 401; the
    company's API key is a credential of its own and still works."""
    api_key = company_service.new_api_key(two_companies, "acme")
    for _ in range(settings.max_failed_logins):
        assert post_orders(base, basic("acme-user", "guess"), []) == 401
    right = {"Authorization": basic("acme-user", f"acme-{PASSWORD}")}
    json_headers = {**right, "Content-Type": "application/json"}
    status, headers, body = request(base, "POST", "/api/orders", b"[]", json_headers)
    assert status == 429, body
    assert 0 < int(headers["Retry-After"]) <= settings.lockout_seconds
    answer = json.loads(body)
    assert answer["error"].startswith("Locked out until") and "failed logins" in answer["error"]
    assert datetime.fromisoformat(answer["locked_until"]) > utcnow()
    assert request(base, "GET", "/api/product-updates?since=0", None, right)[0] == 429
    assert post_orders(base, basic("acme-user", api_key), []) == 200


# --- tickets and SOAP logins ---------------------------------------------------------------


def test_a_ticket_of_one_company_never_reads_or_changes_another(
    two_companies: Store, base: str
) -> None:
    soap = intuit_client(f"{base}/qbwc")
    fake = quickbooks()
    hcp = fake.hcp_response()
    acme = next(iter(soap.authenticate("acme-user", f"acme-{PASSWORD}")))
    globex = next(iter(soap.authenticate("globex-user", f"globex-{PASSWORD}")))
    acme_request = soap.sendRequestXML(acme, hcp, HCP_FILE, "US", 13, 0)
    globex_request = soap.sendRequestXML(globex, hcp, HCP_FILE, "US", 13, 0)
    assert "acme-1" in acme_request and "globex-1" not in acme_request
    assert "globex-1" in globex_request and "acme-1" not in globex_request
    globex_claimed = order_service.status(two_companies, "globex")
    assert globex_claimed["counts"]["in_progress"] == 1
    # acme's ticket carries globex's answer, then fails, reads errors and closes
    fake.begin_session()
    globex_answer = fake.process(globex_request)
    soap.receiveResponseXML(acme, globex_answer, "", "")
    soap.connectionError(acme, "0x80040408", "forged")
    assert "globex" not in soap.getLastError(acme)
    soap.closeConnection(acme)
    assert order_service.status(two_companies, "globex") == globex_claimed
    # globex's own run goes on with its own ticket, untouched
    assert soap.receiveResponseXML(globex, globex_answer, "", "") >= 0


def test_failed_logins_from_one_address_lock_it_over_http(
    two_companies: Store, base: str, settings: Settings
) -> None:
    """The lock uses the address the request came from (REMOTE_ADDR, here 127.0.0.1)."""
    soap = intuit_client(f"{base}/qbwc")
    for attempt in range(settings.max_failed_logins * logins.WIDE_LIMIT_FACTOR):
        assert list(soap.authenticate(f"nobody-{attempt}", "guess"))[1] == "nvu"
    assert list(soap.authenticate("acme-user", f"acme-{PASSWORD}"))[1] == "nvu"
    with two_companies.transaction() as tx:
        assert company_store.locked_until(tx, "addr:127.0.0.1", utcnow())


def test_a_refused_login_is_logged_as_refused_with_who_asked(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qbwc_bridge")
    soap = intuit_client(f"{base}/qbwc")
    assert list(soap.authenticate("acme-user", "wrong-secret-pw"))[1] == "nvu"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("qbwc_bridge")]
    assert any(
        "callback=authenticate" in line and "outcome=login-refused" in line for line in lines
    )
    assert not [line for line in lines if "callback=authenticate" in line and "outcome=ok" in line]
    assert any("login refused: user='acme-user' address=127.0.0.1" in line for line in lines)
    assert not [line for line in lines if "wrong-secret-pw" in line]


# --- no secret in logs ---------------------------------------------------------------------


def _secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret and secret in text]


def test_no_secret_in_any_log_record(
    two_companies: Store, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api_key = company_service.new_api_key(two_companies, "acme")
    wsdl = require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl")
    wrong = WebConnector(f"{base}/qbwc", "acme-user", "wrong-secret-pw", quickbooks(), wsdl=wsdl)
    assert wrong.run().auth_result == "nvu"
    report = WebConnector(
        f"{base}/qbwc", "acme-user", f"acme-{PASSWORD}", quickbooks(), wsdl=wsdl
    ).run()
    assert report.outcome == "done" and report.ticket
    assert order_service.status(two_companies, "acme")["counts"]["synced"] == 1
    assert post_orders(base, basic("acme-user", api_key), [make_order_json()]) == 200
    assert post_orders(base, basic("acme-user", "wrong-api-key"), []) == 401
    service_side = [r for r in caplog.records if not r.name.startswith(CLIENT_SIDE_LOGGERS)]
    assert any(r.name.startswith("qbwc_bridge") for r in service_side)
    secrets = [f"acme-{PASSWORD}", "wrong-secret-pw", report.ticket, api_key, "wrong-api-key"]
    for record in service_side:
        text = record.getMessage() + repr(record.__dict__) + (record.exc_text or "")
        assert not _secrets_in(text, secrets), (record.name, record.getMessage()[:200])


def test_no_secret_in_gunicorn_output_and_its_size_limit_is_the_environment_setting(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = Store.from_url(sqlite_url)
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="G-1")])
    api_key = company_service.new_api_key(store, "acme")
    log_path = tmp_path / "gunicorn.log"
    env = {
        "QBWC_BRIDGE_LOG_LEVEL": "debug",
        "QBWC_BRIDGE_ACCESS_LOG": "1",
        "QBWC_BRIDGE_MAX_REQUEST_BYTES": "65536",
    }
    with gunicorn(sqlite_url, workers=1, extra_env=env, log=log_path) as url:
        base = url.removesuffix("/qbwc")
        wsdl = require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl")
        WebConnector(url, "acme-user", "wrong-secret-pw", quickbooks(), wsdl=wsdl).run()
        report = WebConnector(url, "acme-user", PASSWORD, quickbooks(), wsdl=wsdl).run()
        assert report.outcome == "done" and report.ticket
        assert post_orders(base, basic("acme-user", api_key), [make_order_json()]) == 200
        too_big = b"<x>" + b"p" * 65536 + b"</x>"
        status, _, body = request(base, "POST", "/qbwc", too_big, {"Content-Type": "text/xml"})
        assert status == 413 and b"65536" in body
    output = log_path.read_text(errors="replace")
    assert "callback=authenticate" in output  # the service did log, at debug level
    # Each callback line tells time spent computing apart from time spent waiting.
    timed = re.findall(r"callback=\w+ .*? cpu_ms=([0-9.]+) duration_ms=([0-9.]+) ", output)
    assert len(timed) >= 10
    assert all(float(cpu) <= float(wall) + 0.2 for cpu, wall in timed), timed
    leaked = _secrets_in(output, [PASSWORD, "wrong-secret-pw", report.ticket or "", api_key])
    assert not leaked
    store.database.dispose()
