"""Packing a message reads the run's orders only as far as the message needs."""

from __future__ import annotations

from collections.abc import Iterator

from factories import make_order_json

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.orders import (
    LazyOrder,
    OrderStage,
    OrderStatus,
    QueuedOrder,
    TxnKind,
)
from qbwc_bridge.engine import steps


def _waiting(read: list[int], count: int = 10) -> Iterator[QueuedOrder]:
    """Orders at the duplicate check, noting each one as it is read (as from the database)."""
    for number in range(1, count + 1):
        order = intake.parse_order(make_order_json(OrderNumber=f"P{number}"))
        read.append(number)
        yield QueuedOrder(
            id=number,
            order_number=order.order_number,
            source=LazyOrder(lambda order=order: order),  # type: ignore[misc]
            status=OrderStatus.IN_PROGRESS,
            stage=OrderStage.CHECK,
            txn_kind=TxnKind.INVOICE,
            customer_name=f"Customer {number}",
        )


def test_one_order_per_message_reads_one_order() -> None:
    read: list[int] = []
    plan = steps.plan_message(_waiting(read), CompanySettings(orders_per_message=1), budget=140)
    assert plan.order_ids == [1]
    assert read == [1]


def test_a_full_message_reads_only_the_order_that_did_not_fit() -> None:
    read: list[int] = []
    # each order: its transaction check, and its customer in the message's one lookup
    plan = steps.plan_message(_waiting(read), CompanySettings(), budget=4)
    assert plan.order_ids == [1, 2, 3]
    assert len(plan.requests) == 4  # three checks and the customer lookup
    assert read == [1, 2, 3, 4]  # the fourth went back for the next message
