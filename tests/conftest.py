"""Shared fixtures: a real database per test (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qbwc_bridge.config import Settings
from qbwc_bridge.store import Database, Store, upgrade
from qbwc_bridge.store.schema import metadata

POSTGRES_URL = os.environ.get("QBWC_BRIDGE_TEST_POSTGRES_URL", "")
REQUIRE_ALL = os.environ.get("QBWC_BRIDGE_TEST_NO_SKIPS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_databases: run on SQLite and on PostgreSQL")
    config.addinivalue_line(
        "markers",
        "commits(reason): on PostgreSQL, commit for real (from an emptied database) "
        "instead of running inside a transaction that is rolled back",
    )


# --- no network but loopback -------------------------------------------------------------

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else ""
    if (
        isinstance(host, str)
        and host
        and not (host.startswith("127.") or host in ("localhost", "::1"))
    ):
        raise RuntimeError(f"tests may only connect to loopback, not {host}")
    return _real_connect(self, address)  # type: ignore[arg-type]


socket.socket.connect = _loopback_only  # type: ignore[method-assign,assignment]


# --- databases -----------------------------------------------------------------------------
#
# SQLite: every test gets its own copy of a migrated file. PostgreSQL: each pytest-xdist
# worker has one database, migrated once per session, and a test leaves it as it found it:
#
# * A test that uses the `store` fixture runs inside one transaction that is rolled back at
#   its end (see `rolled_back`): the store's transactions are savepoints on that connection.
# * A test that reaches the database any other way (the URL handed to gunicorn, the CLI,
#   Alembic, a store of its own), or that is marked `commits`, commits for real. Through
#   `database_url` it starts from a database emptied with TRUNCATE; whatever it leaves, the
#   next rolled-back test empties first (_note_committed_rows).

# Tests that use the `store` fixture yet must commit for real on PostgreSQL, and why.
# (Matched by path under tests/ and function name; `@pytest.mark.commits(reason)` on a test
# does the same.)
_PLANNER = (
    "PostgreSQL's plans and statistics follow the tables' size on disk, which rows rolled "
    "back by earlier tests still take up; TRUNCATE gives the test the empty tables it expects"
)
COMMITTING_TESTS: dict[str, str] = {
    "integration/test_order_store.py::test_claims_never_overlap_under_concurrency": (
        "claims race in threads, each on a connection of its own (FOR UPDATE SKIP LOCKED); "
        "on the one bound connection they would take turns and never race"
    ),
    "integration/test_order_store.py::test_a_bulk_load_refreshes_the_planner_statistics": (
        _PLANNER
    ),
    "integration/test_order_store.py::test_many_small_enqueues_refresh_the_statistics_too": (
        _PLANNER
    ),
    "integration/test_direct_statements.py::test_a_replaced_connection_gets_a_cursor_of_its_own": (
        "it checks out the pool's connection itself and invalidates it"
    ),
    "integration/test_direct_statements.py::"
    "test_the_answer_finds_the_waiting_exchange_without_reading_the_others": _PLANNER,
    "integration/test_direct_statements.py::test_orders_named_by_id_are_found_by_their_keys": (
        _PLANNER
    ),
    "integration/test_direct_statements.py::test_a_run_reads_only_the_orders_it_still_works_on": (
        _PLANNER
    ),
    "integration/test_migrations.py::test_0003_settles_payments_that_earlier_releases_left_pending": (
        "Alembic downgrades and upgrades the schema on a connection of its own"
    ),
    "integration/test_order_tally.py::test_concurrent_intakes_and_lists_never_lose_a_count": (
        "intakes and lists race in threads, each on a connection of its own; on the one "
        "bound connection they would take turns and never race"
    ),
    "integration/test_migrations.py::test_0013_fills_sku_keys_from_the_orders_already_queued": (
        "Alembic downgrades and upgrades the schema on a connection of its own"
    ),
    "acceptance/test_hostile_input.py::test_enqueue_files_with_hostile_json_change_nothing": (
        "the CLI, run in the test's process, opens a store of its own from the URL"
    ),
    "acceptance/test_product_updates.py::test_a_polling_consumer_sees_every_change_exactly_once": (
        "the CLI runs in a subprocess, and a consumer polls while a run commits"
    ),
    "acceptance/test_product_updates.py::test_the_command_line_prints_the_same_rows": (
        "the CLI in a subprocess reads what the service wrote"
    ),
}

TESTS = Path(__file__).resolve().parent
# How long a thread waits for the connection a rolled-back test's store is bound to.
BOUND_CONNECTION_WAIT_SECONDS = 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of COMMITTING_TESTS `commits`; an entry naming no test is an error."""
    modules: dict[str, object] = {}
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        path = item.path.relative_to(TESTS).as_posix()
        modules[path] = getattr(item, "module", None)
        reason = COMMITTING_TESTS.get(f"{path}::{getattr(item, 'originalname', item.name)}")
        if reason is not None:
            item.add_marker(pytest.mark.commits(reason))
    for key in COMMITTING_TESTS:
        path, _, name = key.partition("::")
        if modules.get(path) is not None and not hasattr(modules[path], name):
            raise pytest.UsageError(f"COMMITTING_TESTS in {__file__} names no test: {key}")


class _WorkerDatabase:
    """Whether this process's PostgreSQL database may hold rows a committing test left."""

    may_hold_rows = False


_ROLLED_BACK = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _note_committed_rows(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that reached PostgreSQL other than rolled back, the next one empties it."""
    yield
    if "postgres_database" in request.fixturenames and not request.node.stash.get(
        _ROLLED_BACK, False
    ):
        _WorkerDatabase.may_hold_rows = True


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (migrating each time would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This worker's PostgreSQL database, migrated, with no rows: its URL.

    A test that takes it directly commits for real, and empties it itself where it needs it
    empty (tests/wcdriver.py's fresh_postgres).
    """
    if not POSTGRES_URL:
        if REQUIRE_ALL:
            pytest.fail("QBWC_BRIDGE_TEST_POSTGRES_URL is not set, but every test must run")
        pytest.skip(
            "PostgreSQL tests need QBWC_BRIDGE_TEST_POSTGRES_URL (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/qbwc_bridge_test)"
        )
    url = _worker_database(POSTGRES_URL)
    database = Database(url)
    with database.engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(database)
    database.dispose()
    yield url


def _worker_database(url: str) -> str:
    """Each pytest-xdist worker gets its own database (created on first use)."""
    from sqlalchemy import create_engine, make_url, text

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return url
    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def _empty(conn: Connection) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def _truncate(url: str) -> None:
    database = Database(url)
    with database.engine.begin() as conn:
        _empty(conn)
    database.dispose()


def _rolls_back(request: pytest.FixtureRequest) -> bool:
    """Does this test run inside a rolled-back transaction on PostgreSQL?"""
    item = request.node
    return "store" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("commits")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated database without rows: a SQLite file, or the worker's PostgreSQL database.

    On PostgreSQL, for a test that commits (see the top of this section) it is emptied here;
    a test whose store is rolled back finds it empty (the `store` fixture sees to that).
    """
    if request.param == "sqlite":
        path = tmp_path / "bridge.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database")
    if not _rolls_back(request):
        _truncate(url)
    yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "bridge.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def store(request: pytest.FixtureRequest, database_url: str) -> Iterator[Store]:
    """A Store on ``database_url``; on PostgreSQL, rolled back at the end unless `commits`."""
    store = Store.from_url(database_url)
    try:
        if store.database.is_postgres and _rolls_back(request):
            request.node.stash[_ROLLED_BACK] = True
            with rolled_back(store.database):
                yield store
        else:
            yield store
    finally:
        store.database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


# What a rolled-back test's connection runs first, in one round trip:
# * Every sequence back to 1, as TRUNCATE ... RESTART IDENTITY does: tests count on the ids
#   of the rows they create. setval is not undone by a rollback, so it runs at every test.
# * A limit on how long the connection may sit idle in its transaction. Another connection
#   that waits for a lock the test's transaction holds (DDL, a subprocess writing the same
#   rows) would otherwise hang the test for good; PostgreSQL ends the session instead, and
#   the test fails. Such a test must be marked `commits`.
_BOUND_SESSION_START = (
    "SELECT set_config('idle_in_transaction_session_timeout', '60s', false), "
    + ", ".join(
        f"setval(pg_get_serial_sequence('{table.name}', '{table.autoincrement_column.name}'), 1, false)"
        for table in metadata.sorted_tables
        if table.autoincrement_column is not None
    )
)


class _BoundConnection:
    """What ``engine.begin()`` becomes for a rolled-back test: a savepoint on one connection.

    Database.transaction() runs unchanged around it (its error handling included): a
    transaction that ends well releases its savepoint, one that raises rolls it back, just
    as the pool's connections commit or roll back. The dev server answers requests in
    threads, so the connection is lent to one thread at a time. A thread that opens a
    transaction inside its own open transaction fails loudly: in production that is a
    second pooled connection, with its own commit, which one connection cannot imitate.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.holder: int | None = None

    @contextlib.contextmanager
    def lent(self) -> Iterator[Connection]:
        if self.holder == threading.get_ident():
            raise AssertionError(
                "store.transaction() inside store.transaction() on one thread: in production "
                "the inner one is a second connection; mark the test `commits`"
            )
        if not self.lock.acquire(timeout=BOUND_CONNECTION_WAIT_SECONDS):
            raise AssertionError(
                f"waited {BOUND_CONNECTION_WAIT_SECONDS}s for the test's one connection, held "
                "by another thread: does the test need concurrent transactions? mark it `commits`"
            )
        self.holder = threading.get_ident()
        try:
            yield self.connection
        finally:
            self.holder = None
            self.lock.release()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.lent() as connection, connection.begin_nested():
            yield connection


@contextlib.contextmanager
def rolled_back(database: Database) -> Iterator[None]:
    """Bind ``database`` to one connection in a transaction that is rolled back at the end.

    The rollback undoes what the test wrote, which is much cheaper than emptying every
    table with TRUNCATE (a new file per table and per index, about 180 ms a test). The
    store's own commits are savepoint releases (_BoundConnection): the Core counterpart of
    an ORM ``Session(bind=connection, join_transaction_mode="create_savepoint")``. So the
    test sees its writes as before, from every thread of the dev server that shares its
    store; only other connections (subprocesses, stores of their own) do not, which is why
    such tests commit for real.
    """
    engine = database.engine
    if _WorkerDatabase.may_hold_rows:
        with engine.begin() as conn:
            _empty(conn)
        _WorkerDatabase.may_hold_rows = False
    connection = engine.connect()
    outer = connection.begin()
    started = connection.exec_driver_sql(_BOUND_SESSION_START).one()
    assert None not in started, f"a sequence was not found: {_BOUND_SESSION_START}"
    bound = _BoundConnection(connection)
    engine.begin = bound.begin  # type: ignore[method-assign]
    try:
        yield
    finally:
        # A server thread may still be finishing a request: wait for the connection. The
        # engine stays bound: a request that comes later fails instead of committing.
        with bound.lent():
            try:
                outer.rollback()
            finally:
                connection.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per group of skipped tests (a reason, how many), not one line per test."""
    groups: collections.Counter[str] = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        groups[reason.removeprefix("Skipped: ")] += 1
    if groups:
        terminalreporter.section("skipped, by reason")
        for reason, count in groups.most_common():
            terminalreporter.line(f"{count:5d} skipped: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every test must run: a skip (no oracle, no PostgreSQL) fails the session."""
    if not REQUIRE_ALL:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        print(f"\n{skipped} test(s) skipped, but QBWC_BRIDGE_TEST_NO_SKIPS=1 demands that all run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
