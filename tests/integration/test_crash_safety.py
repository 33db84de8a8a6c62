"""Crashes at every step of a run lose no order and duplicate none in QuickBooks.

The service runs as gunicorn in its own process group. Web Connector runs stop after their
k-th callback for every k of a small batch; the service is SIGKILLed there and restarted
on the same database, and the next runs (once the dead run's lease has expired) finish.
Also: QuickBooks' response lost at every exchange, and PostgreSQL connections cut mid-run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Connection, Engine
from wcdriver import (
    Gate,
    assert_books,
    company_orders,
    fresh_postgres,
    new_quickbooks,
    run_until_synced,
    seed_company,
    service,
    statuses,
    web_connector,
)

from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.simulator.webconnector import RunReport
from qbwc_bridge.store import Store

ORDERS = 3  # each with one payment
LEASE = {"QBWC_BRIDGE_RUN_TIMEOUT_SECONDS": "2"}


@pytest.fixture
def crash_store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    yield store
    store.database.dispose()


def _complete_run(url: str, store: Store, name: str) -> tuple[FakeQuickBooks, list[str], int]:
    """A run with no crash: its books, its callbacks in order, and its QuickBooks exchanges."""
    orders = company_orders(name, ORDERS)
    seed_company(store, name, orders)
    fake = new_quickbooks()
    connector = web_connector(url, name, fake)
    report = connector.run()
    assert report.outcome == "done", (report.outcome, report.last_error, report.failure)
    assert_books(fake, orders, name)
    return fake, connector.calls, report.exchanges


def _finish_all(url: str, store: Store, fakes: dict[str, FakeQuickBooks]) -> None:
    """The Web Connectors' next scheduled runs, all at once, until every queue is synced."""
    with ThreadPoolExecutor(max_workers=len(fakes)) as pool:
        futures = [
            pool.submit(run_until_synced, url, name, fake, store) for name, fake in fakes.items()
        ]
        for future in futures:
            future.result(timeout=60)


def _in_threads(jobs: dict[str, Callable[[], RunReport]]) -> dict[str, RunReport]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result(timeout=90) for name, future in futures.items()}


@pytest.mark.slow
def test_sigkill_after_every_callback_loses_and_duplicates_nothing(
    database_url: str, crash_store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with service(database_url, log, workers=2, env=LEASE) as server:
        _, calls, _ = _complete_run(server.url, crash_store, "reference")
        callbacks = len(calls)
        assert callbacks >= 10, calls  # 3 handshake calls, >= 3 exchanges, closeConnection
        points = range(1, callbacks + 1)
        orders = {k: company_orders(f"kill{k}", ORDERS) for k in points}
        fakes = {k: new_quickbooks() for k in points}
        for k in points:
            seed_company(crash_store, f"kill{k}", orders[k])

        # Run k stops after its k-th callback; when every run stands at its point, the
        # service dies. Each Web Connector then goes on as QBWC would: a request it already
        # holds reaches QuickBooks, and its next call to the service fails.
        gate = Gate(len(points))
        connectors = {
            k: web_connector(server.url, f"kill{k}", fakes[k], pause_after=k) for k in points
        }
        with ThreadPoolExecutor(max_workers=len(points)) as pool:
            futures = {k: pool.submit(gate.run, connectors[k]) for k in points}
            gate.wait_all_paused()
            server.kill()
            gate.release()
            crashed = {k: future.result(timeout=60) for k, future in futures.items()}
        for k in points:
            assert connectors[k].paused, (k, crashed[k].outcome, crashed[k].last_error)
            assert connectors[k].calls == calls[:k], k  # nothing after the kill got through
            expected = "done" if k == callbacks else "transport-error"
            assert crashed[k].outcome == expected, (k, crashed[k])
        # Where the kill fell between sendRequestXML and its answer, QuickBooks holds what
        # the service never heard of: the case a blind retry would duplicate.
        unheard = [
            k
            for k in points
            if fakes[k].invoices()
            and not any(s == "synced" for s in statuses(crash_store, f"kill{k}").values())
        ]
        assert unheard, "no crash point left QuickBooks ahead of the service"

        server.start()  # same port, same database
        _finish_all(server.url, crash_store, {f"kill{k}": fakes[k] for k in points})

    for k in points:
        assert_books(fakes[k], orders[k], f"killed after callback {k} ({calls[k - 1]})")
        assert set(statuses(crash_store, f"kill{k}").values()) == {"synced"}


@pytest.mark.slow
def test_response_lost_at_every_exchange(
    database_url: str, crash_store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with service(database_url, log, env=LEASE) as server:
        _, _, exchanges = _complete_run(server.url, crash_store, "reference")
        points = range(1, exchanges + 1)
        orders = {k: company_orders(f"lost{k}", ORDERS) for k in points}
        fakes = {k: new_quickbooks() for k in points}
        for k in points:
            seed_company(crash_store, f"lost{k}", orders[k])
            fakes[k].lose_response_after(k)
        reports = _in_threads(
            {f"lost{k}": web_connector(server.url, f"lost{k}", fakes[k]).run for k in points}
        )
        for name, report in reports.items():
            # QuickBooks applied the message; the Web Connector never told the service.
            assert report.outcome == "lost" and report.close_message is None, (name, report)
        _finish_all(server.url, crash_store, {f"lost{k}": fakes[k] for k in points})

    for k in points:
        assert_books(fakes[k], orders[k], f"response {k} lost")


# --- PostgreSQL going away mid-run ------------------------------------------------------------

APP_NAME = "qbwc-crash-test"


def _tagged(url: str) -> str:
    """The service's connections carry an application_name, so only they are cut."""
    return (
        make_url(url)
        .update_query_dict({"application_name": APP_NAME})
        .render_as_string(hide_password=False)
    )


def _terminate_service_backends(admin: Engine) -> int:
    with admin.connect() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = :app"
                ),
                {"app": APP_NAME},
            ).all()
        )


class RunRowLock:
    """Hold the company's run row locked, so the service's next callback waits inside its
    transaction; then strike while it waits (by default: cut the service's connections),
    and let go."""

    def __init__(
        self, admin: Engine, company: str, strike: Callable[[], int] | None = None
    ) -> None:
        self.admin = admin
        self.company = company
        self.strike = strike or (lambda: _terminate_service_backends(admin))
        self.terminated = 0
        self.waited = False
        self._thread: threading.Thread | None = None

    def engage(self) -> None:
        conn = self.admin.connect()
        conn.execute(
            text(
                "SELECT r.id FROM runs r JOIN companies c ON c.id = r.company_id "
                "WHERE c.name = :name AND r.status = 'open' FOR UPDATE OF r"
            ),
            {"name": self.company},
        ).all()
        self._thread = threading.Thread(target=self._cut_when_waiting, args=(conn,))
        self._thread.start()

    def _cut_when_waiting(self, conn: Connection) -> None:
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline and not self.waited:
                with self.admin.connect() as probe:
                    self.waited = bool(
                        probe.execute(
                            text(
                                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                                " AND application_name = :app AND wait_event_type = 'Lock'"
                            ),
                            {"app": APP_NAME},
                        ).first()
                    )
                if not self.waited:
                    time.sleep(0.02)
            self.terminated = self.strike()
        finally:
            conn.rollback()
            conn.close()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=30)


@pytest.fixture
def pg_admin(postgres_database: str) -> Iterator[Engine]:
    engine = create_engine(postgres_database, pool_size=2)
    yield engine
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("blocked", ["sendRequestXML", "receiveResponseXML"])
def test_connections_cut_during_a_callback_answer_cleanly(
    postgres_database: str, pg_admin: Engine, tmp_path: Path, blocked: str
) -> None:
    """The callback in flight answers its failure value and getLastError explains; the next
    run (after the lease) finishes and nothing is doubled."""
    store = fresh_postgres(postgres_database)
    orders = company_orders("cut", ORDERS)
    seed_company(store, "cut", orders)
    fake = new_quickbooks()
    lock = RunRowLock(pg_admin, "cut")
    with service(_tagged(postgres_database), tmp_path / "service.log", env=LEASE) as server:
        # The 2nd sendRequestXML is callback 6; the 2nd receiveResponseXML is callback 7
        # (QuickBooks has applied that message by then).
        pause = 5 if blocked == "sendRequestXML" else 6
        connector = web_connector(server.url, "cut", fake, pause_after=pause, at_pause=lock.engage)
        report = connector.run()
        lock.join()
        assert connector.calls[pause] == blocked, connector.calls
        assert lock.waited and lock.terminated >= 1, (lock.waited, lock.terminated)
        # A failure value ("" or -1), then getLastError says why; the run is closed cleanly.
        expected = "no-request" if blocked == "sendRequestXML" else "error"
        assert report.outcome == expected, (report.outcome, report.failure)
        assert "database is not reachable" in (report.last_error or ""), report.last_error
        assert "3 left for the next run" in (report.close_message or ""), report.close_message
        run_until_synced(server.url, "cut", fake, store, deadline_seconds=15)
    assert_books(fake, orders, f"connections cut during {blocked}")
    store.database.dispose()


@pytest.mark.postgres
def test_connections_cut_between_callbacks_do_not_fail_the_run(
    postgres_database: str, pg_admin: Engine, tmp_path: Path
) -> None:
    """pool_pre_ping: a connection PostgreSQL dropped is replaced before the next callback."""
    store = fresh_postgres(postgres_database)
    orders = company_orders("gap", ORDERS)
    seed_company(store, "gap", orders)
    fake = new_quickbooks()
    cut: list[int] = []
    with service(_tagged(postgres_database), tmp_path / "service.log", env=LEASE) as server:
        connector = web_connector(
            server.url,
            "gap",
            fake,
            pause_after=6,
            at_pause=lambda: cut.append(_terminate_service_backends(pg_admin)),
        )
        report = connector.run()
    assert cut and cut[0] >= 1, cut
    assert report.outcome == "done", report
    assert_books(fake, orders, "connections cut between callbacks")
    assert set(statuses(store, "gap").values()) == {"synced"}
    store.database.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_the_server_dropped_is_replaced_and_a_live_one_kept(
    postgres_database: str, pg_admin: Engine
) -> None:
    """The pool looks at the socket on checkout instead of pinging: a connection whose
    backend PostgreSQL terminated is replaced before the transaction starts, and a live one
    is reused (no reconnect per callback)."""
    store = Store.from_url(postgres_database)
    try:

        def backend_pid() -> int:
            with store.transaction() as tx:
                return int(tx.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

        first = backend_pid()
        assert backend_pid() == first  # idle and alive: the same connection again
        with pg_admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the backend is gone once it left pg_stat_activity
            with pg_admin.connect() as conn:
                gone = not conn.execute(
                    text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": first}
                ).first()
            if gone:
                break
            time.sleep(0.02)
        replacement = backend_pid()  # would raise OperationalError on the dead connection
        assert replacement != first
        assert backend_pid() == replacement
    finally:
        store.database.dispose()


@contextmanager
def _database_closed_to_connections(url: str) -> Iterator[Callable[[], None]]:
    """A switch that makes the test database refuse connections and cuts the service's
    (PostgreSQL "down" for this database only); connections are allowed again on exit."""
    parsed = make_url(url)
    name = parsed.database
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def close_database() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND application_name = :app"
                ),
                {"db": name, "app": APP_NAME},
            )

    try:
        yield close_database
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()


@pytest.mark.postgres
def test_database_down_mid_run_answers_cleanly_and_the_next_run_finishes(
    postgres_database: str, tmp_path: Path
) -> None:
    """While the database refuses connections every callback still answers (no hang, no
    fault): a failure value, getLastError's own fallback text, closeConnection's answer."""
    store = fresh_postgres(postgres_database)
    orders = company_orders("down", ORDERS)
    seed_company(store, "down", orders)
    store.database.dispose()
    fake = new_quickbooks()
    with service(_tagged(postgres_database), tmp_path / "service.log", env=LEASE) as server:
        with _database_closed_to_connections(postgres_database) as close_database:
            connector = web_connector(
                server.url, "down", fake, pause_after=5, at_pause=close_database
            )
            started = time.monotonic()
            report = connector.run()
            seconds = time.monotonic() - started
        assert report.outcome == "no-request", (report.outcome, report.failure)
        assert connector.calls[5:] == ["sendRequestXML", "getLastError", "closeConnection"]
        # getLastError cannot read the run's error from the database; it says why.
        assert "database is not reachable" in (report.last_error or ""), report.last_error
        assert report.close_message, report
        assert seconds < 10, seconds
        run_until_synced(server.url, "down", fake, store, deadline_seconds=15)
    assert_books(fake, orders, "database down mid-run")
    store.database.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("blocked", ["sendRequestXML", "receiveResponseXML"])
def test_sigkill_inside_a_callback_transaction(
    postgres_database: str, pg_admin: Engine, tmp_path: Path, blocked: str
) -> None:
    """The service dies while a callback's transaction is open: PostgreSQL rolls it back,
    and the runs after the restart finish without a duplicate."""
    store = fresh_postgres(postgres_database)
    orders = company_orders("inside", ORDERS)
    seed_company(store, "inside", orders)
    fake = new_quickbooks()
    with service(_tagged(postgres_database), tmp_path / "service.log", env=LEASE) as server:

        def kill() -> int:
            server.kill()
            return 1

        lock = RunRowLock(pg_admin, "inside", strike=kill)
        pause = 5 if blocked == "sendRequestXML" else 6
        connector = web_connector(
            server.url, "inside", fake, pause_after=pause, at_pause=lock.engage
        )
        report = connector.run()
        lock.join()
        assert lock.waited, "the callback never waited inside its transaction"
        assert report.outcome == "transport-error", (report.outcome, report.failure)
        # Nothing after the pause got an answer: the blocked callback died with the service.
        assert len(connector.calls) == pause, connector.calls
        server.start()
        run_until_synced(server.url, "inside", fake, store, deadline_seconds=15)
    assert_books(fake, orders, f"SIGKILL inside {blocked}")
    store.database.dispose()
