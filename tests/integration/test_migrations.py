"""Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import logging
import os
from decimal import Decimal

import pytest
from alembic import command
from factories import make_line, make_order_json, make_payment
from models_diff import schema_diff
from sqlalchemy import create_engine, make_url, text

from qbwc_bridge.domain.inventory import StockLevel
from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Database, Store, upgrade, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import connex as connex_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.store.migrate import alembic_config, current_revision, head_revision
from qbwc_bridge.store.schema import POSTGRESQL_ONLY_INDEXES


def test_head_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database)  # already at head: a no-op that must not fail
    assert current_revision(database) == head_revision(database)
    diff = schema_diff(database)
    database.dispose()
    assert diff == []


def test_init_db_from_empty(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/fresh.db")
    before, after = upgrade(database)
    assert before is None and after == head_revision(database)
    assert upgrade(database) == (after, after)


def test_0003_settles_payments_that_earlier_releases_left_pending(store: Store) -> None:
    company_service.add_company(store, "acme", "acme-user", "a-password")
    numbers = (("R1", 5), ("R2", 5), ("S1", 4), ("C1", 1), ("I1", 0))
    order_service.enqueue(
        store,
        "acme",
        [
            make_order_json(OrderNumber=n, OrderType=t, Payments=[make_payment(ReferenceNumber=n)])
            for n, t in numbers
        ],
    )
    command.downgrade(alembic_config(store.database), "0002")
    with store.transaction() as tx:  # what 0.1.0 left: finished orders, payments pending
        tx.exec_driver_sql(
            "UPDATE orders SET status = 'synced', qb_txn_id = 'TX-' || order_number "
            "WHERE order_number <> 'R2'"
        )
    upgrade(store.database)
    orders = {o["order_number"]: o for o in order_service.status(store, "acme")["orders"]}
    payment = {number: orders[number]["payments"][0] for number, _ in numbers}
    assert (payment["R1"]["status"], payment["R1"]["qb_txn_id"]) == ("synced", "TX-R1")
    assert payment["R2"]["status"] == "pending"  # its order is not finished: the engine's
    assert payment["I1"]["status"] == "pending"  # an invoice's payments are checked and added
    for number, kind in (("S1", "SalesOrder"), ("C1", "CreditMemo")):
        assert payment[number]["status"] == "error"
        assert payment[number]["error"] == (
            f"This order became a {kind}, and QuickBooks applies payments to invoices only: "
            "record this payment in QuickBooks by hand."
        )


def test_init_db_goes_on_without_the_right_to_add_pg_trgm(
    postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may create tables but not extensions (no CREATE on the database): the
    schema is built without the trigram indexes, one warning says so, and the searches
    still answer."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name, role = f"qbwc_bridge_notrgm_{worker}", f"qbwc_bridge_plain_{worker}"
    admin_url = make_url(postgres_database)
    admin = create_engine(admin_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    owner = create_engine(admin_url.set(database=name), isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.exec_driver_sql(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    owner.dispose()
    database = Database(admin_url.set(database=name, username=role, password=None)
                        .render_as_string(hide_password=False))  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING):
            upgrade(database)
        assert current_revision(database) == head_revision(database)
        assert any("pg_trgm could not be added" in r.getMessage() for r in caplog.records)
        with database.engine.connect() as conn:
            indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes")).scalars())
        assert "ix_product_updates_by_sales_price" in indexes
        assert not indexes & POSTGRESQL_ONLY_INDEXES
        store = Store(database)
        company_service.add_company(store, "acme", "acme-user", "a-password")
        with store.transaction() as tx:
            company_id = company_store.by_name(tx, "acme").id
            levels = [StockLevel(sku, Decimal(1), None, None, "80-1") for sku in ("Mug", "Plate")]
            inventory_store.upsert(tx, company_id, levels, utcnow())
            wanted = connex_store.ProductFilter(company_id=company_id, search="MU")
            listed, total = connex_store.products_page(tx, wanted)
        assert ([p.sku for p in listed], total) == (["Mug"], 1)
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def test_0013_fills_sku_keys_from_the_orders_already_queued(store: Store) -> None:
    company_service.add_company(store, "acme", "acme-user", "a-password")
    lines = [make_line(sku="Mug"), make_line(sku="plate"), make_line(sku="PLATE")]
    order_service.enqueue(store, "acme", [make_order_json(OrderNumber="K1", orderDetails=lines)])
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, "acme").id
        before = connex_store.unknown_skus(tx, company_id)
    command.downgrade(alembic_config(store.database), "0012")
    upgrade(store.database)
    with store.transaction() as tx:
        keys = tx.execute(text("SELECT sku_key FROM sku_keys ORDER BY sku_key")).scalars()
        assert list(keys) == ["mug", "plate"]
        assert connex_store.unknown_skus(tx, company_id) == before == ["Mug", "plate"]
