"""Alembic environment: runs migrations on the engine the bridge already built."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from qbwc_bridge.store.schema import metadata

config = context.config
engine: Engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
