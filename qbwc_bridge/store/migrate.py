"""Schema creation and upgrades through Alembic, so a live database can be upgraded."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc

from qbwc_bridge.errors import StoreUnavailable
from qbwc_bridge.store.database import Database, connection_problem

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (revision before, revision after).

    Raises StoreUnavailable, saying why, when the database cannot be opened.
    """
    config = alembic_config(database)
    before = current_revision(database)
    command.upgrade(config, revision)
    return before, current_revision(database) or ""


def current_revision(database: Database) -> str | None:
    """The schema's revision, None when it has none; StoreUnavailable (saying why) when the
    database cannot be opened."""
    try:
        with database.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except exc.DBAPIError as error:
        raise StoreUnavailable(connection_problem(database.url, error)) from error


def _no_schema(detail: str = "") -> str:
    return f"The database has no schema yet{detail}: run `qbwc-bridge init-db` to create it"


def head_revision(database: Database) -> str:
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    assert head is not None
    return head


def schema_problem(database: Database) -> str | None:
    """What stops this release from serving ``database``, or None when its schema is current.

    A SQLite file that does not exist is not created. Raises StoreUnavailable, saying why,
    when the database cannot be reached.
    """
    missing = database.missing_file()
    if missing:
        return _no_schema(f" (no file {missing})")
    current = current_revision(database)
    if current is None:
        return _no_schema()
    head = head_revision(database)
    if current == head:
        return None
    return (
        f"The database schema is at {current or 'nothing'}, not {head}: "
        "run `qbwc-bridge init-db` (it creates or upgrades the schema), then start again."
    )
