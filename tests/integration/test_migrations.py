"""Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qbwc_bridge.store import Database, upgrade
from qbwc_bridge.store.migrate import current_revision, head_revision
from qbwc_bridge.store.schema import metadata


def test_head_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database)  # already at head: a no-op that must not fail
    assert current_revision(database) == head_revision(database)
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    database.dispose()
    assert diff == []


def test_init_db_from_empty(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/fresh.db")
    before, after = upgrade(database)
    assert before is None and after == head_revision(database)
    assert upgrade(database) == (after, after)
