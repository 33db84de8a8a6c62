"""The product_updates feed from outside: the CLI in a subprocess and GET /api/product-updates.

QuickBooks' inventory reaches the table through the real service (the stand-in Web Connector
speaking SOAP to it); a consumer that polls and remembers the cursor sees every change once.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from soapclient import PASSWORD, Service

from qbwc_bridge.services import companies as company_service
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector
from qbwc_bridge.simulator.quickbooks import ItemStock

REPO = Path(__file__).resolve().parents[2]
USER = "acme-user"
ITEMS = 1_234


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
    request = urllib.request.Request(f"{base}/api/product-updates{query}")
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


def stocked_quickbooks() -> FakeQuickBooks:
    fake = FakeQuickBooks()
    for i in range(ITEMS):
        name = f"P-{i:04d}" if i % 30 != 1 else f"P-{i - 1:04d}:Size {i % 7}"
        kind = "ItemInventoryAssembly" if i % 50 == 3 else "ItemInventory"
        fake.set_item(
            ItemStock(
                full_name=name,
                quantity_on_hand=Decimal(i % 89) + Decimal("0.25"),
                quantity_on_order=Decimal(i % 4),
                quantity_on_sales_order=Decimal(i % 3),
                kind=kind,  # type: ignore[arg-type]
            )
        )
    return fake


def quickbooks_levels(fake: FakeQuickBooks) -> dict[str, tuple[str, str, str]]:
    def text(value: Decimal) -> str:
        return format(value.normalize(), "f")

    return {
        item.full_name: (
            text(item.stock.quantity_on_hand),
            text(item.stock.quantity_on_order),
            text(item.stock.quantity_on_sales_order),
        )
        for item in fake.items
    }


def sync(service: Service, fake: FakeQuickBooks) -> None:
    report = WebConnector(service.url, USER, PASSWORD, fake).run()
    assert report.outcome == "done", report


class Consumer:
    """Polls the API with a remembered cursor, as a channel connector would."""

    def __init__(self, service: Service, limit: int) -> None:
        self.service, self.limit = service, limit
        self.cursor = 0
        self.seen: list[dict[str, Any]] = []

    def poll(self) -> int:
        page = api(self.service, f"?since={self.cursor}&limit={self.limit}")
        rows = page["rows"]
        assert len(rows) <= self.limit
        assert [r["cursor"] for r in rows] == sorted(r["cursor"] for r in rows)
        assert all(r["cursor"] > self.cursor for r in rows)
        assert page["next_cursor"] == (rows[-1]["cursor"] if rows else self.cursor)
        self.seen += rows
        self.cursor = page["next_cursor"]
        return len(rows)

    def drain(self) -> None:
        while self.poll():
            pass

    def latest(self) -> dict[str, tuple[str, str, str]]:
        state: dict[str, tuple[str, str, str]] = {}
        for row in self.seen:
            state[row["sku"]] = (
                row["quantity_on_hand"],
                row["quantity_on_order"],
                row["quantity_on_sales_order"],
            )
        return state


def test_the_feed_needs_the_company_credentials(service: Service) -> None:
    assert status_of(service) == 401
    assert status_of(service, auth=(USER, "wrong password")) == 401
    assert status_of(service, auth=("nobody", PASSWORD)) == 401
    assert status_of(service, auth=(USER, PASSWORD)) == 200
    key = company_service.new_api_key(service.store, "acme")
    assert status_of(service, auth=(USER, key)) == 200
    assert status_of(service, "?since=abc", auth=(USER, PASSWORD)) == 400
    assert api(service) == {"rows": [], "next_cursor": 0}


def test_a_polling_consumer_sees_every_change_exactly_once(service: Service) -> None:
    fake = stocked_quickbooks()
    consumer = Consumer(service, limit=97)
    sync(service, fake)
    assert consumer.poll() == 97  # part of it now, the rest later: the cursor remembers
    consumer.drain()
    assert len(consumer.seen) == ITEMS
    assert consumer.latest() == quickbooks_levels(fake)

    # 37 items change; the next run is asked for from the command line.
    changed = sorted(quickbooks_levels(fake))[200:237]
    for sku in changed:
        item = fake.item(sku)
        assert item is not None
        fake.set_item(
            ItemStock(sku, quantity_on_hand=item.stock.quantity_on_hand - 1, kind=item.stock.kind)
        )
    done = cli(service, "inventory", "--company", "acme", "--now")
    assert done.returncode == 0, done.stderr
    before = len(consumer.seen)
    # The consumer keeps polling while the run writes.
    stop = threading.Event()
    errors: list[BaseException] = []

    def poll_meanwhile() -> None:
        try:
            while not stop.is_set():
                consumer.poll()
        except BaseException as error:
            errors.append(error)

    poller = threading.Thread(target=poll_meanwhile)
    poller.start()
    try:
        sync(service, fake)
    finally:
        stop.set()
        poller.join(timeout=30)
    assert not errors, errors
    consumer.drain()
    assert sorted(row["sku"] for row in consumer.seen[before:]) == changed
    pairs = [(row["sku"], row["cursor"]) for row in consumer.seen]
    assert len(set(pairs)) == len(pairs), "no row twice"
    assert consumer.latest() == quickbooks_levels(fake)
    assert consumer.poll() == 0


def test_the_command_line_prints_the_same_rows(service: Service) -> None:
    fake = stocked_quickbooks()
    sync(service, fake)
    served = api(service, "?limit=10000")["rows"]
    assert len(served) == ITEMS

    printed = cli(service, "product-updates", "--company", "acme", "--json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == served

    cursor = served[1000]["cursor"]
    later = cli(service, "product-updates", "--company", "acme", "--since", str(cursor), "--json")
    assert json.loads(later.stdout) == served[1001:]

    text = cli(service, "product-updates", "--company", "acme", "--since", str(cursor))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == len(served) - 1001
    assert served[1001]["sku"] in lines[0]
    assert f"next cursor: {served[-1]['cursor']}" in text.stderr


@pytest.mark.parametrize("limit", [1, 500])
def test_since_and_limit(service: Service, limit: int) -> None:
    fake = FakeQuickBooks()
    for i in range(12):
        fake.set_item(ItemStock(f"S-{i}", quantity_on_hand=Decimal(i)))
    sync(service, fake)
    consumer = Consumer(service, limit)
    consumer.drain()
    assert [row["cursor"] for row in consumer.seen] == list(range(1, 13))
    tail = api(service, "?since=10&limit=1")
    assert [row["cursor"] for row in tail["rows"]] == [11] and tail["next_cursor"] == 11
    assert api(service, "?since=12") == {"rows": [], "next_cursor": 12}
