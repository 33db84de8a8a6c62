"""`map`, `unpost` and `summaries` as an operator runs them: the console script in
subprocesses, against a database a Web Connector run also works on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from enginedriver import quickbooks, run_once
from factories import make_line, make_order_json, make_payment

from qbwc_bridge.config import Settings
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, utcnow

USER, PASSWORD = "acme-user", "acme-password"


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
    store = Store.from_url(sqlite_url)
    company_service.add_company(store, "acme", USER, PASSWORD)
    with store.transaction() as tx:
        found = store.companies.by_name(tx, "acme")
        store.companies.set_inventory_due_at(tx, found.id, utcnow() + timedelta(days=1))
    store.database.dispose()
    return sqlite_url


def test_map_set_list_remove_and_import(company: str, tmp_path: Path) -> None:
    result = _cli(company, "map", "set", "--company", "acme", "sku", "AMZ-RED", "WIDGET-RED")
    assert result.returncode == 0, result.stderr
    assert "sku 'AMZ-RED' → 'WIDGET-RED'" in result.stdout
    csv = tmp_path / "mappings.csv"
    csv.write_text(
        "kind,from,to\npayment-method,visa,Credit Card\nclass,Amazon,Online:Amazon\n"
        "sku,amz-red,WIDGET-BLUE\n",
        encoding="utf-8",
    )
    result = _cli(company, "map", "import", "--company", "acme", str(csv))
    assert result.returncode == 0, result.stderr
    assert "3 mappings stored." in result.stdout
    listed = _cli(company, "map", "list", "--company", "acme", "--json")
    assert json.loads(listed.stdout) == [
        {"kind": "class", "from": "Amazon", "to": "Online:Amazon"},
        {"kind": "payment-method", "from": "visa", "to": "Credit Card"},
        {"kind": "sku", "from": "amz-red", "to": "WIDGET-BLUE"},  # the import replaced it
    ]
    text = _cli(company, "map", "list", "--company", "acme").stdout
    assert "payment-method" in text and "Credit Card" in text
    removed = _cli(company, "map", "remove", "--company", "acme", "class", "AMAZON")
    assert removed.returncode == 0, removed.stderr
    again = _cli(company, "map", "remove", "--company", "acme", "class", "Amazon")
    assert again.returncode == 2
    assert again.stderr.strip() == "qbwc-bridge: Company 'acme' has no class mapping of 'Amazon'."
    assert len(json.loads(_cli(company, "map", "list", "--company", "acme", "--json").stdout)) == 2


def test_a_bad_csv_stores_nothing_and_names_each_line(company: str, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "sku,A,WIDGET-RED\nship,UPS Ground,UPS\nshipping-method,FedEx,Federal Express Ground\n",
        encoding="utf-8",
    )
    result = _cli(company, "map", "import", "--company", "acme", str(csv))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{csv}: line 2: unknown mapping kind 'ship'")
    assert lines[1].startswith(f"{csv}: line 3: QuickBooks' ShipMethod has at most 15 characters")
    assert lines[2] == "qbwc-bridge: 2 problems found; no mapping was stored."
    assert json.loads(_cli(company, "map", "list", "--company", "acme", "--json").stdout) == []
    stdin = _cli(
        company, "map", "import", "--company", "acme", "-", stdin="txn-type,eBay,invoice\n"
    )
    assert stdin.returncode == 0 and "1 mapping stored." in stdin.stdout


def test_unpost_then_retry(company: str) -> None:
    store = Store.from_url(company)
    engine = RunEngine(store, Settings(database_url=company))
    fake = quickbooks()
    order_service.enqueue(
        store,
        "acme",
        [
            make_order_json(OrderNumber="1001", Payments=[make_payment()]),
            make_order_json(OrderNumber="1002", orderDetails=[make_line(sku="NOPE")]),
        ],
    )
    run_once(engine, fake, USER, PASSWORD)
    result = _cli(company, "unpost", "--company", "acme", "1001", "1002")
    assert result.returncode == 1
    assert "1 order to be unposted by the next Web Connector run: 1001" in result.stdout
    assert "not done: order 1002 is error: nothing of it is in QuickBooks" in result.stderr
    run_once(engine, fake, USER, PASSWORD)
    status = json.loads(_cli(company, "status", "--company", "acme", "--json").stdout)
    assert status["counts"]["unposted"] == 1
    assert not fake.invoices() and not fake.payments
    listing = _cli(company, "status", "--company", "acme", "--status", "unposted")
    assert "unposted: deleted from QuickBooks" in listing.stdout
    retried = _cli(company, "retry", "--company", "acme", "1001")
    assert retried.returncode == 0 and "1 order back in the queue" in retried.stdout
    run_once(engine, fake, USER, PASSWORD)
    assert len(fake.invoices()) == 1 and len(fake.payments) == 1
    store.database.dispose()


def test_settings_and_the_summaries_listing(company: str) -> None:
    for key, value in (
        ("posting", "daily_summary"),
        ("timezone", "Europe/Berlin"),
        ("summary_delay_hours", "3"),
    ):
        result = _cli(company, "company", "set", "acme", key, value)
        assert result.returncode == 0, result.stderr
    bad = _cli(company, "company", "set", "acme", "create_missing_items", "non_inventory")
    assert bad.returncode == 2 and "set income_account first" in bad.stderr
    listing = _cli(company, "summaries", "--company", "acme")
    assert listing.returncode == 0 and "No daily summaries yet" in listing.stdout
    assert json.loads(_cli(company, "summaries", "--company", "acme", "--json").stdout) == []
    helped = _cli(company, "company", "set", "--help").stdout
    for key in ("create_missing_items", "income_account", "posting", "timezone"):
        assert key in helped
