"""What every command module shares: the ready store, JSON output, the --company help."""

from __future__ import annotations

import json
import sys

from qbwc_bridge.config import Settings
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import Store, migrate

COMPANY_HELP = "the company's name (as given to `company add`)"


def ready_store(settings: Settings) -> Store:
    """The store of every command but init-db: one line and no change when its schema is not
    this release's (none yet, or behind) or it cannot be reached. A SQLite file that does not
    exist is not created."""
    store = Store.from_url(settings.database_url)
    problem = migrate.schema_problem(store.database)
    if problem:
        store.database.dispose()
        raise BridgeError(problem)
    return store


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
