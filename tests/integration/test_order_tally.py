"""orders/list's total comes from a tally the intake keeps (store.schema.order_tallies): it
must equal a count of the company's channel orders whatever happened, folded or not."""

from __future__ import annotations

import threading

from factories import make_order_json
from sqlalchemy import func, select

from qbwc_bridge.services import companies as company_service
from qbwc_bridge.services import orders as order_service
from qbwc_bridge.store import Store, schema
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import connex as connex_store

o, t = schema.orders, schema.order_tallies


def _orders(numbers: range, prefix: str = "T") -> list[dict[str, object]]:
    return [make_order_json(OrderNumber=f"{prefix}{n}") for n in numbers]


def _listed_total(store: Store, company: str = "acme") -> int:
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, company).id
        _, total = connex_store.orders_page(tx, connex_store.OrderFilter(company_id=company_id))
    return total


def _counted(store: Store, company: str = "acme") -> tuple[int, int]:
    """The company's orders that are not daily summaries, and its tally's rows."""
    with store.transaction() as tx:
        company_id = company_store.by_name(tx, company).id
        orders = tx.execute(
            select(func.count())
            .select_from(o)
            .where(o.c.company_id == company_id, o.c.summary_memo.is_(None))
        ).scalar_one()
        rows = tx.execute(
            select(func.count()).select_from(t).where(t.c.company_id == company_id)
        ).scalar_one()
    return int(orders), int(rows)


def test_the_total_follows_every_intake_resend_and_fold(store: Store) -> None:
    company_service.add_company(store, "acme", "acme-user", "a-password")
    company_service.add_company(store, "other", "other-user", "a-password")
    assert _listed_total(store) == 0
    kept = connex_store.TALLY_ROWS_KEPT
    for call in range(kept + 6):  # more intakes than the tally keeps rows
        order_service.enqueue(store, "acme", _orders(range(call * 3, call * 3 + 3)))
    order_service.enqueue(store, "other", _orders(range(5)))
    order_service.enqueue(store, "acme", _orders(range(0, 9)))  # re-sent: no new orders
    changed = [make_order_json(OrderNumber="T1", CustomerName="Someone Else")]
    order_service.enqueue(store, "acme", changed)  # a new version of a pending order
    orders, rows = _counted(store)
    assert (orders, rows) == ((kept + 6) * 3, kept + 6)
    assert _listed_total(store) == orders  # read, then folded into one row
    assert _counted(store) == (orders, 1)
    order_service.enqueue(store, "acme", _orders(range(1000, 1004)))
    assert _listed_total(store) == orders + 4 == _counted(store)[0]
    assert _listed_total(store, "other") == 5


def test_concurrent_intakes_and_lists_never_lose_a_count(store: Store) -> None:
    company_service.add_company(store, "acme", "acme-user", "a-password")
    errors: list[BaseException] = []

    def intake(worker: int) -> None:
        try:
            for call in range(40):
                numbers = range(call * 2, call * 2 + 2)
                order_service.enqueue(store, "acme", _orders(numbers, prefix=f"W{worker}-"))
                if call % 5 == 0:
                    _listed_total(store)  # folds the tally while the others add to it
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=intake, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _listed_total(store) == _counted(store)[0] == 4 * 40 * 2
