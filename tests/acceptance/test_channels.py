"""Pulling a custom store's orders over real HTTP: the window, filters, pages, faults, the
worker and the commands, against the stand-in store on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_order_json

from qbwc_bridge import sealing
from qbwc_bridge.channels.custom_store import CustomStoreClient
from qbwc_bridge.config import Settings
from qbwc_bridge.domain.channels import Channel
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import channels as channel_service
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.store import StandInStore
from qbwc_bridge.store import Store
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.worker.runner import Worker

WINDOW_START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
IN_WINDOW = WINDOW_START + timedelta(hours=2)


def fast_client(channel: Channel, password: str) -> CustomStoreClient:
    """The store client with test-sized timeouts and waits."""
    return CustomStoreClient(
        channel.url, channel.username, password, read_timeout=0.5, retries=1, retry_wait=0.01
    )


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return Settings(database_url=settings.database_url, secret_key=sealing.new_key())


@pytest.fixture
def shop() -> Iterator[StandInStore]:
    stand_in = StandInStore(page_size=3, timeout_seconds=2.0)
    for i in range(7):
        stand_in.add(
            make_order_json(OrderNumber=f"W{i}", CustomerName=f"Buyer {i}"),
            modified_at=IN_WINDOW + timedelta(minutes=i),
        )
    with stand_in.serve():
        yield stand_in


def _pair(store: Store, settings: Settings, shop: StandInStore, **options: str) -> Channel:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    return channel_service.add_custom_store(
        store,
        settings,
        name="shop",
        company="acme",
        url=shop.base_url,
        username="store-user",
        password="store-password",
        since=WINDOW_START,
        client=fast_client,
        **options,  # type: ignore[arg-type]
    )


def _pull(store: Store, settings: Settings) -> tuple[channel_service.PullReport, Channel]:
    found = channel_service.channel(store, "shop")
    report = channel_service.pull(store, settings, found, client=fast_client)
    return report, channel_service.channel(store, "shop")


def test_a_pull_reads_the_window_page_by_page_and_moves_it_on(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    before = _pair(store, keyed, shop)
    started = datetime.now(UTC)
    report, after = _pull(store, keyed)
    assert (report.outcome, report.received, report.queued) == ("ok", 7, 7)
    orders_asked = [r for r in shop.requests if "/orders" in r]
    assert len(orders_asked) == 3  # 7 orders, pages of 3
    assert "date_modified_min=2026-12-01T00:00:00Z" in orders_asked[0]
    assert f"date_modified_max={before.window.end:%Y-%m-%dT%H:%M:%S}Z" in orders_asked[0]
    assert order_service.status(store, "acme")["counts"]["pending"] == 7
    # Complete: [pull start - 1 hour, pull start + 24 hours].
    assert abs(after.window.start - (started - timedelta(hours=1))) < timedelta(seconds=5)
    assert abs(after.window.end - (started + timedelta(hours=24))) < timedelta(seconds=5)

    again, _ = _pull(store, keyed)  # the next window re-reads nothing new: harmless
    assert again.outcome == "ok" and again.queued == 0


def test_statuses_and_store_names_filter_what_is_read(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    shop.add(make_order_json(OrderNumber="X1"), status="cancelled", modified_at=IN_WINDOW)
    shop.add(make_order_json(OrderNumber="X2"), store_name="Outlet", modified_at=IN_WINDOW)
    _pair(store, keyed, shop, order_statuses="completed", store_names="Main")
    report, _ = _pull(store, keyed)
    numbers = {o["order_number"] for o in order_service.status(store, "acme")["orders"]}
    assert report.received == 7 and "X1" not in numbers and "X2" not in numbers
    assert "orderStatus=completed" in shop.requests[-1] and "storeName=Main" in shop.requests[-1]


@pytest.mark.parametrize(
    "fault", ["500", "timeout", "invalid-json", "html-login", "not-an-array", "foreign-next"]
)
def test_a_failed_page_keeps_the_window_and_what_earlier_pages_queued(
    store: Store, keyed: Settings, shop: StandInStore, fault: str
) -> None:
    before = _pair(store, keyed, shop)
    attempts = 2 if fault in ("500", "timeout") else 1  # the client retries those once
    shop.fail_next(fault, on_page=2, times=attempts)  # type: ignore[arg-type]
    report, after = _pull(store, keyed)
    assert report.outcome == "error" and report.error
    assert shop.base_url in report.error and "store-password" not in report.error
    assert after.window == before.window  # nothing skipped: the next pull reads it again
    assert after.last_pull is not None and after.last_pull.outcome == "error"
    counts = order_service.status(store, "acme")["counts"]
    assert counts["pending"] == (report.queued if fault != "foreign-next" else 6)

    retried, _ = _pull(store, keyed)  # the fault is gone: the pull completes
    assert retried.outcome == "ok"
    assert order_service.status(store, "acme")["counts"]["pending"] == 7


def test_invalid_orders_are_listed_not_dropped_and_the_pull_completes(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    shop.add(make_order_json(OrderNumber="BAD", OrderTotal="999.99"), modified_at=IN_WINDOW)
    _pair(store, keyed, shop)
    report, after = _pull(store, keyed)
    assert report.outcome == "ok" and report.queued == 7
    (rejected,) = report.rejected
    assert rejected.order_number == "BAD" and "OrderTotal" in rejected.problems[0]
    shown = channel_service.channel_json(after)["last_pull"]
    assert shown["rejected"][0]["order_number"] == "BAD"


def test_an_order_changed_after_it_reached_quickbooks_is_a_conflict(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    _pair(store, keyed, shop)
    _pull(store, keyed)
    with store.transaction() as tx:
        tx.exec_driver_sql("UPDATE orders SET status = 'synced' WHERE order_number = 'W1'")
    shop.add(
        make_order_json(OrderNumber="W1", CustomerName="Someone Else"),
        modified_at=datetime.now(UTC),
    )
    report, _ = _pull(store, keyed)
    assert [c.order_number for c in report.conflicts] == ["W1"]
    assert report.outcome == "ok"


def test_pairing_needs_the_store_to_say_ok(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    company_service.add_company(store, "acme", "acme-user", "acme-password")
    with pytest.raises(channel_service.StoreRefused, match="User name and password"):
        channel_service.add_custom_store(
            store,
            keyed,
            name="shop",
            company="acme",
            url=shop.base_url,
            username="store-user",
            password="wrong",
            client=fast_client,
        )
    assert channel_service.channels(store) == []


def test_the_web_connectors_login_makes_the_pull_due_and_a_worker_takes_it(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    found = _pair(store, keyed, shop)
    worker = Worker(store, keyed, client=fast_client)
    assert worker.run_once(found.id) is not None  # the first pull, due at once
    assert worker.run_once(found.id) is None  # next due in an hour
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="Q1")])
    RunEngine(store, keyed).authenticate("acme-user", "acme-password")
    ran = worker.run_once(found.id)
    assert ran is not None and ran.channel == "shop" and ran.lease_kept


# --- the commands, as an operator runs them ---------------------------------------------------


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qbwc_bridge", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_the_channel_commands_keep_the_password_sealed_in_the_database_file(
    tmp_path: Path, shop: StandInStore
) -> None:
    database = tmp_path / "bridge.db"
    env = {"QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{database}"}
    assert _cli(env, "init-db").returncode == 0
    key_file = tmp_path / "bridge.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    _cli(
        env, "company", "add", "acme", "--username", "acme", "--password-stdin", stdin="pw-12345\n"
    )
    refused = _cli(
        env, "channel", "add", "shop", "--company", "acme", "--url", shop.base_url,
        "--username", "store-user", "--password-stdin", stdin="wrong\n",
    )  # fmt: skip
    assert refused.returncode != 0 and "User name and password is incorrect" in refused.stderr
    added = _cli(
        env, "channel", "add", "shop", "--company", "acme", "--url", shop.base_url,
        "--username", "store-user", "--password-stdin", "--since", "2026-12-01T00:00:00Z",
        stdin="store-password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    pulled = _cli(env, "pull", "--channel", "shop")
    assert pulled.returncode == 0, pulled.stderr
    assert "Pull of shop: ok" in pulled.stdout.splitlines()[0], pulled.stdout
    assert re.search(r"\bread\W+7\b", pulled.stdout), pulled.stdout
    shown = json.loads(_cli(env, "channel", "show", "shop", "--json").stdout)
    assert shown["last_pull"]["received"] == 7 and shown["window"]["start"].endswith("Z")
    assert b"store-password" not in database.read_bytes()
    for output in (added, pulled):
        assert "store-password" not in output.stdout + output.stderr

    shop.fail_next("500", times=5)
    failed = _cli(env, "pull", "--channel", "shop")
    assert failed.returncode == 1 and "error" in failed.stdout


def test_the_worker_stops_on_sigterm(tmp_path: Path) -> None:
    env = {"QBWC_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}"}
    assert _cli(env, "init-db").returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "qbwc_bridge", "worker"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        assert "worker running" in worker.stderr.readline()
        time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        worker.kill()


def test_a_channel_task_is_leased_once_across_processes(
    store: Store, keyed: Settings, shop: StandInStore
) -> None:
    """Two workers: while one holds the pull, the other finds nothing to do."""
    found = _pair(store, keyed, shop)
    with store.transaction() as tx:
        held = channel_store.claim_task(tx, "other-host", datetime.now(UTC), timedelta(minutes=1))
    assert held is not None
    assert Worker(store, keyed, client=fast_client).run_once(channel_id=found.id) is None
