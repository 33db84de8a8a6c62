"""SQLite's WAL is checkpointed in the background, never by a callback's commit."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from qbwc_bridge.store import Database


def _database_bytes(path: Path) -> int:
    return path.stat().st_size


def test_commits_leave_the_wal_to_the_background_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as tx:
            tx.execute(text("CREATE TABLE filler (data BLOB)"))
        size_before = _database_bytes(path)
        with database.transaction() as tx:
            # 2 MB in one commit: without automatic checkpoints it stays in the WAL...
            tx.execute(text("INSERT INTO filler VALUES (:d)"), {"d": b"x" * 2_000_000})
        assert _database_bytes(path) < size_before + 1_000_000
        assert (tmp_path / "bridge.db-wal").stat().st_size > 2_000_000
        # ...until the checkpointer thread copies it into the database file.
        deadline = time.monotonic() + 10
        while _database_bytes(path) < size_before + 2_000_000:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            time.sleep(0.05)
    finally:
        database.dispose()


def _checkpointers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "sqlite-wal-checkpoint"}


def test_one_checkpointer_per_database_and_it_stops_with_it(tmp_path: Path) -> None:
    before = _checkpointers()
    database = Database(f"sqlite:///{tmp_path / 'one.db'}")
    for _ in range(3):
        with database.transaction() as tx:
            tx.execute(text("SELECT 1"))
    started = _checkpointers() - before
    assert len(started) == 1
    database.dispose()
    (thread,) = started
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert Database("sqlite://").checkpointer is None  # in memory: nothing to checkpoint
