"""The export's feed from outside: GET /api/quickbooks-transactions and the command line.

QuickBooks' sales reach exported_transactions through the real service (the stand-in Web
Connector speaking SOAP to it); the API and the command line give the same rows.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from factories import make_order_json
from soapclient import PASSWORD, Service

from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector
from qbwc_bridge.simulator.quickbooks import ItemStock, SaleLine

REPO = Path(__file__).resolve().parents[2]
USER = "acme-user"
SUBPROCESS = "the CLI in a subprocess reads what the service wrote"


def cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QBWC_BRIDGE_DATABASE_URL": service.settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def api(service: Service, query: str = "", auth: tuple[str, str] | None = (USER, PASSWORD)) -> Any:
    base = service.url.rsplit("/qbwc", 1)[0]
    request = urllib.request.Request(f"{base}/api/quickbooks-transactions{query}")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def status_of(service: Service, query: str = "", auth: tuple[str, str] | None = None) -> int:
    try:
        api(service, query, auth)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def exported(service: Service, sales: int = 12) -> FakeQuickBooks:
    """A company that exports invoices and sales receipts, synced once: sales by hand and
    two web orders."""
    company_service.set_company_setting(
        service.store, "acme", "export_transactions", "invoice,sales_receipt"
    )
    fake = FakeQuickBooks()
    for name in ("WIDGET-RED", "TSHIRT-M"):
        fake.set_item(ItemStock(full_name=name, quantity_on_hand=Decimal(50)))
    for name in ("Shipping", "Discount", "Sales Tax"):
        fake.set_item(ItemStock(full_name=name, kind="ItemOtherCharge"))
    for i in range(sales):
        kind = "SalesReceipt" if i % 3 == 0 else "Invoice"
        fake.add_sale(
            kind, f"Counter {i % 4}", [SaleLine("WIDGET-RED", Decimal(1 + i), Decimal("3.5"))]
        )
    order_service.enqueue(
        service.store, "acme", [make_order_json(OrderNumber=f"WEB-{n}") for n in (1, 2)]
    )
    report = WebConnector(service.url, USER, PASSWORD, fake).run()
    assert report.outcome == "done", report
    return fake


def test_the_feed_needs_the_company_credentials(service: Service) -> None:
    assert status_of(service) == 401
    assert status_of(service, auth=(USER, "wrong password")) == 401
    assert status_of(service, auth=(USER, PASSWORD)) == 200
    assert status_of(service, "?since=-1", auth=(USER, PASSWORD)) == 400
    assert status_of(service, "?limit=many", auth=(USER, PASSWORD)) == 400
    assert api(service) == {"rows": [], "next_cursor": 0}


def test_pages_by_cursor_give_every_row_once(service: Service) -> None:
    fake = exported(service)
    everything = api(service, "?limit=10000")
    rows = everything["rows"]
    assert len(rows) == 14 and everything["next_cursor"] == rows[-1]["cursor"]
    assert {row["qb_txn_id"] for row in rows} == {
        txn.txn_id for txn in (*fake.invoices(), *fake.sales_receipts())
    }
    web = [row for row in rows if row["created_by_bridge"]]
    assert sorted(row["queued_order_number"] for row in web) == ["WEB-1", "WEB-2"]
    seen, cursor = [], 0
    while True:
        page = api(service, f"?since={cursor}&limit=5")
        if not page["rows"]:
            assert page["next_cursor"] == cursor
            break
        seen += page["rows"]
        cursor = page["next_cursor"]
    assert seen == rows


@pytest.mark.commits(SUBPROCESS)
def test_the_command_line_prints_the_same_rows(service: Service) -> None:
    exported(service, sales=4)
    served = api(service)
    printed = cli(service, "quickbooks-transactions", "--company", "acme", "--json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == served

    cursor = served["rows"][1]["cursor"]
    later = cli(
        service, "quickbooks-transactions", "--company", "acme", "--since", str(cursor), "--json"
    )
    assert json.loads(later.stdout) == {
        "rows": served["rows"][2:],
        "next_cursor": served["next_cursor"],
    }

    text = cli(service, "quickbooks-transactions", "--company", "acme", "--limit", "3")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 3 and served["rows"][0]["OrderNumber"] in lines[0]
    assert f"next cursor: {served['rows'][2]['cursor']}" in text.stderr

    asked = cli(service, "export", "--company", "acme", "--full")
    assert asked.returncode == 0, asked.stderr
    assert "will export every transaction again (invoice, sales_receipt)" in asked.stdout
    unknown = cli(service, "quickbooks-transactions", "--company", "nobody")
    assert unknown.returncode == 2 and "No company named 'nobody'" in unknown.stderr
