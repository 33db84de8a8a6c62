"""The only package that talks SQL. Everything it returns is a domain dataclass."""

from __future__ import annotations

from contextlib import AbstractContextManager

from qbwc_bridge.store import channels, companies, exports, inventory, orders, posting, runs
from qbwc_bridge.store.database import Database, Tx, utcnow
from qbwc_bridge.store.migrate import upgrade

__all__ = ["Database", "Store", "Tx", "upgrade", "utcnow"]


class Store:
    """What the engine and the service layer are given: a database and its repositories.

    The repositories are modules of plain functions taking the transaction first, so a
    call site reads ``store.orders.apply_changes(tx, ...)`` and one transaction spans many
    calls. Inside the package, code imports the modules themselves
    (``from qbwc_bridge.store import orders as order_store``); tests reach them here.
    """

    companies = companies
    channels = channels
    runs = runs
    orders = orders
    inventory = inventory
    exports = exports
    posting = posting

    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(Database(url))

    def transaction(self) -> AbstractContextManager[Tx]:
        return self.database.transaction()
