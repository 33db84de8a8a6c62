"""A real PostgreSQL restart mid-run: the service answers cleanly while it is down and
reconnects by itself once it is back.

The server is a private cluster (tests/pgcluster.py), so stopping it disturbs no other test.
The service runs under gunicorn as in production and is never restarted here: whatever
recovers, recovers inside its workers.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import PrivateCluster, private_cluster
from wcdriver import (
    ServiceProcess,
    assert_books,
    company_orders,
    new_quickbooks,
    run_until_synced,
    seed_company,
    service,
    statuses,
    web_connector,
)

from qbwc_bridge.store import Database, Store, upgrade

ORDERS = 3  # each with one payment
LEASE = {"QBWC_BRIDGE_RUN_TIMEOUT_SECONDS": "2"}
WORKERS = 2  # both workers' connection pools must recover, whichever serves a callback
# A callback that waits on a database that is not there must still answer well inside the
# Web Connector's own two minutes; refused connections should take milliseconds.
CALL_LIMIT = 5.0
# After callback 5 (serverVersion, clientVersion, authenticate, sendRequestXML,
# receiveResponseXML) the run holds its lease and the first order is in QuickBooks.
PAUSE = 5
BOOTING = re.compile(r"Booting worker with pid: (\d+)")


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster() as cluster:
        database = Database(cluster.url)
        upgrade(database)
        database.dispose()
        yield cluster


def _health(base: str) -> tuple[int, str, float]:
    """/healthz's status code, its JSON "status", and how long it took to answer."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=CALL_LIMIT * 2) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        code, body = error.code, error.read()
    return code, str(json.loads(body)["status"]), time.monotonic() - started


def _assert_health(base: str, code: int, status: str) -> None:
    """Several requests, so each gunicorn worker is likely to have answered at least one."""
    for _ in range(2 * WORKERS):
        answer = _health(base)
        assert answer[:2] == (code, status), answer
        assert answer[2] < CALL_LIMIT, answer


def _workers_booted(server: ServiceProcess) -> list[int]:
    """Every worker gunicorn has started so far; one that died is replaced and shows here."""
    return [int(pid) for pid in BOOTING.findall(server.log_text())]


def _wait_for_workers(server: ServiceProcess) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        booted = _workers_booted(server)
        if len(booted) >= WORKERS:
            return booted
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not boot {WORKERS} workers:\n{server.log_text()}")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_down_mid_run_answers_cleanly_and_reconnects_when_back(
    cluster: PrivateCluster, tmp_path: Path, mode: str
) -> None:
    """PostgreSQL stops between two callbacks ("fast": sessions ended; "immediate": as a
    crash). Every callback still answers at once with its failure value and getLastError
    says why; /healthz fails; the service lives on. Once PostgreSQL is back the same
    workers serve again, and the next runs put every order in QuickBooks exactly once."""
    store = Store.from_url(cluster.url)
    orders = company_orders("restart", ORDERS)
    seed_company(store, "restart", orders)
    store.database.dispose()
    fake = new_quickbooks()
    with service(cluster.url, tmp_path / "service.log", workers=WORKERS, env=LEASE) as server:
        workers = _wait_for_workers(server)
        _assert_health(server.base, 200, "ok")

        connector = web_connector(
            server.url, "restart", fake, pause_after=PAUSE, at_pause=lambda: cluster.stop(mode)
        )
        report = connector.run()
        assert connector.paused and not cluster.running()
        # sendRequestXML's failure value is "", so the Web Connector asks getLastError why.
        assert connector.calls[PAUSE:] == ["sendRequestXML", "getLastError", "closeConnection"]
        assert report.outcome == "no-request", (report.outcome, report.failure)
        assert "database is not reachable" in (report.last_error or ""), report.last_error
        assert report.close_message, report
        after_stop = report.timings[PAUSE:]
        assert all(t.seconds < CALL_LIMIT for t in after_stop), after_stop

        # Still down: a new scheduled run is refused cleanly (no ticket, no fault, no hang).
        refused = web_connector(server.url, "restart", fake).run()
        assert refused.outcome == "busy", (refused.outcome, refused.failure)  # try later
        assert not refused.ticket_issued, refused
        assert all(t.seconds < CALL_LIMIT for t in refused.timings), refused.timings
        _assert_health(server.base, 503, "database unreachable")
        assert server.process is not None and server.process.poll() is None

        cluster.start()
        # Back at once: the pools drop their dead connections instead of failing on them.
        _assert_health(server.base, 200, "ok")
        store = Store.from_url(cluster.url)
        run_until_synced(server.url, "restart", fake, store, deadline_seconds=15)
        assert set(statuses(store, "restart").values()) == {"synced"}
        store.database.dispose()

        # Neither gunicorn nor a worker was restarted: the same processes reconnected.
        assert server.process.poll() is None
        assert _workers_booted(server) == workers, server.log_text()
    assert_books(fake, orders, f"PostgreSQL stopped ({mode}) mid-run and started again")


@pytest.mark.postgres
def test_postgres_restarted_between_callbacks_does_not_fail_the_run(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    """A restart that falls between two callbacks leaves the service only dead pooled
    connections; pool_pre_ping replaces them, so the Web Connector never notices.

    One worker: it has served callbacks 1-5, so callback 6 surely meets its dead connection
    (a second, idle worker might take callback 6 with no connection to lose)."""
    store = Store.from_url(cluster.url)
    orders = company_orders("bounce", ORDERS)
    seed_company(store, "bounce", orders)
    store.database.dispose()
    fake = new_quickbooks()

    def restart() -> None:
        cluster.stop("fast")
        cluster.start()

    with service(cluster.url, tmp_path / "service.log", workers=1, env=LEASE) as server:
        connector = web_connector(server.url, "bounce", fake, pause_after=PAUSE, at_pause=restart)
        report = connector.run()
        assert connector.paused
        assert report.outcome == "done", (report.outcome, report.last_error, report.failure)
        assert server.process is not None and server.process.poll() is None
    assert_books(fake, orders, "PostgreSQL restarted between callbacks")
    store = Store.from_url(cluster.url)
    assert set(statuses(store, "bounce").values()) == {"synced"}
    store.database.dispose()
