"""Stock levels and events out, over real HTTP to receivers on 127.0.0.1: batches of only
what changed, at least once, in order, the same delivery id on every attempt, signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from enginedriver import quickbooks, run_once
from factories import make_order_json

from qbwc_bridge import sealing
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import ChannelKind, TaskKind, Window
from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import exports as export_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.services import push as push_service
from qbwc_bridge.simulator.quickbooks import SaleLine
from qbwc_bridge.store import Store, utcnow
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.worker.runner import Worker

SECRET = "a-webhook-secret-of-some-length"
STORE_PASSWORD = "store-password"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A receiver that records every request and answers as scripted."""

    fail_first: int = 0
    status_when_failing: int = 503
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            with self.lock:
                failing = self.fail_first > 0
                if failing:
                    self.fail_first -= 1
                status = self.status_when_failing if failing else 200
                self.requests.append(Received(path, headers, body, status))
            return status
        finally:
            with self.lock:
                self.in_flight -= 1

    def taken(self) -> list[Received]:
        """The requests it answered 2xx, in order."""
        return [item for item in self.requests if item.status == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.handle(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return Settings(database_url=settings.database_url, secret_key=sealing.new_key())


def _company(store: Store) -> int:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    with store.transaction() as tx:
        return store.companies.by_name(tx, "acme").id


def _store_channel(store: Store, settings: Settings, url: str) -> int:
    company_id = _company(store)
    with store.transaction() as tx:
        return channel_store.add(
            tx,
            company_id=company_id,
            name="shop",
            kind=ChannelKind.CUSTOM_STORE,
            url=url,
            username="u",
            sealed_secret=sealing.Sealer.from_settings(settings).seal(STORE_PASSWORD),
            every_minutes=60,
            window=Window.first(utcnow()),
            order_statuses=(),
            store_names=(),
            now=utcnow(),
        ).id


def _levels(store: Store, company_id: int, quantities: dict[str, int]) -> None:
    with store.transaction() as tx:
        inventory_store.upsert(
            tx,
            company_id,
            [
                StockLevel(sku, Decimal(q), Decimal(0), Decimal(1), f"L-{sku}", "t")
                for sku, q in quantities.items()
            ],
            utcnow(),
        )


def _push(store: Store, settings: Settings, **options: object) -> push_service.PushReport:
    return push_service.push(store, settings, channel_service.channel(store, "shop"), **options)  # type: ignore[arg-type]


def test_stock_goes_out_in_batches_of_only_what_changed(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    _store_channel(store, keyed, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {f"SKU-{i:04d}": i for i in range(1200)})
    report = _push(store, keyed)
    assert report.complete and report.delivered == 3  # 500 + 500 + 200
    rows = [row for item in receiver.requests for row in item.json()]  # type: ignore[union-attr]
    assert len(rows) == 1200
    assert {item.path for item in receiver.requests} == {"/api/inventory"}
    assert receiver.requests[0].headers["authorization"].startswith("Basic ")
    first = {r["sku"]: r for r in rows}["SKU-0007"]
    assert first == {
        "sku": "SKU-0007",
        "quantity_on_hand": 7,
        "quantity_available": 6,  # on hand less on sales order, never below 0
        "updated_at": first["updated_at"],
    }
    assert {r["sku"]: r for r in rows}["SKU-0000"]["quantity_available"] == 0

    _levels(store, company_id, {"SKU-0001": 1, "SKU-0002": 50})  # one changed
    receiver.requests.clear()
    assert _push(store, keyed).delivered == 1
    assert [r["sku"] for r in receiver.requests[0].json()] == ["SKU-0002"]  # type: ignore[union-attr]
    receiver.requests.clear()
    assert _push(store, keyed).delivered == 0 and receiver.requests == []


def test_a_failing_receiver_gets_every_delivery_in_order_with_the_same_ids(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    _store_channel(store, keyed, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {f"S{i:04d}": 1 for i in range(700)})
    receiver.fail_first = 2
    failed = _push(store, keyed)
    assert not failed.complete and failed.error and "503" in failed.error
    shown = channel_service.channel(store, "shop").push
    assert shown is not None and shown.last_error and shown.cursor == 0
    assert _push(store, keyed).delivered == 0  # waiting out its backoff
    for _ in range(3):
        _push(store, keyed, force=True)
    bodies = [item.body for item in receiver.requests]
    assert bodies[0] == bodies[1] == bodies[2]  # the same delivery, three times
    taken = [row["sku"] for item in receiver.taken() for row in item.json()]  # type: ignore[union-attr]
    assert taken == sorted(taken) and len(taken) == 700


def test_after_24_hours_of_failures_the_channel_shows_it_and_waits(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    _store_channel(store, keyed, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {"A": 1})
    receiver.fail_first = 1000
    start = utcnow()
    _push(store, keyed, clock=lambda: start)
    later = start + timedelta(hours=25)
    report = _push(store, keyed, clock=lambda: later, force=True)
    assert report.gave_up
    shown = channel_service.channel(store, "shop").push
    assert shown is not None and "24 hours" in (shown.last_error or "")
    tried = len(receiver.requests)
    assert _push(store, keyed, clock=lambda: later + timedelta(hours=2)).gave_up
    assert len(receiver.requests) == tried  # no more tries until a person pushes


def test_webhook_events_are_signed_and_carry_order_outcomes(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    channel_service.add_webhook(
        store, keyed, name="hook", company="acme", url=receiver.url, secret=SECRET
    )
    order_service.enqueue(
        store,
        "acme",
        [make_order_json(OrderNumber=f"E{i}", CustomerName=f"B {i}") for i in range(3)],
    )
    run_once(RunEngine(store, keyed), quickbooks(), "acme-user", "acme-password")
    report = push_service.push(store, keyed, channel_service.channel(store, "hook"))
    assert report.complete
    kinds = [item.headers["x-qbwc-bridge-event"] for item in receiver.requests]
    assert "order_outcome" in kinds
    for item in receiver.requests:
        # An independent check of the signature, as a receiver would write it.
        expected = hmac.new(SECRET.encode(), item.body, hashlib.sha256).hexdigest()
        assert item.headers["x-qbwc-bridge-signature"] == f"sha256={expected}"
        event = item.json()
        assert isinstance(event, dict)
        assert event["id"] == item.headers["x-qbwc-bridge-delivery"]
        assert event["company"] == "acme" and event["created_at"].endswith("Z")
    outcomes = [
        order
        for item in receiver.requests
        if item.headers["x-qbwc-bridge-event"] == "order_outcome"
        for order in item.json()["data"]  # type: ignore[index]
    ]
    assert sorted(o["order_number"] for o in outcomes) == ["E0", "E1", "E2"]
    assert {o["status"] for o in outcomes} == {"synced"}


def _signed_events(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    """The events of one type the receiver took, each checked as a receiver would: the
    signature over the raw body, the delivery id, the envelope."""
    events = []
    for item in receiver.taken():
        if item.headers["x-qbwc-bridge-event"] != kind:
            continue
        expected = hmac.new(SECRET.encode(), item.body, hashlib.sha256).hexdigest()
        assert item.headers["x-qbwc-bridge-signature"] == f"sha256={expected}"
        event = item.json()
        assert isinstance(event, dict)
        assert event["id"] == item.headers["x-qbwc-bridge-delivery"] and event["type"] == kind
        assert event["company"] == "acme" and event["created_at"].endswith("Z")
        events.append(event)
    return events


def _exporting_webhook(store: Store, settings: Settings, url: str, events: str = "") -> None:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    company_service.set_company_setting(
        store, "acme", "export_transactions", "invoice,sales_receipt"
    )
    channel_service.add_webhook(
        store, settings, name="hook", company="acme", url=url, secret=SECRET, events=events
    )


def _feed(store: Store, since: int = 0) -> list[dict[str, Any]]:
    return list(export_service.quickbooks_transactions(store, "acme", since, 10**6)["rows"])


def test_an_export_sends_its_rows_as_signed_quickbooks_transactions_events(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    _exporting_webhook(store, keyed, receiver.url)
    fake = quickbooks()
    for i in range(130):  # two pages of the export
        fake.add_sale(
            "Invoice" if i % 2 else "SalesReceipt",
            f"Counter {i % 5}",
            [SaleLine("WIDGET-RED", Decimal(1 + i % 3), Decimal("9.99"))],
            ref_number=f"BK-{i}",
        )
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber=f"W-{n}") for n in (1, 2)])
    engine = RunEngine(store, keyed)
    assert run_once(engine, fake, "acme-user", "acme-password").progress[-1] == 100

    report = push_service.push(store, keyed, channel_service.channel(store, "hook"))
    assert report.complete
    events = _signed_events(receiver, "quickbooks_transactions")
    assert all(0 < len(event["data"]) <= 100 for event in events) and len(events) >= 2
    sent = [row for event in events for row in event["data"]]
    feed = _feed(store)
    assert len(feed) == 132 and sent == feed  # every row once, oldest change first, as served
    assert sorted(r["queued_order_number"] for r in sent if r["created_by_bridge"]) == [
        "W-1",
        "W-2",
    ]

    # A transaction saved again in QuickBooks goes out once more, on its own.
    changed = next(t for t in fake.invoices() if t.ref_number == "BK-7").txn_id
    fake.modify_transaction(changed, lines=[SaleLine("WIDGET-RED", Decimal(4), Decimal("8.5"))])
    export_service.request_export(store, "acme")
    receiver.requests.clear()
    assert run_once(engine, fake, "acme-user", "acme-password").progress[-1] == 100
    assert push_service.push(store, keyed, channel_service.channel(store, "hook")).complete
    (event,) = _signed_events(receiver, "quickbooks_transactions")
    assert event["data"] == _feed(store, since=feed[-1]["cursor"])
    (row,) = event["data"]
    assert row["qb_txn_id"] == changed and row["cursor"] == feed[-1]["cursor"] + 1
    assert row["orderDetails"][0]["quantity"] == "4"


def test_a_transaction_changed_again_before_delivery_goes_out_once(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    _exporting_webhook(store, keyed, receiver.url, events="quickbooks_transactions")
    fake = quickbooks()
    line = SaleLine("WIDGET-RED", Decimal(1), Decimal("5"))
    txn_id = fake.add_sale("Invoice", "Walk-in", [line], ref_number="A-1").txn_id
    engine = RunEngine(store, keyed)
    assert run_once(engine, fake, "acme-user", "acme-password").progress[-1] == 100
    # Not delivered yet when it changes, with a full page of new sales after it.
    fake.modify_transaction(txn_id, lines=[SaleLine("WIDGET-RED", Decimal(2), Decimal("5"))])
    for i in range(100):
        fake.add_sale("Invoice", "Walk-in", [line], ref_number=f"B-{i}")
    export_service.request_export(store, "acme")
    assert run_once(engine, fake, "acme-user", "acme-password").progress[-1] == 100

    assert push_service.push(store, keyed, channel_service.channel(store, "hook")).complete
    events = _signed_events(receiver, "quickbooks_transactions")
    assert len(events) == len(receiver.requests)
    assert all(0 < len(event["data"]) <= 100 for event in events), "no empty delivery"
    sent = [row for event in events for row in event["data"]]
    assert sent == _feed(store) and len(sent) == 101
    (row,) = [row for row in sent if row["qb_txn_id"] == txn_id]
    assert row["cursor"] > 1 and row["orderDetails"][0]["quantity"] == "2"


def test_a_rolled_back_export_sends_nothing(
    store: Store, keyed: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _exporting_webhook(store, keyed, receiver.url, events="quickbooks_transactions")
    fake = quickbooks()
    for i in range(3):
        fake.add_sale(
            "Invoice",
            "Walk-in",
            [SaleLine("WIDGET-RED", Decimal(1), Decimal("5"))],
            ref_number=f"R{i}",
        )
    written = []
    write = export_store.write

    def write_then_fail(*args: Any, **kwargs: Any) -> int:
        written.append(write(*args, **kwargs))  # the rows and their event, in the transaction
        raise RuntimeError("the database connection dropped before the commit")

    monkeypatch.setattr(export_store, "write", write_then_fail)
    with pytest.raises(RuntimeError, match="connection dropped"):
        run_once(RunEngine(store, keyed), fake, "acme-user", "acme-password")
    assert written and written[0] > 0, "the export wrote rows before it failed"
    assert _feed(store) == []
    hook = channel_service.channel(store, "hook")
    with store.transaction() as tx:
        assert push_service.waiting_for(tx, hook) == 0
    report = push_service.push(store, keyed, hook)
    assert report.complete and report.delivered == 0 and receiver.requests == []


def test_a_paused_channel_keeps_its_place(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    channel_id = _store_channel(store, keyed, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {"A": 1, "B": 2})
    channel_service.set_setting(store, keyed, "shop", "enabled", "false")
    worker = Worker(store, keyed)
    assert worker.run_once(channel_id, TaskKind.PUSH) is None
    _levels(store, company_id, {"C": 3})
    channel_service.set_setting(store, keyed, "shop", "enabled", "true")
    ran = worker.run_once(channel_id, TaskKind.PUSH)
    assert ran is not None and ran.pushed is not None and ran.pushed.complete
    assert sorted(r["sku"] for i in receiver.requests for r in i.json()) == ["A", "B", "C"]  # type: ignore[union-attr]


@pytest.mark.commits("the workers run on their own connections")
def test_two_workers_never_deliver_one_channels_events_at_once(
    store: Store, keyed: Settings, receiver: Receiver
) -> None:
    channel_id = _store_channel(store, keyed, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {f"S{i:04d}": 1 for i in range(2000)})
    receiver.delay = 0.05

    def work() -> None:
        own = Store.from_url(keyed.database_url)
        worker = Worker(own, keyed)
        shop = channel_service.channel(own, "shop")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            worker.run_once(channel_id, TaskKind.PUSH)
            with own.transaction() as tx:
                if push_service.waiting_for(tx, shop) == 0:
                    break
        own.database.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert receiver.most_in_flight == 1
    skus = [r["sku"] for item in receiver.taken() for r in item.json()]  # type: ignore[union-attr]
    assert len(set(skus)) == 2000


def test_a_worker_killed_mid_push_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    env = {**os.environ, "QBWC_BRIDGE_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "qbwc_bridge", "init-db"], env=env, check=True)
    settings = Settings(database_url=url, secret_key_file=str(tmp_path / "bridge.key"))
    store = Store.from_url(url)
    channel_id = _store_channel(store, settings, receiver.url)
    with store.transaction() as tx:
        company_id = store.companies.by_name(tx, "acme").id
    _levels(store, company_id, {f"S{i:05d}": i for i in range(5000)})
    receiver.delay = 0.2
    worker = subprocess.Popen(
        [sys.executable, "-m", "qbwc_bridge", "push", "--channel", "shop"], env=env
    )
    while len(receiver.requests) < 3:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    receiver.delay = 0.0
    with store.transaction() as tx:  # the dead worker's lease ends
        tx.exec_driver_sql("UPDATE tasks SET lease_expires_at = NULL")
    again = subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", "push", "--channel", "shop"],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert "Push to shop" in again.stdout and "waiting" in again.stdout
    latest = {}
    for item in receiver.requests:
        for row in item.json():  # type: ignore[union-attr]
            latest[row["sku"]] = row["quantity_on_hand"]
    assert len(latest) == 5000 and latest["S04999"] == 4999
    seen = [row["sku"] for item in receiver.requests for row in item.json()]  # type: ignore[union-attr]
    assert len(seen) - 5000 <= 500  # duplicates only of the request in flight
    assert channel_id > 0
    store.database.dispose()


def test_retries_back_off_exponentially_with_jitter_up_to_an_hour() -> None:
    waits = [push_service.backoff(n) for n in range(1, 12)]
    assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=15)
    assert timedelta(seconds=40) <= waits[3] <= timedelta(seconds=120)
    assert all(wait <= timedelta(hours=1, minutes=30) for wait in waits)
    assert len({push_service.backoff(5) for _ in range(20)}) > 1  # jitter
