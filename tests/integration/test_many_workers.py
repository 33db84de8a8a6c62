"""gunicorn with 4 workers on PostgreSQL: 50 companies' runs at once, every order exactly once.

State lives in the database, so a run's callbacks may land on any worker; this proves it
with real processes, real HTTP and the stand-in Web Connector, and reads from the workers'
log lines that callbacks of one run really were served by different processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from wcdriver import (
    assert_books,
    callback_pids,
    claims,
    company_orders,
    fresh_postgres,
    new_quickbooks,
    runs_by_company,
    seed_company,
    service,
    statuses,
    web_connector,
)

from qbwc_bridge.simulator.quickbooks import FakeQuickBooks
from qbwc_bridge.simulator.webconnector import RunReport
from qbwc_bridge.soap.guard import run_ref
from qbwc_bridge.store import Store

COMPANIES = 50
ORDERS_PER_COMPANY = 3
RACE_ORDERS = 6


@pytest.fixture
def pg_store(postgres_database: str) -> Iterator[Store]:
    store = fresh_postgres(postgres_database)
    yield store
    store.database.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_fifty_companies_on_four_workers(
    postgres_database: str, pg_store: Store, tmp_path: Path
) -> None:
    names = [f"co{i:02d}" for i in range(COMPANIES)]
    orders = {name: company_orders(name, ORDERS_PER_COMPANY) for name in names}
    for name in names:
        seed_company(pg_store, name, orders[name])
    race_orders = company_orders("race", RACE_ORDERS)
    seed_company(pg_store, "race", race_orders)
    fakes: dict[str, FakeQuickBooks] = {name: new_quickbooks() for name in [*names, "race"]}
    log = tmp_path / "gunicorn.log"

    with service(postgres_database, log, workers=4) as server:

        def one_run(name: str) -> RunReport:
            return web_connector(server.url, name, fakes[name]).run()

        # Two Web Connectors of one company authenticate together: one may do the work.
        start = threading.Barrier(2)

        def racer() -> RunReport:
            connector = web_connector(
                server.url,
                "race",
                fakes["race"],
                pause_after=2,  # serverVersion, clientVersion; then authenticate
                at_pause=lambda: start.wait(timeout=30),
            )
            return connector.run()

        with ThreadPoolExecutor(max_workers=25) as pool:
            racing = [pool.submit(racer) for _ in range(2)]
            runs = {name: pool.submit(one_run, name) for name in names}
            reports = {name: future.result(timeout=120) for name, future in runs.items()}
            race_reports = [future.result(timeout=120) for future in racing]

    for name in names:
        report = reports[name]
        assert report.outcome == "done", (name, report.outcome, report.failure, report.progress)
        assert_books(fakes[name], orders[name], name)
        assert set(statuses(pg_store, name).values()) == {"synced"}, name

    outcomes = sorted(r.outcome for r in race_reports)
    assert outcomes in (["busy", "done"], ["done", "nothing-to-do"]), [
        (r.outcome, r.auth_result, r.failure) for r in race_reports
    ]
    assert_books(fakes["race"], race_orders, "race")
    assert set(statuses(pg_store, "race").values()) == {"synced"}

    # No order was claimed by two runs; each company had one run (a 'busy' opens none).
    assert set(claims(pg_store).values()) == {1}
    assert {name: sorted(found) for name, found in runs_by_company(pg_store).items()} == {
        name: ["closed"] for name in [*names, "race"]
    }

    # Every run's callbacks are in the log; some run was served by more than one worker.
    pids = callback_pids(server.log_text())
    served = {name: pids.get(run_ref(reports[name].ticket), set()) for name in names}
    assert all(served.values()), "a run's callbacks are missing from the log"
    workers = set().union(*served.values())
    assert len(workers) > 1, workers
    spread = [name for name, found in served.items() if len(found) > 1]
    assert spread, f"every run stayed on one worker: {served}"
