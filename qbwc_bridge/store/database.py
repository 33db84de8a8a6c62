"""The engine, the transaction boundary, and the SQLite settings that make it behave."""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import QueuePool

from qbwc_bridge.errors import StoreUnavailable

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


class Database:
    """One engine per process; every unit of work is one `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self.checkpointer = (
            WalCheckpointer(self.engine, path) if path and path != ":memory:" else None
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

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
