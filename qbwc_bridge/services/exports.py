"""Export use cases shared by the command line and the HTTP API: the QuickBooks
transactions feed, and asking for an export in the next run."""

from __future__ import annotations

from typing import Any

from qbwc_bridge.domain.company import Company
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import exports as export_store


def quickbooks_transactions(
    store: Store, company_name: str, since: int = 0, limit: int = 1000
) -> dict[str, Any]:
    """``{"rows": [...], "next_cursor": N}``: the rows changed after ``since``."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return _page(tx, found.id, since, limit)


def quickbooks_transactions_for(
    store: Store, found: Company, since: int, limit: int
) -> dict[str, Any]:
    with store.transaction() as tx:
        return _page(tx, found.id, since, limit)


def _page(tx: Tx, company_id: int, since: int, limit: int) -> dict[str, Any]:
    rows = export_store.since(tx, company_id, since, limit)
    return {
        "rows": [row.as_json() for row in rows],
        "next_cursor": rows[-1].cursor if rows else since,
    }


def request_export(store: Store, company_name: str, *, full: bool = False) -> Company:
    """Make the next Web Connector run export; ``full`` reads every transaction again, not
    only those modified since the last export (rows that did not change keep their cursor).
    """
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        if not found.settings.export_types:
            raise BridgeError(
                f"{found.name} exports no transactions: set export_transactions first, e.g. "
                f"`qbwc-bridge company set {found.name} export_transactions invoice,sales_receipt`"
            )
        export_store.set_due_at(tx, found.id, utcnow())
        if full:
            export_store.set_exported_from(tx, found.id, None)
        return found
