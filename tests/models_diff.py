"""What alembic's comparison finds between a database and the models (store/schema.py)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qbwc_bridge.store import Database
from qbwc_bridge.store.schema import POSTGRESQL_ONLY_INDEXES, metadata


def schema_diff(database: Database) -> list[Any]:
    """The differences; the trigram indexes count on PostgreSQL only (they are declared with
    Index.ddl_if, which the comparison does not read)."""
    with database.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"

        def declared_here(item: object, name: str | None, kind: str, *_: object) -> bool:
            return postgres or name not in POSTGRESQL_ONLY_INDEXES

        options = {"compare_type": True, "include_object": declared_here}
        return list(compare_metadata(MigrationContext.configure(conn, opts=options), metadata))
