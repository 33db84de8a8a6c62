"""The Connex lists' searchText finds the orders whose number or customer holds the text, and
the inventory rows whose SKU does, case aside, on both databases: the wildcard characters of
LIKE (PostgreSQL) and GLOB (SQLite) stand for themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from factories import make_order_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, schema
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import connex as connex_store
from qbwc_bridge.store import inventory as inventory_store

CUSTOMERS = [
    "Star*Shop", "Who? Me", "[Brackets] Ltd", "Close] Bracket", "100% Cotton", "Under_score",
    "Back\\Slash", "Slash/Works", "ÉCOLE Ünïcode", "plain buyer", "Plain Buyer Two",
]  # fmt: skip
WILD = "*?[]%_\\/^!-"


def _seed(store: Store) -> tuple[int, dict[int, str]]:
    """The orders, one per customer; returns the company and each order's search text."""
    company_service.add_company(store, "acme", "acme-user", "a-password")
    orders = [
        make_order_json(OrderNumber=f"N{n}-{n * 7}", CustomerName=name)
        for n, name in enumerate(CUSTOMERS)
    ]
    order_service.enqueue(store, "acme", orders)
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        o = schema.orders
        texts = {
            int(row.id): str(row.search_text)
            for row in tx.execute(
                select(o.c.id, o.c.search_text).where(o.c.company_id == company_id)
            )
        }
    return company_id, texts


def _found(store: Store, company_id: int, search: str) -> set[int]:
    with store.transaction() as tx:
        wanted = connex_store.OrderFilter(company_id=company_id, search=search, limit=100)
        listed, total = connex_store.orders_page(tx, wanted)
    assert total == len(listed)
    return {order.id for order in listed}


def _pieces(texts: list[str]) -> st.SearchStrategy[str]:
    """A slice of one order's search text in any case, or wildcards and letters."""
    sliced = st.sampled_from(texts).flatmap(
        lambda text: st.tuples(
            st.integers(0, len(text)), st.integers(1, 12), st.sampled_from([str.upper, str])
        ).map(lambda cut: cut[2](text[cut[0] : cut[0] + cut[1]]))
    )
    return st.one_of(sliced, st.text(alphabet=WILD + "abcéÉ ", min_size=1, max_size=4))


def test_the_search_finds_exactly_the_orders_holding_the_text(store: Store) -> None:
    company_id, texts = _seed(store)
    assert all(text == text.lower() for text in texts.values())
    by_customer = {name: _found(store, company_id, name) for name in CUSTOMERS}
    # Each sent customer name finds its order, whatever its wildcards or case.
    assert all(len(found) >= 1 for found in by_customer.values())
    assert by_customer["100% Cotton"] == _found(store, company_id, "0% c")
    assert _found(store, company_id, "%") == _found(store, company_id, "100%")
    assert _found(store, company_id, "*") == _found(store, company_id, "star*")
    assert len(_found(store, company_id, "*")) == 1
    assert _found(store, company_id, "[b") == _found(store, company_id, "[BRACKETS]")
    assert _found(store, company_id, "é") == _found(store, company_id, "Ünï")
    assert _found(store, company_id, "nobody") == set()

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(search=_pieces(list(texts.values())))
    def searched(search: str) -> None:
        needle = search.strip().lower()
        expected = {id_ for id_, text in texts.items() if needle in text}
        assert _found(store, company_id, search) == expected

    searched()


SKUS = ["ÉCLAIR-1", "éclair-2", "Star*Sku", "100%-WOOL", "Under_Sku", "Straße-3", "plain-4"]


def test_the_product_search_folds_case_and_takes_wildcards_as_written(
    store: Store,
) -> None:
    company_service.add_company(store, "acme", "acme-user", "a-password")
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        levels = [StockLevel(sku, Decimal(1), None, None) for sku in SKUS]
        inventory_store.upsert(tx, company_id, levels, datetime.now(UTC))

    def found(search: str) -> set[str]:
        with store.transaction() as tx:
            wanted = connex_store.ProductFilter(company_id=company_id, search=search, limit=50)
            listed, total = connex_store.products_page(tx, wanted)
        assert total == len(listed)
        return {product.sku for product in listed}

    if store.database.is_postgres:  # sku_key: the SKU case-folded
        assert found("Éclair") == {"ÉCLAIR-1", "éclair-2"}
        assert found("STRASSE") == {"Straße-3"}  # casefold: ß is ss
    else:  # LIKE on the SKU, which folds ASCII letters only (docs/http-api.md)
        assert (found("Éclair"), found("éCLAIR")) == ({"ÉCLAIR-1"}, {"éclair-2"})
        assert found("CLAIR") == {"ÉCLAIR-1", "éclair-2"}
    assert found("*") == {"Star*Sku"}
    assert found("%") == {"100%-WOOL"}
    assert found("_") == {"Under_Sku"}
    assert found("[") == set()
    assert found("-") == {sku for sku in SKUS if "-" in sku}
