"""The engine, the transaction boundary, and the SQLite settings that make it behave."""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    cast,
    create_engine,
    event,
    exc,
    func,
    make_url,
)
from sqlalchemy import select as select_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.pool import QueuePool

from qbwc_bridge.errors import BridgeError, StoreUnavailable

Tx = Connection


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; every timestamp we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def insert_into(tx: Tx, table: Table) -> Any:
    """INSERT for ``tx``'s database, with ON CONFLICT (SQLite 3.24+ and PostgreSQL both
    spell it so; SQLAlchemy has it in each dialect's own insert)."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_rows(
    tx: Tx, table: Table, rows: Sequence[Mapping[str, Any]], *, skip_existing: bool = False
) -> None:
    """Insert many short rows (all with the same keys) in one statement; with
    ``skip_existing``, those whose key is there already are left out (ON CONFLICT DO NOTHING).

    On PostgreSQL: one INSERT over ``unnest()`` of an array per column. An executemany
    runs a statement per row (200 SKU rows of 100 orders took 9 ms, this 2 ms), and a
    multi-row VALUES has a placeholder per value, too long for the driver's statement cache.
    Not for long texts: the driver escapes each array element with a regular expression.
    SQLite's driver runs an executemany without either cost.
    """
    statement = insert_into(tx, table)
    if tx.dialect.name != "postgresql":
        tx.execute(statement.on_conflict_do_nothing() if skip_existing else statement, list(rows))
        return
    names = list(rows[0])
    arrays = [
        cast(
            bindparam(None, [row[name] for row in rows], type_=ARRAY(table.c[name].type)),
            ARRAY(table.c[name].type),
        )
        for name in names
    ]
    source = func.unnest(*arrays).table_valued(*names).render_derived()
    statement = statement.from_select(names, select_(*(source.c[name] for name in names)))
    tx.execute(statement.on_conflict_do_nothing() if skip_existing else statement)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # connect_timeout: an unreachable host fails a callback in seconds, well inside the Web
    # Connector's two minutes, instead of waiting out TCP's own timeout.
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver prepares a statement once it has run five times, and PostgreSQL then
        # reuses one plan for it, unless that generic plan looks costlier than planning
        # for the values at hand. A list of ids always looks costlier (ten ids assumed,
        # one to three given), so the statements that take one were planned again at every
        # run: 0.17 ms for a page of orders, more than running it. Every statement of ours
        # is keyed by ids, runs and companies, where one plan fits all values; the tests
        # check the generic plans of the statements a callback runs.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_connection.commit()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A restarted PostgreSQL costs a new connection, not a failed callback: the pool
        # replaces a connection the server hung up on and tries again.
        if server_hung_up(dbapi_connection):
            raise exc.DisconnectionError("PostgreSQL closed this pooled connection")

    return engine


CONNECT_TIMEOUT_SECONDS = 5


def server_hung_up(dbapi_connection: Any) -> bool:
    """Has PostgreSQL closed this idle pooled connection (restart, terminated backend)?

    Between transactions the server sends nothing, so anything to read on the socket is
    its goodbye (an error message, then end of file). Looking costs one poll() call, where
    a ping (pool_pre_ping) costs a round trip to the server on every callback.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        # Pooled: closing a WAL connection checkpoints, which would cost every callback ~10 ms.
        # In-memory databases keep SQLAlchemy's default (one shared connection).
        **({} if ":memory:" in url or url == "sqlite://" else {"poolclass": QueuePool}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if ":memory:" not in url and url != "sqlite://":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints copy the WAL into the database and fsync it: tens of milliseconds
            # that would land on whichever callback crossed the threshold. Database runs
            # them on a background thread instead (WalCheckpointer).
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Take the write lock up front: a claim must not discover a competing writer
        # half-way through (SQLite has one writer; this makes it explicit).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class WalCheckpointer:
    """Checkpoints a SQLite WAL from a daemon thread, off the callbacks' path.

    PASSIVE checkpoints never block readers or the writer. Started on first use in each
    process (a thread does not survive gunicorn's fork); several processes checkpointing
    the same file is harmless: one gets the checkpoint lock, the others skip.
    """

    INTERVAL_SECONDS = 0.5
    THRESHOLD_BYTES = 1024 * 1024

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine, self.wal = engine, path + "-wal"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._stop = threading.Event()
                thread = threading.Thread(
                    target=self._loop, args=(self._stop,), name="sqlite-wal-checkpoint", daemon=True
                )
                thread.start()
                self._pid = os.getpid()

    def checkpoint(self) -> None:
        # A raw connection: the engine's "begin" hook would take the write lock.
        connection = self.engine.raw_connection()
        try:
            connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.INTERVAL_SECONDS):
            try:
                if os.path.getsize(self.wal) > self.THRESHOLD_BYTES:
                    self.checkpoint()
            except (OSError, exc.DBAPIError):
                continue  # no WAL yet, or the database is busy: try again next time

    def stop(self) -> None:
        self._stop.set()
        self._pid = None


class InvalidDatabaseUrl(BridgeError):
    """QBWC_BRIDGE_DATABASE_URL is not a database URL this release can open."""


EXAMPLE_URLS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"


def shown_url(url: str) -> str:
    """``url`` without its password, to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _url_problem(url: str, error: Exception) -> str:
    start = f"QBWC_BRIDGE_DATABASE_URL {shown_url(url)!r}"
    if isinstance(error, ImportError):
        return (
            f"{start} needs the Python driver {error.name or 'for it'}, which is not installed: "
            f"write {EXAMPLE_URLS} (psycopg 3 comes with qbwc-bridge)"
        )
    if isinstance(error, exc.NoSuchModuleError):
        name = make_url(url).get_backend_name()
        return f"{start} is not a database URL: there is no database kind {name!r}; write {EXAMPLE_URLS}"
    return f"{start} is not a database URL: {error}; write {EXAMPLE_URLS}"


def connection_problem(url: str, error: BaseException) -> str:
    """One line saying why the database at ``url`` could not be opened, and what to do."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    # psycopg: 'connection failed: connection to server at "HOST", port N failed: FATAL:  why'
    reason = (lines[0] if lines else type(cause).__name__).rsplit(" failed: ", 1)[-1]
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and not Path(parsed.database).absolute().parent.is_dir():
            reason = "its folder does not exist"
        return (
            f"Cannot open the SQLite database {_sqlite_path(parsed.database)}: {reason}; "
            "check QBWC_BRIDGE_DATABASE_URL"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if re.search(r'database ".*" does not exist', reason):
        hint = (
            f"create it (createdb -h {parsed.host or 'localhost'} {parsed.database}) "
            "or check QBWC_BRIDGE_DATABASE_URL"
        )
    else:
        hint = "check QBWC_BRIDGE_DATABASE_URL and that the server runs"
    return f"Cannot connect to PostgreSQL at {where}: {reason}; {hint}"


def _sqlite_path(database: str | None) -> str:
    return str(Path(database).absolute()) if database else "(in memory)"


class Database:
    """One engine per process; every unit of work is one `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
        except (exc.ArgumentError, ImportError) as error:
            raise InvalidDatabaseUrl(_url_problem(url, error)) from None
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self.checkpointer = (
            WalCheckpointer(self.engine, path) if path and path != ":memory:" else None
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def missing_file(self) -> str | None:
        """The absolute path of this SQLite database's file when there is none yet, else None.

        Opening a SQLite database creates its file (and -wal and -shm beside it), so a
        command that only reads asks this first and creates nothing. Raises StoreUnavailable
        when the file's folder does not exist either.
        """
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        file = Path(path).absolute()
        if file.exists():
            return None
        if not file.parent.is_dir():
            raise StoreUnavailable(
                f"Cannot open the SQLite database {file}: its folder does not exist; "
                "check QBWC_BRIDGE_DATABASE_URL"
            )
        return str(file)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit on success, roll back on any exception; driver errors become StoreUnavailable."""
        if self.checkpointer is not None:
            self.checkpointer.ensure_running()
        try:
            with self.engine.begin() as conn:
                yield conn
        except (exc.OperationalError, exc.InterfaceError) as error:
            if isinstance(error, exc.OperationalError) and "locked" in str(error).lower():
                raise StoreUnavailable("The SQLite database is busy; try again") from error
            raise StoreUnavailable() from error

    def ping(self) -> bool:
        try:
            with self.transaction() as tx:
                tx.exec_driver_sql("SELECT 1")
        except StoreUnavailable:
            return False
        return True

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()
