"""Schema creation and upgrades through Alembic, so a live database can be upgraded."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc

from qbwc_bridge.errors import StoreUnavailable
from qbwc_bridge.store.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (revision before, revision after)."""
    config = alembic_config(database)
    before = current_revision(database)
    command.upgrade(config, revision)
    return before, current_revision(database) or ""


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(database: Database) -> str:
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    assert head is not None
    return head


def schema_problem(database: Database) -> str | None:
    """What stops this release from serving ``database``, or None when its schema is current.

    Raises StoreUnavailable when the database cannot be reached.
    """
    try:
        current = current_revision(database)
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise StoreUnavailable() from error
    head = head_revision(database)
    if current == head:
        return None
    return (
        f"The database schema is at {current or 'nothing'}, not {head}: "
        "run `qbwc-bridge init-db` (it creates or upgrades the schema), then start again."
    )
