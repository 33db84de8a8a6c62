"""The steps of a batch without a database: what a request half asks, and which typed
changes a response half decides, for orders built in memory."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from factories import make_order_json, make_payment

from qbwc_bridge.domain import intake
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.orders import (
    LazyOrder,
    OrderChange,
    OrderOutcome,
    OrderStage,
    OrderStatus,
    PaymentChange,
    PaymentOutcome,
    PaymentStatus,
    QueuedOrder,
    QueuedPayment,
    Resolution,
    TxnKind,
    TxnLink,
)
from qbwc_bridge.domain.runs import RequestKind, RequestPurpose
from qbwc_bridge.engine import steps
from qbwc_bridge.qbxml.responses import QbRecord, QbResponse, QbStatus

OK = QbStatus(0, "Info", "Status OK")
NO_MATCH = QbStatus(1, "Info", "A query request did not find a matching object in QuickBooks")


def queued(
    number: str = "1001",
    *,
    stage: OrderStage = OrderStage.CHECK,
    kind: TxnKind = TxnKind.INVOICE,
    payments: int = 0,
    add_sent: bool = False,
    qb_txn_id: str | None = None,
    order_id: int = 7,
    attempts: int = 1,
    resolution: Resolution | None = None,
) -> QueuedOrder:
    """A claimed order as the store would hand it to the steps."""
    raw = make_order_json(
        OrderNumber=number,
        Payments=[make_payment(ReferenceNumber=f"R{i}") for i in range(payments)],
    )
    order = intake.parse_order(raw)
    source = LazyOrder(lambda: order)
    return QueuedOrder(
        id=order_id,
        order_number=number,
        source=source,
        status=OrderStatus.IN_PROGRESS,
        stage=stage,
        txn_kind=kind,
        customer_name="Smith, John",
        add_sent=add_sent,
        qb_txn_id=qb_txn_id,
        attempts=attempts,
        resolution=resolution,
        payments=tuple(
            QueuedPayment(
                id=70 + i,
                position=i,
                source=source,
                status=PaymentStatus.PENDING,
                stage=OrderStage.CHECK,
            )
            for i in range(payments)
        ),
    )


def answer(kind: str, *records: QbRecord, status: QbStatus = OK) -> QbResponse:
    return QbResponse(request_id="1", kind=kind, status=status, records=records)


def invoice(txn_id: str, ref_number: str, **fields: Any) -> QbRecord:
    return QbRecord(ret_kind="InvoiceRet", txn_id=txn_id, ref_number=ref_number, **fields)


def handled(
    order: QueuedOrder, purpose: RequestPurpose, response: QbResponse
) -> steps.ResponseContext:
    ctx = steps.ResponseContext({order.id: order})
    steps.handle(ctx, purpose, response)
    return ctx


TXN_QUERY = RequestPurpose(RequestKind.TXN_QUERY, order_id=7)
TXN_ADD = RequestPurpose(RequestKind.TXN_ADD, order_id=7)


# --- request halves -----------------------------------------------------------------------


def test_an_order_at_its_check_asks_for_its_transaction_and_its_customer() -> None:
    plan = steps.plan_message([queued()], CompanySettings(), budget=10)
    assert plan.order_ids == [7]
    assert list(plan.request_map.values()) == [
        TXN_QUERY,
        RequestPurpose(RequestKind.CUSTOMER_QUERY, customer_names=("Smith, John",)),
    ]


def test_an_order_to_add_adds_its_customer_once_and_then_its_transaction() -> None:
    first = queued(stage=OrderStage.ADD)
    second = queued("1002", stage=OrderStage.ADD, order_id=8)  # the same customer
    plan = steps.plan_message([first, second], CompanySettings(), budget=10)
    assert list(plan.request_map.values()) == [
        RequestPurpose(RequestKind.CUSTOMER_ADD, order_id=7, customer_names=("Smith, John",)),
        TXN_ADD,
        RequestPurpose(RequestKind.TXN_ADD, order_id=8),
    ]
    assert plan.adds_sent == [7, 8]
    assert plan.names_added == {"Smith, John"}


def test_an_order_that_overfills_the_message_is_taken_out_whole() -> None:
    plan = steps.Plan()
    plan.names_added.add("Someone Else")
    mark = plan.mark()
    steps._requests_for(queued(stage=OrderStage.ADD), CompanySettings(), plan)
    assert plan.adds_sent == [7] and "Smith, John" in plan.names_added
    plan.rollback(mark)
    assert (plan.requests, plan.request_map, plan.adds_sent, plan.order_ids) == ([], {}, [], [])
    assert plan.names_added == {"Someone Else"}


# --- response halves ----------------------------------------------------------------------


def test_no_transaction_in_quickbooks_moves_the_order_to_its_add() -> None:
    ctx = handled(queued(), TXN_QUERY, answer("InvoiceQuery", status=NO_MATCH))
    assert ctx.order_changes == {7: OrderChange(stage=OrderStage.ADD)}
    assert ctx.left_run() == 0


def test_a_hit_carrying_the_order_number_in_its_memo_is_this_order() -> None:
    hit = invoice(
        "TX-1", "1001", customer_full_name="Smith, John (shop)", memo="Shopify order 1001"
    )
    ctx = handled(queued(), TXN_QUERY, answer("InvoiceQuery", hit))
    assert ctx.order_changes == {
        7: OrderChange(
            txn=TxnLink("TX-1", "1001", "Smith, John (shop)"),
            outcome=OrderOutcome(OrderStatus.DUPLICATE),
        )
    }
    assert ctx.left_run() == 1


def test_a_hit_another_tool_entered_for_the_same_customer_and_total_is_this_order() -> None:
    order = queued()
    hit = invoice(
        "TX-1", "1001", customer_full_name="SMITH, JOHN", total_amount=order.order.order_total
    )
    ctx = handled(order, TXN_QUERY, answer("InvoiceQuery", hit))
    assert ctx.order_changes[7].outcome == OrderOutcome(OrderStatus.DUPLICATE)


def test_a_bookkeepers_invoice_with_the_same_refnumber_is_a_conflict_not_a_duplicate() -> None:
    other = invoice(
        "TX-8",
        "1001",
        customer_full_name="Jones, Mary",
        total_amount=Decimal("120.00"),
        txn_date=date(2026, 3, 2),
        memo="order 10010",  # not this order's number
    )
    ctx = steps.ResponseContext({7: queued()}, "acme")
    steps.handle(ctx, TXN_QUERY, answer("InvoiceQuery", other))
    outcome = ctx.order_changes[7].outcome
    assert outcome is not None and outcome.status is OrderStatus.ERROR
    message = outcome.error or ""
    for part in ("Invoice 1001", "Jones, Mary", "120.00", "2026-03-02"):
        assert part in message
    assert "qbwc-bridge resolve --company acme 1001 --as-duplicate" in message
    assert "qbwc-bridge resolve --company acme 1001 --add-anyway" in message


def test_a_persons_resolution_decides_a_conflict() -> None:
    other = invoice("TX-8", "1001", customer_full_name="Jones, Mary")
    as_duplicate = handled(
        queued(resolution=Resolution.DUPLICATE), TXN_QUERY, answer("InvoiceQuery", other)
    )
    assert as_duplicate.order_changes[7].outcome == OrderOutcome(OrderStatus.DUPLICATE)
    add_anyway = handled(
        queued(resolution=Resolution.ADD), TXN_QUERY, answer("InvoiceQuery", other)
    )
    assert add_anyway.order_changes == {7: OrderChange(stage=OrderStage.ADD)}


def test_a_cut_refnumber_hit_without_the_whole_number_is_not_this_order() -> None:
    number = "112-1234567-1234567"
    other = invoice("TX-9", "567-1234567", po_number="999-0000000-1234567")
    ctx = handled(queued(number), TXN_QUERY, answer("InvoiceQuery", other))
    outcome = ctx.order_changes[7].outcome
    assert outcome is not None and outcome.status is OrderStatus.ERROR
    assert "RefNumber conflict" in (outcome.error or "")
    mine = invoice("TX-2", "567-1234567", po_number=number)
    ctx = handled(queued(number), TXN_QUERY, answer("InvoiceQuery", other, mine))
    assert ctx.order_changes[7].txn == TxnLink("TX-2", "567-1234567", "Smith, John")


def test_an_answer_to_another_question_is_never_an_outcome() -> None:
    """An InvoiceAddRs answering an InvoiceQuery, or a SalesReceiptRet in an InvoiceQueryRs:
    the order is checked again, nothing is recorded."""
    hit = invoice("FAKE-1", "1001", memo="order 1001")
    wrong_kind = handled(queued(), TXN_QUERY, answer("InvoiceAdd", hit))
    receipt = QbRecord(ret_kind="SalesReceiptRet", txn_id="FAKE-2", ref_number="1001")
    wrong_record = handled(queued(), TXN_QUERY, answer("InvoiceQuery", receipt))
    for ctx in (wrong_kind, wrong_record):
        assert ctx.order_changes == {} and ctx.mismatched == {7}


def test_a_status_that_never_passes_ends_in_error_after_five_runs() -> None:
    locked = QbStatus(3180, "Error", "There was an error when saving a Invoice transaction")
    again = handled(queued(attempts=4), TXN_ADD, answer("InvoiceAdd", status=locked))
    assert again.order_changes[7].outcome is not None
    assert again.order_changes[7].outcome.status is OrderStatus.PENDING
    stop = handled(queued(attempts=5), TXN_ADD, answer("InvoiceAdd", status=locked))
    outcome = stop.order_changes[7].outcome
    assert outcome is not None and outcome.status is OrderStatus.ERROR
    assert "5 runs in a row" in (outcome.error or "") and outcome.error_code == 3180


def test_an_added_invoice_with_payments_goes_on_to_check_them() -> None:
    order = queued(stage=OrderStage.ADD, payments=1, add_sent=True)
    ctx = handled(order, TXN_ADD, answer("InvoiceAdd", invoice("TX-2", "1001")))
    assert ctx.order_changes == {
        7: OrderChange(stage=OrderStage.PAY_CHECK, txn=TxnLink("TX-2", "1001", "Smith, John"))
    }
    assert ctx.orders[7].qb_txn_id == "TX-2" and ctx.orders[7].stage is OrderStage.PAY_CHECK


def test_an_added_sales_receipt_settles_its_payments_with_it() -> None:
    order = queued(stage=OrderStage.ADD, kind=TxnKind.SALES_RECEIPT, payments=1, add_sent=True)
    receipt = QbRecord(ret_kind="SalesReceiptRet", txn_id="TX-3", ref_number="1001")
    ctx = handled(order, TXN_ADD, answer("SalesReceiptAdd", receipt))
    assert ctx.order_changes[7].outcome == OrderOutcome(OrderStatus.SYNCED)
    assert ctx.payment_changes == {
        70: PaymentChange(7, outcome=PaymentOutcome(PaymentStatus.SYNCED, "TX-3"))
    }


def test_a_missing_payment_is_added_next_and_a_found_one_is_linked() -> None:
    order = queued(stage=OrderStage.PAY_CHECK, payments=2, qb_txn_id="TX-4", add_sent=True)
    amount = order.payments[0].payment.amount
    found = QbRecord(
        ret_kind="ReceivePaymentRet",
        txn_id="PAY-1",
        ref_number="R0",
        total_amount=amount,
        applied_to=(("TX-4", amount),),
    )
    ctx = steps.ResponseContext({7: order})
    steps.handle(
        ctx,
        RequestPurpose(RequestKind.PAYMENT_QUERY, order_id=7, payment_id=70),
        answer("ReceivePaymentQuery", found),
    )
    steps.handle(
        ctx,
        RequestPurpose(RequestKind.PAYMENT_QUERY, order_id=7, payment_id=71),
        answer("ReceivePaymentQuery", status=NO_MATCH),
    )
    assert ctx.payment_changes == {
        70: PaymentChange(7, outcome=PaymentOutcome(PaymentStatus.DUPLICATE, "PAY-1")),
        71: PaymentChange(7, stage=OrderStage.PAY_ADD),
    }
    assert ctx.order_changes == {7: OrderChange(stage=OrderStage.PAY_ADD)}


def test_a_locked_record_puts_the_order_back_in_the_queue() -> None:
    locked = QbStatus(3175, "Error", "The record is in use by another user")
    ctx = handled(queued(), TXN_QUERY, answer("InvoiceQuery", status=locked))
    (change,) = ctx.order_changes.values()
    assert change.outcome is not None and change.outcome.status is OrderStatus.PENDING
    assert change.outcome.error and change.outcome.error_code is None
    assert ctx.left_run() == 1 and ctx.failed == {7}


def test_a_missing_item_ends_the_order_in_error_with_the_code() -> None:
    missing = QbStatus(
        3140, "Error", 'There is an invalid reference to QuickBooks Item "SKU-9" in the Invoice.'
    )
    ctx = handled(queued(stage=OrderStage.ADD), TXN_ADD, answer("InvoiceAdd", status=missing))
    (change,) = ctx.order_changes.values()
    assert change.outcome is not None
    assert (change.outcome.status, change.outcome.error_code) == (OrderStatus.ERROR, 3140)
    assert "SKU-9" in (change.outcome.error or "")
    assert ctx.orders[7].stage is OrderStage.DONE


def test_a_customer_found_by_the_lookup_is_remembered_for_the_add() -> None:
    order = queued()
    ctx = steps.ResponseContext({7: order})
    customer = QbRecord(ret_kind="CustomerRet", list_id="80-1", full_name="SMITH, JOHN")
    steps.handle(
        ctx,
        RequestPurpose(RequestKind.CUSTOMER_QUERY, customer_names=("Smith, John", "Doe, Jane")),
        answer("CustomerQuery", customer),
    )
    assert ctx.order_changes == {7: OrderChange(customer_list_id="80-1")}
    assert ctx.orders[7].customer_list_id == "80-1"


def test_changes_of_one_message_combine_later_over_earlier() -> None:
    earlier = OrderChange(stage=OrderStage.ADD, customer_list_id="80-1")
    later = OrderChange(outcome=OrderOutcome(OrderStatus.SYNCED))
    assert earlier.then(later) == OrderChange(
        stage=OrderStage.ADD, customer_list_id="80-1", outcome=OrderOutcome(OrderStatus.SYNCED)
    )
