"""What an operator relies on: /healthz, /metrics, recorded sessions."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from enginedriver import quickbooks
from factories import make_order_json
from servers import GUNICORN_COMMAND, REPO, free_port, gunicorn_env
from soapclient import PASSWORD, Service

from qbwc_bridge.config import Settings
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.webconnector import WebConnector
from qbwc_bridge.store import Store
from qbwc_bridge.web.app import make_wsgi_app
from qbwc_bridge.web.devserver import BackgroundServer

METRICS_TOKEN = "metrics-token-for-tests"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def _metrics_server(service: Service, token: str = METRICS_TOKEN) -> Iterator[str]:
    """The service's store behind a server whose /metrics needs ``token``: its URL."""
    settings = dataclasses.replace(service.settings, metrics_token=token)
    with BackgroundServer(make_wsgi_app(settings, service.store)) as server:
        yield f"{server.base_url}/metrics"


def test_healthz_checks_the_database(service: Service) -> None:
    assert _get(service.url.replace("/qbwc", "/healthz")) == (200, '{"status": "ok"}')


def test_healthz_reports_an_unreachable_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/missing-dir/none.db")
    with BackgroundServer(make_wsgi_app(settings)) as server:
        try:
            urllib.request.urlopen(server.url.replace("/qbwc", "/healthz"), timeout=10)
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as error:
            assert error.code == 503


def test_metrics_count_orders_runs_errors_and_callbacks(service: Service) -> None:
    order_service.enqueue(
        service.store,
        "acme",
        [
            make_order_json(OrderNumber="M1"),
            make_order_json(
                OrderNumber="M2",
                orderDetails=[{"sku": "NOPE", "name": "x", "quantity": 1, "priceExclTax": "1.00"}],
            ),
        ],
    )
    WebConnector(service.url, "acme-user", PASSWORD, quickbooks()).run()
    with _metrics_server(service) as metrics:
        _, text = _get(metrics, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert 'qbwc_bridge_orders{company="acme",status="synced"} 1' in text
    assert 'qbwc_bridge_orders{company="acme",status="error"} 1' in text
    assert 'qbwc_bridge_quickbooks_errors{code="3140"} 1' in text
    assert 'qbwc_bridge_runs{status="closed"} 1' in text
    assert 'qbwc_bridge_callbacks_total{callback="sendRequestXML",outcome="ok"' in text
    assert 'qbwc_bridge_callback_seconds_bucket{callback="receiveResponseXML",le="+Inf"' in text


def test_metrics_are_served_only_to_the_bearer_of_the_token(service: Service) -> None:
    """/metrics names every company: without QBWC_BRIDGE_METRICS_TOKEN it is not served,
    with it only to requests bearing the token."""
    status, _ = _get(service.url.replace("/qbwc", "/metrics"))
    assert status == 404
    with _metrics_server(service) as metrics:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {METRICS_TOKEN}"},
            {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        ):
            status, text = _get(metrics, headers)
            assert status == 401 and "acme" not in text, headers
        status, text = _get(metrics, {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200 and "qbwc_bridge_orders" in text
    assert Settings.from_env({"QBWC_BRIDGE_METRICS_TOKEN": "t"}).metrics_token == "t"


def test_exchanges_are_recorded_when_asked(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    company_service.add_company(store, "acme", "acme-user", PASSWORD)
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="R1")])
    recording = Settings(database_url=settings.database_url, record_dir=str(tmp_path / "sessions"))
    with BackgroundServer(make_wsgi_app(recording, store)) as server:
        report = WebConnector(server.url, "acme-user", PASSWORD, quickbooks()).run()
    (session,) = (tmp_path / "sessions").glob("run-*.jsonl")
    events = [json.loads(line) for line in session.read_text().splitlines()]
    requests = [e for e in events if e["event"] == "request"]
    responses = [e for e in events if e["event"] == "response"]
    assert len(requests) == len(responses) == report.exchanges
    assert requests[0]["qbxml"] == report.requests[0]
    assert "InvoiceQueryRq" in requests[0]["qbxml"] and "InvoiceQueryRs" in responses[0]["qbxml"]


def test_client_address_behind_a_trusted_proxy() -> None:
    from qbwc_bridge.web.app import client_address

    trusted = frozenset({"127.0.0.1"})
    behind = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 127.0.0.1"}
    assert client_address(behind, trusted) == "198.51.100.7"
    # a client cannot forge its address past an untrusted hop
    direct = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert client_address(direct, trusted) == "203.0.113.9"
    assert client_address({"REMOTE_ADDR": "127.0.0.1"}, trusted) == "127.0.0.1"


def test_serve_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"},
    )
    assert result.returncode == 2
    assert "run `qbwc-bridge init-db`" in result.stderr


def _gunicorn_start(database_url: str) -> subprocess.CompletedProcess[str]:
    """gunicorn as deployed, expected to stop on its own before serving anything."""
    return subprocess.run(
        GUNICORN_COMMAND,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=gunicorn_env(database_url, free_port(), workers=1),
    )


def test_gunicorn_refuses_a_database_whose_schema_is_behind(tmp_path: Path) -> None:
    from qbwc_bridge.store import migrate
    from qbwc_bridge.store.database import Database

    url = f"sqlite:///{tmp_path}/old.db"
    database = Database(url)
    migrate.upgrade(database, "0001")  # the previous release's schema, never upgraded
    database.dispose()
    result = _gunicorn_start(url)
    assert result.returncode == 1
    assert "The database schema is at 0001, not" in result.stderr
    assert "run `qbwc-bridge init-db`" in result.stderr
    assert "Booting worker" not in result.stderr  # stopped in the master, before any worker


def test_schema_check_lets_a_current_or_unreachable_database_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from qbwc_bridge.store import migrate
    from qbwc_bridge.store.database import Database
    from qbwc_bridge.web import wsgi

    current = f"sqlite:///{tmp_path}/current.db"
    database = Database(current)
    migrate.upgrade(database)
    database.dispose()
    monkeypatch.setenv("QBWC_BRIDGE_DATABASE_URL", current)
    wsgi.check_schema()
    # Down at start: the workers answer "busy" until it is back, so the start goes on.
    monkeypatch.setenv("QBWC_BRIDGE_DATABASE_URL", f"sqlite:///{tmp_path}/no-such-dir/x.db")
    wsgi.check_schema()
    assert "could not check the database schema" in caplog.text
