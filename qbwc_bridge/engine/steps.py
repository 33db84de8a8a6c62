"""The steps of a batch: for each order a request half (what to ask QuickBooks next) and a
response half (what its answer means).

An order walks CHECK → ADD → PAY_CHECK → PAY_ADD → DONE. Every add is preceded by its own
duplicate check in an earlier exchange (or earlier in the same message, which QuickBooks
processes in order), so a retried or interrupted run never adds anything twice. Steps hold
no state of their own: everything lives in the store between callbacks.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qbwc_bridge.domain import customers, mapping
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.orders import (
    OrderStage,
    OrderStatus,
    PaymentStatus,
    QueuedOrder,
    QueuedPayment,
    TxnKind,
)
from qbwc_bridge.domain.text import qb_text
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.responses import QbRecord, QbResponse
from qbwc_bridge.qbxml.status import Outcome, classify, explain, is_transient
from qbwc_bridge.store import Tx
from qbwc_bridge.store import orders as order_store

# Short request kinds kept in each exchange's request map.
CUSTOMER_QUERY = "cq"
CUSTOMER_ADD = "ca"
TXN_QUERY = "tq"
TXN_ADD = "ta"
PAYMENT_QUERY = "pq"
PAYMENT_ADD = "pa"


@dataclass
class Plan:
    """The requests of one message and what each one is for."""

    requests: list[tuple[str, build.Request]] = field(default_factory=list)
    request_map: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_ids: list[int] = field(default_factory=list)
    adds_sent: list[int] = field(default_factory=list)
    payment_adds_sent: list[tuple[int, int]] = field(default_factory=list)
    names_to_query: list[str] = field(default_factory=list)
    _names_added: set[str] = field(default_factory=set)

    def add(self, request: build.Request, **meta: Any) -> None:
        request_id = str(len(self.requests) + 1)
        self.requests.append((request_id, request))
        self.request_map[request_id] = meta

    def mark(self) -> tuple[int, int, int, int, int, frozenset[str]]:
        return (
            len(self.requests),
            len(self.order_ids),
            len(self.adds_sent),
            len(self.payment_adds_sent),
            len(self.names_to_query),
            frozenset(self._names_added),
        )

    def rollback(self, mark: tuple[int, int, int, int, int, frozenset[str]]) -> None:
        """Undo everything added since ``mark``."""
        requests, order_ids, adds, payment_adds, names, added = mark
        for request_id, _ in self.requests[requests:]:
            del self.request_map[request_id]
        del self.requests[requests:]
        del self.order_ids[order_ids:]
        del self.adds_sent[adds:]
        del self.payment_adds_sent[payment_adds:]
        del self.names_to_query[names:]
        self._names_added = set(added)

    def finish(self) -> None:
        """Look up every customer of the message in one CustomerQuery (many FullNames)."""
        if self.names_to_query:
            self.add(
                build.customer_query(*self.names_to_query), k=CUSTOMER_QUERY, n=self.names_to_query
            )

    def __len__(self) -> int:
        return len(self.requests) + (1 if self.names_to_query else 0)


def _requests_for(order: QueuedOrder, settings: CompanySettings, plan: Plan) -> int:
    """Append the order's next requests to ``plan``; returns how many it added."""
    before = len(plan)
    stage = order.stage
    if stage is OrderStage.CHECK:
        _customer_query(order, plan)
        ref_number = mapping.ref_number(order.order_number)
        plan.add(build.txn_query(order.txn_kind, ref_number), k=TXN_QUERY, o=order.id)
    elif stage is OrderStage.ADD:
        if order.customer_list_id is None and order.customer_name not in plan._names_added:
            plan._names_added.add(order.customer_name)
            rec = customers.customer_record(order.order, settings.customer_match)
            plan.add(build.customer_add(rec), k=CUSTOMER_ADD, o=order.id, n=order.customer_name)
        plan.add(build.txn_add(mapping.txn_record(order.order, settings)), k=TXN_ADD, o=order.id)
        plan.adds_sent.append(order.id)
        if mapping.payments_apply(order.txn_kind):
            # Checked right after the add, in the same message: QuickBooks runs the
            # requests in order, so this is a real check of the state after the add.
            for queued in order.payments:
                if queued.status is PaymentStatus.PENDING:
                    _payment_query(order, queued, order.customer_name, plan)
    elif stage is OrderStage.PAY_CHECK:
        customer = order.invoice_customer or order.customer_name
        for queued in order.payments:
            if queued.status is PaymentStatus.PENDING and queued.stage is OrderStage.CHECK:
                _payment_query(order, queued, customer, plan)
    elif stage is OrderStage.PAY_ADD:
        for queued in order.payments:
            if queued.status is PaymentStatus.PENDING and queued.stage is OrderStage.PAY_ADD:
                payment = mapping.payment_record(
                    order.order,
                    queued.payment,
                    customer_name=order.invoice_customer or order.customer_name,
                    applied_to_txn_id=order.qb_txn_id or "",
                )
                plan.add(build.payment_add(payment), k=PAYMENT_ADD, o=order.id, p=queued.id)
                plan.payment_adds_sent.append((queued.id, order.id))
    if len(plan) > before:
        plan.order_ids.append(order.id)
    return len(plan) - before


def _customer_query(order: QueuedOrder, plan: Plan) -> None:
    if order.customer_list_id is None and order.customer_name not in plan.names_to_query:
        plan.names_to_query.append(order.customer_name)


def _payment_query(order: QueuedOrder, queued: QueuedPayment, customer: str, plan: Plan) -> None:
    rec = mapping.payment_record(
        order.order, queued.payment, customer_name=customer, applied_to_txn_id=""
    )
    plan.add(
        build.payment_query(customer, rec.ref_number, rec.txn_date),
        k=PAYMENT_QUERY,
        o=order.id,
        p=queued.id,
    )


def plan_message(
    orders: Iterable[QueuedOrder],
    settings: CompanySettings,
    *,
    budget: int,
    suspects: Sequence[int] = (),
) -> Plan:
    """Pack the next requests of as many orders as the budget allows.

    ``orders`` may be lazy: it is read only as far as the message fills. With
    ``orders_per_message = 1``, or for a suspect from a message QuickBooks could not parse,
    the message holds exactly one order.
    """
    plan = Plan()
    waiting = (order for order in orders if order.stage is not OrderStage.DONE)
    if suspects:
        waiting = (order for order in waiting if order.id in set(suspects))
    per_message = 1 if suspects else settings.orders_per_message
    for order in waiting:
        mark = plan.mark()
        _requests_for(order, settings, plan)
        if len(plan) > budget and mark[1] > 0:
            plan.rollback(mark)  # this order goes in the next message
            break
        if per_message and len(plan.order_ids) >= per_message:
            break  # before reading another order: ``orders`` may load it from the database
    plan.finish()
    return plan


# --- response halves -------------------------------------------------------------------


@dataclass
class ResponseContext:
    """What handling one message's responses needs; lives for one callback only."""

    tx: Tx
    run_id: int
    now: datetime
    orders: dict[int, QueuedOrder]
    customer_errors: dict[str, str] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    order_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    payment_updates: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _by_customer: dict[str, list[int]] | None = None

    def orders_of(self, customer_name: str) -> list[int]:
        """The ids of the message's orders for this customer (names never change here)."""
        if self._by_customer is None:
            self._by_customer = {}
            for order in self.orders.values():
                self._by_customer.setdefault(order.customer_name, []).append(order.id)
        return self._by_customer.get(customer_name, [])

    def update_order(self, order_id: int, **values: Any) -> None:
        """Note a change; all of a message's changes are written at once by ``flush``."""
        self.order_updates.setdefault(order_id, {}).update(values)

    def update_payment(self, payment_id: int, order_id: int, **values: Any) -> None:
        self.payment_updates.setdefault(payment_id, (order_id, {}))[1].update(values)

    def flush(self) -> int:
        """Write the noted changes; returns how many orders left the run's waiting set
        (finished, or back in the queue)."""
        order_store.apply_updates(
            self.tx, self.run_id, self.now, self.order_updates, self.payment_updates
        )
        return sum(
            1
            for values in self.order_updates.values()
            if "status" in values and OrderStatus(values["status"]) is not OrderStatus.IN_PROGRESS
        )


def handle(ctx: ResponseContext, meta: dict[str, Any], response: QbResponse) -> None:
    kind = meta["k"]
    if kind == CUSTOMER_QUERY:
        _customers_found(ctx, list(meta["n"]), response)
        return
    if kind == CUSTOMER_ADD:
        _customer_added(ctx, meta["n"], response)
        return
    order = ctx.orders.get(int(meta["o"]))
    if order is None or order.id in ctx.failed:
        return
    if kind == TXN_QUERY:
        _txn_checked(ctx, order, response)
    elif kind == TXN_ADD:
        _txn_added(ctx, order, response)
    elif kind == PAYMENT_QUERY:
        _payment_checked(ctx, order, int(meta["p"]), response)
    elif kind == PAYMENT_ADD:
        _payment_added(ctx, order, int(meta["p"]), response)


def _customers_found(ctx: ResponseContext, names: list[str], response: QbResponse) -> None:
    wanted = {name.casefold(): name for name in names}
    for record in response.records:
        name = wanted.get(record.full_name.casefold())
        if name is not None and record.list_id:
            _learn_customer(ctx, name, record.list_id)


def _customer_added(ctx: ResponseContext, name: str, response: QbResponse) -> None:
    outcome = classify(response.status, response.kind)
    if outcome in (Outcome.OK, Outcome.WARNING) and response.records:
        _learn_customer(ctx, name, response.records[0].list_id)
    elif response.status.code != 3100:  # 3100: it exists after all; the add by name works
        ctx.customer_errors[name] = explain(response.status, response.kind)


def _learn_customer(ctx: ResponseContext, name: str, list_id: str) -> None:
    for order_id in ctx.orders_of(name):
        order = ctx.orders[order_id]
        if order.stage is not OrderStage.DONE:
            ctx.orders[order_id] = _replace(order, customer_list_id=list_id)
            ctx.update_order(order_id, customer_list_id=list_id)


def _replace(order: QueuedOrder, **changes: Any) -> QueuedOrder:
    return dataclasses.replace(order, **changes)


def confirmed_hits(
    order: QueuedOrder, records: Sequence[QbRecord], ref_number: str
) -> list[QbRecord]:
    """The query hits that really are this order.

    RefNumbers are not unique in QuickBooks and long order numbers share their last 11
    characters, so a hit on a cut RefNumber counts only when PONumber or Memo carries
    the whole order number.
    """
    number = order.order_number
    hits = [r for r in records if r.ref_number == ref_number and r.txn_id]
    if len(number) <= len(ref_number):
        return hits
    folded = qb_text(number)  # what the bridge wrote into PONumber and Memo
    return [r for r in hits if r.po_number == mapping.po_number(number) or folded in r.memo]


def _txn_checked(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED:
        _fail(ctx, order, response)
        return
    ref_number = mapping.ref_number(order.order_number)
    hits = confirmed_hits(order, response.records, ref_number)
    if not hits:
        ctx.update_order(order.id, stage=OrderStage.ADD)
        return
    hit = hits[0]
    customer = hit.customer_full_name or order.customer_name
    ctx.update_order(
        order.id,
        qb_txn_id=hit.txn_id,
        qb_ref_number=hit.ref_number,
        invoice_customer=customer,
    )
    _after_txn(ctx, _replace(order, qb_txn_id=hit.txn_id, invoice_customer=customer))


def _txn_added(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED or not response.records:
        customer_error = ctx.customer_errors.get(order.customer_name)
        if customer_error and response.status.code == 3140:
            _finish_error(ctx, order, customer_error, response.status.code)
        else:
            _fail(ctx, order, response)
        return
    record = response.records[0]
    ctx.update_order(
        order.id,
        qb_txn_id=record.txn_id,
        qb_ref_number=record.ref_number,
        invoice_customer=record.customer_full_name or order.customer_name,
    )
    updated = _replace(order, qb_txn_id=record.txn_id, add_sent=True)
    ctx.orders[order.id] = updated
    # With payments, the checks that follow in this message decide the next stage; if
    # their answers never come, PAY_CHECK asks again rather than adding anything twice.
    _after_txn(ctx, updated)


def _after_txn(ctx: ResponseContext, order: QueuedOrder) -> None:
    """The transaction is in QuickBooks: go on to its payments, or finish."""
    if _pending_payments(order):
        ctx.update_order(order.id, stage=OrderStage.PAY_CHECK)
        ctx.orders[order.id] = _replace(order, stage=OrderStage.PAY_CHECK)
    else:
        _finish(ctx, order)


def _pending_payments(order: QueuedOrder) -> list[QueuedPayment]:
    if not mapping.payments_apply(order.txn_kind):
        return []
    return [p for p in order.payments if p.status is PaymentStatus.PENDING]


def payment_matches(
    order: QueuedOrder, queued: QueuedPayment, records: Sequence[QbRecord]
) -> list[QbRecord]:
    """QuickBooks payments that are this payment: same reference, amount and invoice."""
    rec = mapping.payment_record(
        order.order, queued.payment, customer_name="", applied_to_txn_id=order.qb_txn_id or ""
    )
    return [
        r
        for r in records
        if r.ref_number == rec.ref_number
        and r.total_amount == queued.payment.amount
        and any(txn_id == order.qb_txn_id for txn_id, _ in r.applied_to)
    ]


def _identical_rank(order: QueuedOrder, queued: QueuedPayment) -> int:
    """How many identical payments come before this one in the order (by multiplicity)."""
    key = (queued.payment.reference_number, queued.payment.amount)
    return sum(
        1
        for other in order.payments
        if other.position < queued.position
        and (other.payment.reference_number, other.payment.amount) == key
    )


def _payment_checked(
    ctx: ResponseContext, order: QueuedOrder, payment_id: int, response: QbResponse
) -> None:
    order = ctx.orders[order.id]
    if order.qb_txn_id is None:
        return  # the add before this check failed; the order is finished already
    queued = next(p for p in order.payments if p.id == payment_id)
    if classify(response.status, response.kind) is Outcome.FAILED:
        _payment_error(ctx, order, queued, explain(response.status, response.kind))
        return
    matches = payment_matches(order, queued, response.records)
    rank = _identical_rank(order, queued)
    if rank < len(matches):
        status = PaymentStatus.SYNCED if queued.add_sent else PaymentStatus.DUPLICATE
        _set_payment(
            ctx, order, queued, status=status, stage=OrderStage.DONE, qb_txn_id=matches[rank].txn_id
        )
    else:
        _set_payment(ctx, order, queued, stage=OrderStage.PAY_ADD)
    _after_payments(ctx, ctx.orders[order.id])


def _payment_added(
    ctx: ResponseContext, order: QueuedOrder, payment_id: int, response: QbResponse
) -> None:
    order = ctx.orders[order.id]
    queued = next(p for p in order.payments if p.id == payment_id)
    if classify(response.status, response.kind) is Outcome.FAILED or not response.records:
        _payment_error(ctx, order, queued, explain(response.status, response.kind))
    else:
        _set_payment(
            ctx,
            order,
            queued,
            status=PaymentStatus.SYNCED,
            stage=OrderStage.DONE,
            qb_txn_id=response.records[0].txn_id,
        )
    _after_payments(ctx, ctx.orders[order.id])


def _set_payment(
    ctx: ResponseContext, order: QueuedOrder, queued: QueuedPayment, **values: Any
) -> None:
    ctx.update_payment(queued.id, order.id, **values)
    updated = dataclasses.replace(queued, **values)
    payments = tuple(updated if p.id == queued.id else p for p in order.payments)
    ctx.orders[order.id] = _replace(order, payments=payments)


def _payment_error(
    ctx: ResponseContext, order: QueuedOrder, queued: QueuedPayment, message: str
) -> None:
    _set_payment(
        ctx, order, queued, status=PaymentStatus.ERROR, stage=OrderStage.DONE, error=message
    )


def _after_payments(ctx: ResponseContext, order: QueuedOrder) -> None:
    stages = Counter(p.stage for p in order.payments if p.status is PaymentStatus.PENDING)
    if not stages:
        _finish(ctx, order)
    elif stages.get(OrderStage.CHECK, 0) == 0:
        ctx.update_order(order.id, stage=OrderStage.PAY_ADD)
        ctx.orders[order.id] = _replace(order, stage=OrderStage.PAY_ADD)


def _finish(ctx: ResponseContext, order: QueuedOrder) -> None:
    """Synced when this bridge added it (in this run or a lost earlier one), else duplicate."""
    status = OrderStatus.SYNCED if order.add_sent else OrderStatus.DUPLICATE
    ctx.update_order(order.id, status=status, stage=OrderStage.DONE)
    if not mapping.payments_apply(order.txn_kind):
        _settle_carried_payments(ctx, order, PaymentStatus(status.value))
    ctx.orders[order.id] = _replace(order, stage=OrderStage.DONE, status=status)


def _settle_carried_payments(
    ctx: ResponseContext, order: QueuedOrder, status: PaymentStatus
) -> None:
    """Give the payments of a transaction that takes no ReceivePayment their outcome.

    A sales receipt records its payment itself, so its payments share its outcome and
    TxnID. QuickBooks applies payments to invoices only, so a payment on a sales order or a
    credit memo needs a person.
    """
    for queued in order.payments:
        if queued.status is not PaymentStatus.PENDING:
            continue
        if order.txn_kind is TxnKind.SALES_RECEIPT:
            ctx.update_payment(
                queued.id, order.id, status=status, stage=OrderStage.DONE, qb_txn_id=order.qb_txn_id
            )
        else:
            ctx.update_payment(
                queued.id,
                order.id,
                status=PaymentStatus.ERROR,
                stage=OrderStage.DONE,
                error=(
                    f"This order became a {order.txn_kind.value}, and QuickBooks applies "
                    "payments to invoices only: record this payment in QuickBooks by hand."
                ),
            )


def _fail(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    if is_transient(response.status):
        # QuickBooks busy or locked: the order goes back to the queue for a later run.
        ctx.update_order(
            order.id,
            status=OrderStatus.PENDING,
            stage=OrderStage.CHECK,
            error=explain(response.status, response.kind),
        )
        ctx.failed.add(order.id)
        return
    _finish_error(ctx, order, explain(response.status, response.kind), response.status.code)


def _finish_error(ctx: ResponseContext, order: QueuedOrder, message: str, code: int | None) -> None:
    ctx.update_order(
        order.id, status=OrderStatus.ERROR, stage=OrderStage.DONE, error=message, error_code=code
    )
    ctx.failed.add(order.id)
    ctx.orders[order.id] = _replace(order, stage=OrderStage.DONE, status=OrderStatus.ERROR)


def fail_unreadable(ctx: ResponseContext, order: QueuedOrder, hresult: str, message: str) -> None:
    """QuickBooks could not parse a message holding only this order: the order is the culprit."""
    _finish_error(
        ctx,
        order,
        f"QuickBooks could not read the request for this order ({hresult}: {message}). "
        "Check its text fields for characters QuickBooks cannot store, fix the order and "
        "enqueue it again, or `qbwc-bridge retry` it.",
        None,
    )
