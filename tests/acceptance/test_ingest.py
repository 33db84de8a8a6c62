"""Orders in through the command line and POST /api/orders: all or nothing, every problem named."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from factories import make_order_json
from soapclient import PASSWORD, Service

from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "fixtures" / "orders" / "invalid-orders.json"
SAMPLE = REPO / "fixtures" / "orders" / "sample-orders.json"


def _cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QBWC_BRIDGE_DATABASE_URL": url},
    )


@pytest.fixture
def company(sqlite_url: str) -> str:
    assert (
        _cli(
            sqlite_url,
            "company",
            "add",
            "acme",
            "--username",
            "acme-user",
            "--password-stdin",
            stdin="a-long-password\n",
        ).returncode
        == 0
    )
    return sqlite_url


def _status(url: str) -> dict[str, object]:
    return json.loads(_cli(url, "status", "--company", "acme", "--json").stdout)


def test_enqueue_file_and_status_json_shape(company: str) -> None:
    result = _cli(company, "enqueue", "--company", "acme", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert "Queued 12" in result.stdout
    status = _status(company)
    assert status["counts"] == {
        "pending": 12,
        "in_progress": 0,
        "synced": 0,
        "duplicate": 0,
        "error": 0,
        "unposted": 0,
        "summarized": 0,
        "cancelled": 0,
    }
    first = status["orders"][0]  # type: ignore[index]
    assert set(first) == {
        "order_number",
        "status",
        "txn_type",
        "qb_txn_id",
        "qb_ref_number",
        "error",
        "payments",
    }
    with_payments = next(o for o in status["orders"] if o["payments"])  # type: ignore[attr-defined]
    assert set(with_payments["payments"][0]) == {
        "reference_number",
        "amount",
        "status",
        "qb_txn_id",
        "error",
    }
    again = _cli(company, "enqueue", "--company", "acme", str(SAMPLE))
    assert "Queued 0, updated 0, unchanged 12" in again.stdout


def test_a_file_with_invalid_orders_queues_nothing_and_lists_every_problem(company: str) -> None:
    mixed = json.loads(SAMPLE.read_text()) + json.loads(INVALID.read_text())
    result = _cli(company, "enqueue", "--company", "acme", "-", stdin=json.dumps(mixed))
    assert result.returncode != 0
    assert "(no OrderNumber): OrderNumber" in result.stderr
    assert "order BAD-TOTAL: OrderTotal" in result.stderr and "difference" in result.stderr
    assert "quantity" in result.stderr
    assert "nothing was queued" in result.stderr
    assert _status(company)["counts"]["pending"] == 0  # type: ignore[index]
    skipped = _cli(
        company, "enqueue", "--company", "acme", "--skip-invalid", "-", stdin=json.dumps(mixed)
    )
    assert skipped.returncode == 0
    assert "Queued 12" in skipped.stdout and skipped.stderr.count("skipped:") >= 3


def test_malformed_json_names_the_position(company: str) -> None:
    result = _cli(
        company, "enqueue", "--company", "acme", "-", stdin='[{"OrderNumber": "1"}, {oops}]'
    )
    assert result.returncode != 0
    assert "qbwc-bridge:" in result.stderr and "Traceback" not in result.stderr


def test_unknown_company_is_a_clear_error(company: str) -> None:
    result = _cli(company, "enqueue", "--company", "nope", str(SAMPLE))
    assert result.returncode == 2 and "No company named 'nope'" in result.stderr


def test_retry_puts_errored_orders_back(company: str) -> None:
    _cli(company, "enqueue", "--company", "acme", str(SAMPLE))
    assert "0 orders back in the queue" in _cli(company, "retry", "--company", "acme").stdout
    store = Store.from_url(company)
    with store.transaction() as tx:  # two orders failed in QuickBooks
        tx.exec_driver_sql(
            "UPDATE orders SET status = 'error', error = 'Item missing' "
            "WHERE order_number IN ('1001', '1002')"
        )
    store.database.dispose()
    result = _cli(company, "retry", "--company", "acme", "1001")
    assert "1 order back in the queue: 1001" in result.stdout
    orders = {o["order_number"]: o for o in _status(company)["orders"]}  # type: ignore[attr-defined]
    assert orders["1001"]["status"] == "pending" and orders["1001"]["error"] is None
    assert orders["1002"]["status"] == "error"


def test_large_file_streams(company: str, tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    with path.open("w") as handle:
        handle.write("[")
        for i in range(3000):
            handle.write(("," if i else "") + json.dumps(make_order_json(OrderNumber=f"S{i}")))
        handle.write("]")
    result = _cli(company, "enqueue", "--company", "acme", str(path))
    assert result.returncode == 0 and "Queued 3000" in result.stdout


# --- POST /api/orders ----------------------------------------------------------------------


def _post(
    service: Service,
    body: bytes,
    *,
    auth: tuple[str, str] | None = ("acme-user", PASSWORD),
    content_type: str = "application/json",
    query: str = "",
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type}
    if auth:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        )
    request = urllib.request.Request(
        service.url.replace("/qbwc", "/api/orders") + query, data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_api_queues_orders_like_enqueue(service: Service) -> None:
    code, body = _post(
        service,
        json.dumps([make_order_json(OrderNumber="A1"), make_order_json(OrderNumber="A2")]).encode(),
    )
    assert code == 200 and body["queued"] == 2
    code, body = _post(service, json.dumps([make_order_json(OrderNumber="A1")]).encode())
    assert code == 200 and body["unchanged"] == 1
    assert order_service.status(service.store, "acme")["counts"]["pending"] == 2


def test_api_rejects_with_order_and_field(service: Service) -> None:
    bad = make_order_json(OrderNumber="B1", TotalTax="-5")
    code, body = _post(service, json.dumps([make_order_json(OrderNumber="OK1"), bad]).encode())
    assert code == 422
    assert body["errors"] == [
        {"order_number": "B1", "field": "TotalTax", "problem": body["errors"][0]["problem"]}
    ]  # type: ignore[index]
    assert order_service.status(service.store, "acme")["counts"]["pending"] == 0


def test_api_names_its_own_way_to_queue_the_valid_orders(service: Service) -> None:
    """The 422 offers ?skip_invalid=true (the API's way, not the command line's flag),
    which queues the valid orders and lists the invalid ones."""
    orders = [make_order_json(OrderNumber="OK1"), make_order_json(OrderNumber="B1", TotalTax="-5")]
    code, body = _post(service, json.dumps(orders).encode())
    assert code == 422
    assert "?skip_invalid=true" in str(body["error"]) and "--skip-invalid" not in str(body["error"])
    code, body = _post(service, json.dumps(orders).encode(), query="?skip_invalid=true")
    assert code == 200 and body["queued"] == 1
    assert [e["order_number"] for e in body["errors"]] == ["B1"]  # type: ignore[union-attr]
    assert order_service.status(service.store, "acme")["counts"]["pending"] == 1
    code, body = _post(service, json.dumps(orders).encode(), query="?skip_invalid=maybe")
    assert code == 400 and "skip_invalid must be true or false" in str(body["error"])
    with pytest.raises(order_service.NothingEnqueued) as raised:
        order_service.enqueue(service.store, "acme", orders[1:])
    assert "skip" not in raised.value.message  # each caller names its own way


def test_api_needs_credentials_and_limits_size(service: Service) -> None:
    assert _post(service, b"[]", auth=None)[0] == 401
    assert _post(service, b"[]", auth=("acme-user", "wrong"))[0] == 401
    code, body = _post(
        service, json.dumps([make_order_json(OrderNumber=f"N{i}") for i in range(101)]).encode()
    )
    assert code == 413 and "At most 100" in str(body["error"])
    assert _post(service, b"[]", content_type="text/plain")[0] == 415
    assert _post(service, b"{not json")[0] == 400


def test_api_key_works_as_password(service: Service) -> None:
    key = company_service.new_api_key(service.store, "acme")
    code, _ = _post(
        service, json.dumps([make_order_json(OrderNumber="K1")]).encode(), auth=("acme-user", key)
    )
    assert code == 200
