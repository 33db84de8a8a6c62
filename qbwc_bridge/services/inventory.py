"""Inventory use cases shared by the command line and the HTTP API: product updates."""

from __future__ import annotations

from typing import Any

from qbwc_bridge.domain.company import Company
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import inventory as inventory_store


def product_updates(
    store: Store, company_name: str, since: int = 0, limit: int = 1000
) -> dict[str, Any]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return _product_updates(store, tx, found.id, since, limit)


def product_updates_for(store: Store, found: Company, since: int, limit: int) -> dict[str, Any]:
    with store.transaction() as tx:
        return _product_updates(store, tx, found.id, since, limit)


def _product_updates(
    store: Store, tx: Tx, company_id: int, since: int, limit: int
) -> dict[str, Any]:
    rows = inventory_store.since(tx, company_id, since, limit)
    return {
        "rows": [row.as_json() for row in rows],
        "next_cursor": rows[-1].cursor if rows else since,
    }


def request_inventory_now(store: Store, company_name: str) -> None:
    """Make the next Web Connector run include an inventory query."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        company_store.set_inventory_due_at(tx, found.id, utcnow())
