"""Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from factories import make_order_json, make_payment

from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Database, Store, upgrade
from qbwc_bridge.store.migrate import alembic_config, current_revision, head_revision
from qbwc_bridge.store.schema import metadata


def test_head_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database)  # already at head: a no-op that must not fail
    assert current_revision(database) == head_revision(database)
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
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
