"""Every sort the Connex-compatible lists offer reads an index in order: a page of 100 000
rows sorted by any column is then a walk from one end, never a sort of them all."""

from __future__ import annotations

import pytest
from sqlalchemy import Index, Table, UniqueConstraint

from qbwc_bridge.domain.connex import ORDER_SORTS, PRODUCT_SORTS
from qbwc_bridge.store import schema


def _leading_pairs(table: Table) -> set[tuple[str, str]]:
    """The first two columns of each index, unique constraint and primary key of ``table``."""
    keyed: list[list[str]] = [[c.name for c in table.primary_key.columns]]
    keyed += [
        [c.name for c in index.columns] for index in table.indexes if isinstance(index, Index)
    ]
    keyed += [
        [c.name for c in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return {(names[0], names[1]) for names in keyed if len(names) >= 2}


@pytest.mark.parametrize(
    ("table", "sorts"),
    [(schema.orders, ORDER_SORTS), (schema.product_updates, PRODUCT_SORTS)],
    ids=["orders/list", "products/list"],
)
def test_every_sort_column_leads_an_index_after_the_company(
    table: Table, sorts: dict[str, str]
) -> None:
    pairs = _leading_pairs(table)
    unindexed = sorted({column for column in sorts.values() if ("company_id", column) not in pairs})
    assert unindexed == []
