"""The engine, the transaction boundary, and the SQLite settings that make it behave."""

from __future__ import annotations

import contextlib
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
    # pool_pre_ping: a restarted PostgreSQL costs one failed ping, not a failed callback.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


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
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Take the write lock up front: a claim must not discover a competing writer
        # half-way through (SQLite has one writer; this makes it explicit).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One engine per process; every unit of work is one `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit on success, roll back on any exception; driver errors become StoreUnavailable."""
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
        self.engine.dispose()
