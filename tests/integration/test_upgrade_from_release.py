"""A released version's database upgrades to head with every row intact, and keeps working.

test_migrations.py proves the migrations on an empty database; this proves them on the
data an installation of a release holds. Every fixtures/releases/<version>/ (written by
tests/release_fixture.py with that release's code) is loaded into a schema built at the
release's own Alembic revision, then upgraded the way an operator does it: store.upgrade,
which `qbwc-bridge init-db` runs. The fixture holds orders in every state with payments,
a finished run with its exchanges, a run left open mid-way, inventory rows and failed
logins. The rows are compared column by column: a later migration that rewrites a value
on purpose has to say so here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from enginedriver import run_once
from models_diff import schema_diff
from release_fixture import (
    DATABASE_FILE,
    RELEASE_FILE,
    RELEASES,
    REPO,
    Row,
    dump_table,
    load,
    reflect,
)

from qbwc_bridge.config import Settings
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.simulator.demo_company import demo_quickbooks
from qbwc_bridge.store import Database, Store, upgrade, utcnow
from qbwc_bridge.store.migrate import current_revision, head_revision

RELEASE_DIRS = sorted(path.parent for path in RELEASES.glob(f"*/{RELEASE_FILE}"))
WAITING = ("pending", "in_progress")
DONE = ("synced", "duplicate")
DEADLINES = (
    ("runs", "expires_at"),
    ("login_failures", "locked_until"),
    ("companies", "inventory_due_at"),
)


@dataclass(frozen=True)
class Release:
    """One fixtures/releases/<version>/ directory, read."""

    info: dict[str, Any]
    tables: dict[str, list[Row]]

    @classmethod
    def read(cls, path: Path) -> Release:
        return cls(
            json.loads((path / RELEASE_FILE).read_text(encoding="utf-8")),
            json.loads((path / DATABASE_FILE).read_text(encoding="utf-8")),
        )

    @property
    def revision(self) -> str:
        return str(self.info["alembic_revision"])

    @property
    def companies(self) -> list[dict[str, Any]]:
        return list(self.info["companies"])

    def later_clock(self) -> Callable[[], datetime]:
        """Now, but at least a day past the fixture's leases, lockouts and inventory dates.

        A real upgrade comes after the service stopped, so the run left open has timed
        out; the fixture being new must not make the run below find it still busy.
        """
        stamps = [
            datetime.fromisoformat(row[column])
            for table, column in DEADLINES
            for row in self.tables[table]
            if row[column]
        ]
        offset = max([timedelta(0)] + [stamp + timedelta(days=1) - utcnow() for stamp in stamps])
        return lambda: utcnow() + offset


def test_there_is_a_fixture_of_every_release_the_readme_names() -> None:
    """The README promises upgrades from these releases; each needs its fixture."""
    assert RELEASE_DIRS, f"no release fixture under {RELEASES}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in RELEASE_DIRS:
        assert Release.read(path).info["version"] == path.name
        assert f"`{path.name}`" in readme, f"README.md's Upgrading section omits {path.name}"


@pytest.fixture(params=RELEASE_DIRS, ids=[path.name for path in RELEASE_DIRS])
def release(request: pytest.FixtureRequest) -> Release:
    path: Path = request.param
    return Release.read(path)


def install_release(url: str, release: Release) -> None:
    """Replace whatever ``url`` holds by the release's schema, at its revision, and its rows."""
    database = Database(url)
    try:
        with database.engine.begin() as conn:
            reflect(conn).drop_all(conn)
        upgrade(database, release.revision)
        assert current_revision(database) == release.revision
        with database.engine.begin() as conn:
            load(conn, release.tables)
    finally:
        database.dispose()


@pytest.fixture
def released(database_url: str, release: Release) -> Iterator[Store]:
    """The release's database on SQLite or PostgreSQL, not yet upgraded."""
    store = Store.from_url(database_url)
    try:
        install_release(database_url, release)
        yield store
    finally:
        # The worker's PostgreSQL database serves the next tests too: leave it at head.
        upgrade(store.database)
        store.database.dispose()


def assert_rows_survived(database: Database, release: Release) -> None:
    """Every row of the fixture is there, by primary key, with every value it had."""
    with database.engine.connect() as conn:
        found = reflect(conn)
        for name, rows in release.tables.items():
            table = found.tables[name]
            key = [column.name for column in table.primary_key.columns]
            now = {tuple(row[k] for k in key): row for row in dump_table(conn, table)}
            assert len(now) == len(rows), f"{name}: {len(rows)} rows before, {len(now)} after"
            for row in rows:
                current = now[tuple(row[k] for k in key)]
                assert {column: current[column] for column in row} == row, f"{name} {key}"


def assert_same_status(now: dict[str, Any], released: dict[str, Any]) -> None:
    """The release's `status --json`, word for word, but for statuses added since (all 0)."""
    added = {key: n for key, n in now["counts"].items() if key not in released["counts"]}
    assert set(added.values()) <= {0}, added
    assert {**now, "counts": {k: n for k, n in now["counts"].items() if k not in added}} == released


def test_upgrade_reaches_head_with_the_models_schema_and_every_row(
    released: Store, release: Release
) -> None:
    before, after = upgrade(released.database)
    assert (before, after) == (release.revision, head_revision(released.database))
    assert schema_diff(released.database) == []
    assert_rows_survived(released.database, release)


def test_status_and_credentials_survive_the_upgrade(released: Store, release: Release) -> None:
    upgrade(released.database)
    settings = Settings(database_url=released.database.url)
    for company in release.companies:
        assert_same_status(order_service.status(released, company["name"]), company["status"])
        found = company_service.api_login(
            released, settings, company["username"], company["password"]
        )
        assert found.name == company["name"]
        if company.get("api_key"):
            by_key = company_service.api_login(
                released, settings, company["username"], company["api_key"]
            )
            assert by_key.name == company["name"]
        with pytest.raises(company_service.InvalidCredentials):
            company_service.api_login(released, settings, company["username"], "not-the-password")


def test_the_queue_carries_on_after_the_upgrade(released: Store, release: Release) -> None:
    """Waiting orders (and those leased to the run left open) sync; finished ones stay put."""
    upgrade(released.database)
    orders = {(row["company_id"], row["order_number"]): row for row in release.tables["orders"]}
    companies = {row["name"]: row["id"] for row in release.tables["companies"]}

    # Re-sending an order the release already put in QuickBooks changes nothing.
    for company in release.companies:
        done = [
            order
            for order in company["orders"]
            if orders[companies[company["name"]], order["OrderNumber"]]["status"] in DONE
        ]
        report = order_service.enqueue(released, company["name"], done)
        assert (report.queued, report.updated, report.conflicts) == (0, 0, [])
        assert report.unchanged == len(done)

    settings = Settings(database_url=released.database.url)
    engine = RunEngine(released, settings, clock=release.later_clock())
    fake = demo_quickbooks()
    for company in release.companies:
        answers = []
        for _ in range(10):  # a company may claim only a few orders per run (batch_max)
            result = run_once(engine, fake, company["username"], company["password"])
            answers.append(result.answer)
            if result.answer != "":
                break
        # The released password logs in, finds work, and the runs end with the queue empty.
        assert answers[0] == "" and answers[-1] == "none", (company["name"], answers)

    open_runs = [row["id"] for row in release.tables["runs"] if row["status"] == "open"]
    with released.database.engine.connect() as conn:
        found = reflect(conn)
        runs = {row["id"]: row for row in dump_table(conn, found.tables["runs"])}
        now = {
            (row["company_id"], row["order_number"]): row
            for row in dump_table(conn, found.tables["orders"])
        }
        payments = dump_table(conn, found.tables["payments"])
    assert all(runs[run_id]["status"] == "abandoned" for run_id in open_runs)
    for key, before in orders.items():
        after = now[key]
        if before["status"] in WAITING:
            assert after["status"] == "synced", after
        else:
            assert {k: after[k] for k in ("status", "qb_txn_id", "error")} == {
                k: before[k] for k in ("status", "qb_txn_id", "error")
            }
    # QuickBooks was sent the waiting orders and their invoices' payments, and nothing the
    # release had already added.
    kinds = (fake.invoices(), fake.sales_receipts(), fake.sales_orders(), fake.credit_memos())
    added = [txn.ref_number for transactions in kinds for txn in transactions]
    waiting = [now[key] for key, row in orders.items() if row["status"] in WAITING]
    assert sorted(str(ref) for ref in added) == sorted(row["qb_ref_number"] for row in waiting)
    invoiced = {row["id"] for row in waiting if row["txn_kind"] == "Invoice"}
    paid = [p for p in payments if p["order_id"] in invoiced]
    assert paid and all(p["status"] == "synced" for p in paid), paid
    assert len(fake.payments) == len(paid)


def test_init_db_upgrades_a_released_sqlite_database(tmp_path: Path, release: Release) -> None:
    """What the README tells operators to run, as they run it."""
    url = f"sqlite:///{tmp_path / 'released.db'}"
    install_release(url, release)
    env = {**os.environ, "QBWC_BRIDGE_DATABASE_URL": url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "qbwc_bridge", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = cli("init-db")
    assert result.returncode == 0, result.stderr
    database = Database(url)
    head = head_revision(database)
    if head == release.revision:
        assert f"Schema is up to date (revision {head})" in result.stdout
    else:
        assert f"Schema upgraded from {release.revision} to {head}" in result.stdout
    assert current_revision(database) == head
    assert schema_diff(database) == []
    assert_rows_survived(database, release)
    database.dispose()
    for company in release.companies:
        status = cli("status", "--company", company["name"], "--json")
        assert status.returncode == 0, status.stderr
        assert_same_status(json.loads(status.stdout), company["status"])
