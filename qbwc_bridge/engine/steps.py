"""The steps of a batch: for each order a request half (what to ask QuickBooks next) and a
response half (what its answer means).

An order walks CHECK → ADD → PAY_CHECK → PAY_ADD → DONE. Every add is preceded by its own
duplicate check in an earlier exchange (or earlier in the same message, which QuickBooks
processes in order), so a retried or interrupted run never adds anything twice. Steps hold
no state of their own and talk to no database: a request half returns a Plan, a response
half notes typed changes (domain.orders.OrderChange / PaymentChange) in a ResponseContext,
and the unit of work (engine/run.py) hands them to the store.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from qbwc_bridge.domain import customers, mapping
from qbwc_bridge.domain.company import CompanySettings
from qbwc_bridge.domain.orders import (
    REFNUMBER_CONFLICT,
    UNPOST_REFUSED,
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
from qbwc_bridge.domain.posting import (
    NO_MAPPINGS,
    Lazy,
    MappingKind,
    Mappings,
    item_key,
    item_name_problem,
)
from qbwc_bridge.domain.records import TxnRecord
from qbwc_bridge.domain.runs import RequestKind, RequestMap, RequestPurpose
from qbwc_bridge.domain.text import qb_text
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.responses import QbRecord, QbResponse
from qbwc_bridge.qbxml.status import (
    Outcome,
    classify,
    explain,
    invalid_reference,
    is_transient,
)

# Runs an order may take before a status that "may pass on its own" (a record in use,
# 3170-3180) counts as its outcome: nothing loops forever.
MAX_RUNS = 5


@dataclass(frozen=True, slots=True)
class PlanMark:
    """How far a Plan had got, so an order that overfills the message can be taken out."""

    requests: int
    order_ids: int
    adds_sent: int
    payment_adds_sent: int
    names_to_query: int
    names_added: frozenset[str]
    items_to_query: int
    items_added: frozenset[str]
    failures: int


@dataclass(frozen=True)
class PostingContext:
    """What a request half may need of the company's posting rules (domain/posting.py),
    each read only when a step asks for it: its mappings, and the items (by item_key) a
    check found QuickBooks lacks."""

    mappings: Lazy[Mappings] = field(default_factory=lambda: Lazy.of(NO_MAPPINGS))
    missing_items: Lazy[frozenset[str]] = field(default_factory=lambda: Lazy.of(frozenset()))
    company: str = ""  # the company's name, for the commands a message suggests


@dataclass
class Plan:
    """The requests of one message and what each one is for."""

    requests: list[tuple[str, build.Request]] = field(default_factory=list)
    request_map: RequestMap = field(default_factory=dict)
    order_ids: list[int] = field(default_factory=list)
    adds_sent: list[int] = field(default_factory=list)
    payment_adds_sent: list[int] = field(default_factory=list)
    names_to_query: list[str] = field(default_factory=list)
    # Customers this message adds: a second order of the same customer must not add it again.
    names_added: set[str] = field(default_factory=set)
    # Items the message's checks ask for (item_key → name), and those its adds create.
    items_to_query: dict[str, str] = field(default_factory=dict)
    items_added: set[str] = field(default_factory=set)
    # Orders the plan found cannot be sent at all, and why: they end without a request.
    failures: dict[int, OrderChange] = field(default_factory=dict)

    def add(self, request: build.Request, purpose: RequestPurpose) -> None:
        request_id = str(len(self.requests) + 1)
        self.requests.append((request_id, request))
        self.request_map[request_id] = purpose

    def mark(self) -> PlanMark:
        return PlanMark(
            requests=len(self.requests),
            order_ids=len(self.order_ids),
            adds_sent=len(self.adds_sent),
            payment_adds_sent=len(self.payment_adds_sent),
            names_to_query=len(self.names_to_query),
            names_added=frozenset(self.names_added),
            items_to_query=len(self.items_to_query),
            items_added=frozenset(self.items_added),
            failures=len(self.failures),
        )

    def rollback(self, mark: PlanMark) -> None:
        """Undo everything added since ``mark``."""
        for request_id, _ in self.requests[mark.requests :]:
            del self.request_map[request_id]
        del self.requests[mark.requests :]
        del self.order_ids[mark.order_ids :]
        del self.adds_sent[mark.adds_sent :]
        del self.payment_adds_sent[mark.payment_adds_sent :]
        del self.names_to_query[mark.names_to_query :]
        self.names_added = set(mark.names_added)
        for key in list(self.items_to_query)[mark.items_to_query :]:
            del self.items_to_query[key]
        self.items_added = set(mark.items_added)
        for order_id in list(self.failures)[mark.failures :]:
            del self.failures[order_id]

    def finish(self) -> None:
        """Look up every customer of the message in one CustomerQuery (many FullNames), and
        every item it may have to create in one ItemQuery."""
        if self.names_to_query:
            self.add(
                build.customer_query(*self.names_to_query),
                RequestPurpose(
                    RequestKind.CUSTOMER_QUERY, customer_names=tuple(self.names_to_query)
                ),
            )
        if self.items_to_query:
            names = tuple(self.items_to_query.values())
            self.add(
                build.item_query(*names),
                RequestPurpose(RequestKind.ITEM_QUERY, item_names=names),
            )

    def __len__(self) -> int:
        return (
            len(self.requests)
            + (1 if self.names_to_query else 0)
            + (1 if self.items_to_query else 0)
        )


def _requests_for(
    order: QueuedOrder,
    settings: CompanySettings,
    plan: Plan,
    posting: PostingContext | None = None,
) -> int:
    """Append the order's next requests to ``plan``; returns how many it added."""
    posting = posting or PostingContext()
    before = len(plan)
    stage = order.stage
    if order.unpost:
        _unpost_requests(order, plan)
    elif stage is OrderStage.CHECK:
        _customer_query(order, plan)
        if settings.create_missing_items != "off":
            _item_query(order, plan, posting)
        ref_number = mapping.txn_refs(order.order_number).ref_number
        plan.add(
            build.txn_query(order.txn_kind, ref_number),
            RequestPurpose(RequestKind.TXN_QUERY, order_id=order.id),
        )
    elif stage is OrderStage.ADD:
        rules = order_settings(order, settings)
        mappings = posting.mappings.get()
        if not _item_adds(order, rules, plan, posting):
            return 0  # the order cannot be added: the plan notes why
        if order.customer_list_id is None and order.customer_name not in plan.names_added:
            plan.names_added.add(order.customer_name)
            rec = customers.customer_record(order.order, rules.customer_match)
            plan.add(
                build.customer_add(rec),
                RequestPurpose(
                    RequestKind.CUSTOMER_ADD,
                    order_id=order.id,
                    customer_names=(order.customer_name,),
                ),
            )
        plan.add(
            build.txn_add(txn_record(order, rules, mappings)),
            RequestPurpose(RequestKind.TXN_ADD, order_id=order.id),
        )
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
                    mappings=posting.mappings.get(),
                )
                plan.add(
                    build.payment_add(payment),
                    RequestPurpose(
                        RequestKind.PAYMENT_ADD, order_id=order.id, payment_id=queued.id
                    ),
                )
                plan.payment_adds_sent.append(queued.id)
    if len(plan) > before:
        plan.order_ids.append(order.id)
    return len(plan) - before


def order_settings(order: QueuedOrder, settings: CompanySettings) -> CompanySettings:
    """The settings an order is mapped with: a daily summary goes to its one customer."""
    if order.summary_memo is None:
        return settings
    return dataclasses.replace(settings, customer_match=f"fixed:{order.order.customer_name}")


def txn_record(order: QueuedOrder, settings: CompanySettings, mappings: Mappings) -> TxnRecord:
    """The transaction an order becomes (a daily summary with its own Memo)."""
    record = mapping.txn_record(order.order, settings, mappings)
    if order.summary_memo is not None:
        record = dataclasses.replace(record, memo=order.summary_memo)
    return record


def _item_query(order: QueuedOrder, plan: Plan, posting: PostingContext) -> None:
    """Ask for the order's unmapped SKUs in the message's one ItemQuery."""
    mappings = posting.mappings.get()
    for line in mapping.unmapped_items(order.order, mappings):
        name = mappings.item(line.sku)
        plan.items_to_query.setdefault(item_key(name), name)


def _item_adds(
    order: QueuedOrder, settings: CompanySettings, plan: Plan, posting: PostingContext
) -> bool:
    """Add, before the order's transaction, each of its items QuickBooks was found to lack
    (once per message: another order may add it first). False, and the order's failure
    noted in the plan, when such an item cannot be named after its SKU."""
    if settings.create_missing_items == "off":
        return True
    missing = posting.missing_items.get()
    if not missing:
        return True
    mappings = posting.mappings.get()
    needed = [
        line
        for line in mapping.unmapped_items(order.order, mappings)
        if item_key(mappings.item(line.sku)) in missing
    ]
    for line in needed:
        name = mappings.item(line.sku)
        problem = item_name_problem(name)
        if problem is not None:
            plan.failures[order.id] = _failure(
                f"SKU {line.sku!r} is not an item in QuickBooks, and the bridge cannot add it "
                f"as one: {problem}. Map it to an item QuickBooks has: "
                + _map_command(posting.company, MappingKind.SKU, line.sku, "QUICKBOOKS ITEM")
                + ", then "
                + _retry_command(posting.company, order),
                None,
            )
            return False
    for line in needed:
        name = mappings.item(line.sku)
        if item_key(name) in plan.items_added:
            continue
        plan.items_added.add(item_key(name))
        plan.add(
            build.item_non_inventory_add(mapping.item_record(line, settings.income_account)),
            RequestPurpose(RequestKind.ITEM_ADD, order_id=order.id, item_names=(name,)),
        )
    return True


def _failure(message: str, code: int | None) -> OrderChange:
    return OrderChange(outcome=OrderOutcome(OrderStatus.ERROR, message, code))


def _customer_query(order: QueuedOrder, plan: Plan) -> None:
    if order.customer_list_id is None and order.customer_name not in plan.names_to_query:
        plan.names_to_query.append(order.customer_name)


def _payment_query(order: QueuedOrder, queued: QueuedPayment, customer: str, plan: Plan) -> None:
    rec = mapping.payment_record(
        order.order, queued.payment, customer_name=customer, applied_to_txn_id=""
    )
    plan.add(
        build.payment_query(customer, rec.ref_number, rec.txn_date),
        RequestPurpose(RequestKind.PAYMENT_QUERY, order_id=order.id, payment_id=queued.id),
    )


def plan_message(
    orders: Iterable[QueuedOrder],
    settings: CompanySettings,
    *,
    budget: int,
    suspects: Sequence[int] = (),
    posting: PostingContext | None = None,
) -> Plan:
    """Pack the next requests of as many orders as the budget allows.

    ``orders`` may be lazy: it is read only as far as the message fills. With
    ``orders_per_message = 1``, or for a suspect from a message QuickBooks could not parse,
    the message holds exactly one order. An order that cannot be sent at all ends in
    ``plan.failures`` instead.
    """
    posting = posting or PostingContext()
    plan = Plan()
    waiting = (order for order in orders if order.stage is not OrderStage.DONE)
    if suspects:
        waiting = (order for order in waiting if order.id in set(suspects))
    per_message = 1 if suspects else settings.orders_per_message
    for order in waiting:
        mark = plan.mark()
        _requests_for(order, settings, plan, posting)
        if len(plan) > budget and mark.order_ids > 0:
            plan.rollback(mark)  # this order goes in the next message
            break
        if per_message and len(plan.order_ids) >= per_message:
            break  # before reading another order: ``orders`` may load it from the database
    plan.finish()
    return plan


# --- response halves -------------------------------------------------------------------


@dataclass
class ResponseContext:
    """What handling one message's answers needs, and the changes they lead to.

    Lives for one callback only. ``orders`` is kept up to date as answers are handled, so
    a later answer in the message sees what an earlier one taught; ``order_changes`` and
    ``payment_changes`` are what the unit of work hands the store.
    """

    orders: dict[int, QueuedOrder]
    company: str = ""  # the company's name, for the commands an error message suggests
    settings: CompanySettings = field(default_factory=CompanySettings)
    # Read by the unit of work only when an answer names a missing list entry (3140), so a
    # message can say which `map set` fixes it.
    mappings: Mappings = NO_MAPPINGS
    customer_errors: dict[str, str] = field(default_factory=dict)
    # What the answers taught about items (by item_key: the name), for the store to note;
    # why an item add was refused, for the orders whose lines needed it.
    items_present: dict[str, str] = field(default_factory=dict)
    items_absent: dict[str, str] = field(default_factory=dict)
    item_errors: dict[str, str] = field(default_factory=dict)
    # An undo's checks of an order's payments, until the check of its transaction decides.
    unpost_changed: dict[int, list[str]] = field(default_factory=dict)
    unpost_gone: dict[int, set[int]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    # Orders an answer of which did not answer what was asked: they are checked again.
    mismatched: set[int] = field(default_factory=set)
    order_changes: dict[int, OrderChange] = field(default_factory=dict)
    payment_changes: dict[int, PaymentChange] = field(default_factory=dict)
    _by_customer: dict[str, list[int]] | None = None

    def orders_of(self, customer_name: str) -> list[int]:
        """The ids of the message's orders for this customer (names never change here)."""
        if self._by_customer is None:
            self._by_customer = {}
            for order in self.orders.values():
                self._by_customer.setdefault(order.customer_name, []).append(order.id)
        return self._by_customer.get(customer_name, [])

    def change_order(self, order_id: int, change: OrderChange) -> None:
        earlier = self.order_changes.get(order_id)
        self.order_changes[order_id] = earlier.then(change) if earlier else change

    def change_payment(self, payment_id: int, change: PaymentChange) -> None:
        earlier = self.payment_changes.get(payment_id)
        self.payment_changes[payment_id] = earlier.then(change) if earlier else change

    def left_run(self) -> int:
        """How many orders these changes take out of the run's waiting set (an outcome:
        finished, or back in the queue)."""
        return sum(1 for change in self.order_changes.values() if change.outcome is not None)


_ANSWERS = {
    RequestKind.CUSTOMER_QUERY: ("CustomerQuery", "CustomerRet"),
    RequestKind.CUSTOMER_ADD: ("CustomerAdd", "CustomerRet"),
    RequestKind.PAYMENT_QUERY: ("ReceivePaymentQuery", "ReceivePaymentRet"),
    RequestKind.PAYMENT_ADD: ("ReceivePaymentAdd", "ReceivePaymentRet"),
    RequestKind.ITEM_ADD: ("ItemNonInventoryAdd", "ItemNonInventoryRet"),
}


def answers_what_was_asked(
    purpose: RequestPurpose, response: QbResponse, order: QueuedOrder | None
) -> bool:
    """Is ``response`` an answer to the request ``purpose`` describes, and are its records of
    the kind asked for? A mismatch is a protocol error, never an outcome."""
    if purpose.kind in (RequestKind.TXN_QUERY, RequestKind.TXN_ADD):
        if order is None:
            return False
        kind = order.txn_kind.value
        verb = "Query" if purpose.kind is RequestKind.TXN_QUERY else "Add"
        expected = (f"{kind}{verb}", f"{kind}Ret")
    elif purpose.kind is RequestKind.ITEM_QUERY:
        return response.kind == "ItemQuery" and all(
            r.ret_kind.startswith("Item") and r.ret_kind.endswith("Ret") for r in response.records
        )
    elif purpose.kind is RequestKind.TXN_DEL:
        return response.kind == "TxnDel" and not response.records
    elif purpose.kind is RequestKind.UNPOST_CHECK:
        if order is None:
            return False
        if purpose.payment_id is not None:
            expected = ("ReceivePaymentQuery", "ReceivePaymentRet")
        else:
            expected = (f"{order.txn_kind.value}Query", f"{order.txn_kind.value}Ret")
    elif purpose.kind in _ANSWERS:
        expected = _ANSWERS[purpose.kind]
    else:
        return False
    request, ret = expected
    return response.kind == request and all(r.ret_kind == ret for r in response.records)


def handle(ctx: ResponseContext, purpose: RequestPurpose, response: QbResponse) -> None:
    """The response half of one request: hand its answer to the step that asked."""
    kind = purpose.kind
    order = ctx.orders.get(purpose.order_id) if purpose.order_id is not None else None
    if not answers_what_was_asked(purpose, response, order):
        if order is not None:
            ctx.mismatched.add(order.id)  # checked again: nothing is recorded on this answer
        return
    if kind is RequestKind.CUSTOMER_QUERY:
        _customers_found(ctx, purpose.customer_names, response)
        return
    if kind is RequestKind.CUSTOMER_ADD:
        _customer_added(ctx, purpose.customer_names[0], response)
        return
    if kind is RequestKind.ITEM_QUERY:
        _items_found(ctx, purpose.item_names, response)
        return
    if kind is RequestKind.ITEM_ADD:
        _item_added(ctx, order, purpose.item_names[0], response)
        return
    if order is None or order.id in ctx.mismatched:
        return
    if kind is RequestKind.TXN_DEL and purpose.payment_id is not None:
        # Even for an order that failed meanwhile: a payment deleted is gone.
        _payment_deleted(ctx, order, purpose.payment_id, response)
        return
    if order.id in ctx.failed:
        return
    if kind is RequestKind.UNPOST_CHECK:
        _unpost_checked(ctx, order, purpose.payment_id, response)
        return
    if kind is RequestKind.TXN_DEL:
        _txn_deleted(ctx, order, response)
        return
    if kind is RequestKind.TXN_QUERY:
        _txn_checked(ctx, order, response)
    elif kind is RequestKind.TXN_ADD:
        _txn_added(ctx, order, response)
    elif kind is RequestKind.PAYMENT_QUERY and purpose.payment_id is not None:
        _payment_checked(ctx, order, purpose.payment_id, response)
    elif kind is RequestKind.PAYMENT_ADD and purpose.payment_id is not None:
        _payment_added(ctx, order, purpose.payment_id, response)


def _customers_found(ctx: ResponseContext, names: Sequence[str], response: QbResponse) -> None:
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
            ctx.orders[order_id] = dataclasses.replace(order, customer_list_id=list_id)
            ctx.change_order(order_id, OrderChange(customer_list_id=list_id))


def is_this_order(order: QueuedOrder, record: QbRecord) -> bool:
    """Is this QuickBooks transaction (with the order's RefNumber) the order itself?

    RefNumbers are not unique in QuickBooks: a bookkeeper's invoice #1001 is not web order
    1001, and long order numbers share their last 11 characters. It is the order when its
    PONumber or Memo carries the whole order number (what the bridge writes), or, for a
    transaction another tool entered, when its customer and its total both match.
    """
    number = qb_text(order.order_number)  # as the bridge wrote it
    refs = mapping.txn_refs(order.order_number)
    if refs.po_number and record.po_number == refs.po_number:
        return True
    if order.summary_memo is not None:
        # A daily summary's Memo names it: "Amazon daily summary S240304K7Q0 of ...".
        pattern = r"(?i)\bsummary " + re.escape(refs.ref_number) + r"(?!\w)"
        return re.search(pattern, record.memo) is not None
    if re.search(r"(?i)\border " + re.escape(number) + r"(?!\w)", record.memo):
        return True
    return (
        bool(record.customer_full_name)
        and record.customer_full_name.casefold() == order.customer_name.casefold()
        and record.total_amount == order.order.order_total
    )


def classify_hits(
    order: QueuedOrder, records: Sequence[QbRecord]
) -> tuple[list[QbRecord], list[QbRecord]]:
    """The query's transactions with the order's RefNumber: (this order, others).

    A person's resolution of an earlier conflict decides for the others: as a duplicate,
    any transaction with the RefNumber is this order; to add anyway, none of them is.
    """
    ref_number = mapping.txn_refs(order.order_number).ref_number
    candidates = [r for r in records if r.ref_number == ref_number and r.txn_id]
    if order.resolution is Resolution.DUPLICATE:
        return candidates, []
    mine = [r for r in candidates if is_this_order(order, r)]
    others = [r for r in candidates if r not in mine]
    return mine, ([] if order.resolution is Resolution.ADD else others)


def conflict_message(order: QueuedOrder, record: QbRecord, company: str) -> str:
    """What a person reads when another transaction has the order's RefNumber."""
    kind = record.ret_kind.removesuffix("Ret") or order.txn_kind.value
    total = f"{record.total_amount:.2f}" if record.total_amount is not None else "unknown"
    dated = record.txn_date.isoformat() if record.txn_date else "no date"
    command = (
        f"qbwc-bridge resolve --company {shlex.quote(company)} {shlex.quote(order.order_number)}"
    )
    return (
        f"RefNumber conflict: QuickBooks already has {kind} {record.ref_number} "
        f"(customer '{record.customer_full_name or '?'}', total {total}, dated {dated}), "
        "which does not carry this order's number and is not for the same customer and "
        "total, so it may be someone else's transaction. If it is this order, run "
        f"`{command} --as-duplicate`; if it is not, run `{command} --add-anyway` to add "
        "this order too (QuickBooks allows a repeated RefNumber)."
    )


def _txn_checked(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED:
        _fail(ctx, order, response)
        return
    hits, others = classify_hits(order, response.records)
    if not hits and others:
        message = conflict_message(order, others[0], ctx.company)
        _finish_error(ctx, order, message, REFNUMBER_CONFLICT)
        return
    if not hits:
        ctx.change_order(order.id, OrderChange(stage=OrderStage.ADD))
        return
    hit = hits[0]
    customer = hit.customer_full_name or order.customer_name
    # An add of the bridge's whose answer was lost: QuickBooks has it as the add left it.
    link = TxnLink(hit.txn_id, hit.ref_number, customer, hit.edit_sequence, hit.time_modified)
    ctx.change_order(order.id, OrderChange(txn=link))
    _after_txn(ctx, dataclasses.replace(order, qb_txn_id=hit.txn_id, invoice_customer=customer))


def _txn_added(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED or not response.records:
        customer_error = ctx.customer_errors.get(order.customer_name)
        reference = invalid_reference(response.status)
        item_error = (
            ctx.item_errors.get(item_key(reference[1]))
            if reference is not None and _list_is(reference[0], "Item")
            else None
        )
        if item_error:
            _finish_error(ctx, order, item_error, response.status.code)
        elif customer_error and response.status.code == 3140:
            _finish_error(ctx, order, customer_error, response.status.code)
        else:
            _fail(ctx, order, response)
        return
    record = response.records[0]
    customer = record.customer_full_name or order.customer_name
    link = TxnLink(
        record.txn_id, record.ref_number, customer, record.edit_sequence, record.time_modified
    )
    ctx.change_order(order.id, OrderChange(txn=link))
    updated = dataclasses.replace(order, qb_txn_id=record.txn_id, add_sent=True)
    ctx.orders[order.id] = updated
    # With payments, the checks that follow in this message decide the next stage; if
    # their answers never come, PAY_CHECK asks again rather than adding anything twice.
    _after_txn(ctx, updated)


def _after_txn(ctx: ResponseContext, order: QueuedOrder) -> None:
    """The transaction is in QuickBooks: go on to its payments, or finish."""
    if _pending_payments(order):
        ctx.change_order(order.id, OrderChange(stage=OrderStage.PAY_CHECK))
        ctx.orders[order.id] = dataclasses.replace(order, stage=OrderStage.PAY_CHECK)
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
        found = matches[rank]
        outcome = PaymentOutcome(
            status,
            found.txn_id,
            edit_sequence=found.edit_sequence,
            time_modified=found.time_modified,
        )
        _set_payment(ctx, order, queued, outcome=outcome)
    else:
        _set_payment(ctx, order, queued, stage=OrderStage.PAY_ADD)
    _after_payments(ctx, ctx.orders[order.id])


def _payment_added(
    ctx: ResponseContext, order: QueuedOrder, payment_id: int, response: QbResponse
) -> None:
    order = ctx.orders[order.id]
    queued = next(p for p in order.payments if p.id == payment_id)
    if classify(response.status, response.kind) is Outcome.FAILED or not response.records:
        _payment_error(ctx, order, queued, _explain(ctx, order, response))
    else:
        added = response.records[0]
        outcome = PaymentOutcome(
            PaymentStatus.SYNCED,
            added.txn_id,
            edit_sequence=added.edit_sequence,
            time_modified=added.time_modified,
        )
        _set_payment(ctx, order, queued, outcome=outcome)
    _after_payments(ctx, ctx.orders[order.id])


def _set_payment(
    ctx: ResponseContext,
    order: QueuedOrder,
    queued: QueuedPayment,
    *,
    stage: OrderStage | None = None,
    outcome: PaymentOutcome | None = None,
) -> None:
    ctx.change_payment(queued.id, PaymentChange(order.id, stage=stage, outcome=outcome))
    if outcome is not None:
        updated = dataclasses.replace(
            queued,
            status=outcome.status,
            stage=OrderStage.DONE,
            qb_txn_id=outcome.qb_txn_id if outcome.qb_txn_id is not None else queued.qb_txn_id,
            error=outcome.error if outcome.error is not None else queued.error,
        )
    else:
        updated = dataclasses.replace(queued, stage=stage or queued.stage)
    payments = tuple(updated if p.id == queued.id else p for p in order.payments)
    ctx.orders[order.id] = dataclasses.replace(order, payments=payments)


def _payment_error(
    ctx: ResponseContext, order: QueuedOrder, queued: QueuedPayment, message: str
) -> None:
    _set_payment(ctx, order, queued, outcome=PaymentOutcome(PaymentStatus.ERROR, error=message))


def _after_payments(ctx: ResponseContext, order: QueuedOrder) -> None:
    stages = Counter(p.stage for p in order.payments if p.status is PaymentStatus.PENDING)
    if not stages:
        _finish(ctx, order)
    elif stages.get(OrderStage.CHECK, 0) == 0:
        ctx.change_order(order.id, OrderChange(stage=OrderStage.PAY_ADD))
        ctx.orders[order.id] = dataclasses.replace(order, stage=OrderStage.PAY_ADD)


def _finish(ctx: ResponseContext, order: QueuedOrder) -> None:
    """Synced when this bridge added it (in this run or a lost earlier one), else duplicate."""
    status = OrderStatus.SYNCED if order.add_sent else OrderStatus.DUPLICATE
    ctx.change_order(order.id, OrderChange(outcome=OrderOutcome(status)))
    if not mapping.payments_apply(order.txn_kind):
        _settle_carried_payments(ctx, order, PaymentStatus(status.value))
    ctx.orders[order.id] = dataclasses.replace(order, stage=OrderStage.DONE, status=status)


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
            outcome = PaymentOutcome(status, order.qb_txn_id)
        else:
            outcome = PaymentOutcome(
                PaymentStatus.ERROR,
                error=(
                    f"This order became a {order.txn_kind.value}, and QuickBooks applies "
                    "payments to invoices only: record this payment in QuickBooks by hand."
                ),
            )
        ctx.change_payment(queued.id, PaymentChange(order.id, outcome=outcome))


def _fail(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    message = _explain(ctx, order, response)
    if is_transient(response.status) and order.attempts < MAX_RUNS:
        # QuickBooks busy or locked: the order goes back to the queue for a later run.
        ctx.change_order(order.id, OrderChange(outcome=OrderOutcome(OrderStatus.PENDING, message)))
        ctx.failed.add(order.id)
        return
    if is_transient(response.status):
        # The same answer run after run: it is not passing on its own.
        status = response.status
        message = (
            f"QuickBooks gave this answer in {order.attempts} runs in a row, so the bridge "
            "stopped trying: fix the cause in QuickBooks (a record someone keeps open, a "
            f"damaged list), then `qbwc-bridge retry` the order. QuickBooks error "
            f"{status.code}: {status.message}"
        )
    _finish_error(ctx, order, message, response.status.code)


def _finish_error(ctx: ResponseContext, order: QueuedOrder, message: str, code: int | None) -> None:
    ctx.change_order(order.id, OrderChange(outcome=OrderOutcome(OrderStatus.ERROR, message, code)))
    ctx.failed.add(order.id)
    ctx.orders[order.id] = dataclasses.replace(
        order, stage=OrderStage.DONE, status=OrderStatus.ERROR
    )


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


# --- items the bridge adds (create_missing_items) ---------------------------------------


def _items_found(ctx: ResponseContext, names: Sequence[str], response: QbResponse) -> None:
    """The message's ItemQuery: which of its names QuickBooks has (a failed query teaches
    nothing: no item is added on a guess)."""
    if classify(response.status, response.kind) is Outcome.FAILED:
        return
    found = {item_key(record.full_name) for record in response.records if record.full_name}
    for name in names:
        key = item_key(name)
        if key in found:
            ctx.items_present[key] = name
        else:
            ctx.items_absent[key] = name


def _item_added(
    ctx: ResponseContext, order: QueuedOrder | None, name: str, response: QbResponse
) -> None:
    key = item_key(name)
    outcome = classify(response.status, response.kind)
    # 3100: the name is in use after all (added meanwhile): the transaction can use it.
    if outcome in (Outcome.OK, Outcome.WARNING) or response.status.code == 3100:
        ctx.items_present[key] = name
        return
    message = (
        f"QuickBooks refused to add the item '{name}' for this order's SKU: "
        f"{explain(response.status, response.kind)}"
    )
    ctx.item_errors[key] = message
    if order is None or order.id in ctx.failed or order.id in ctx.mismatched:
        return
    if is_transient(response.status):
        _fail(ctx, order, response)
    else:
        _finish_error(ctx, order, message, response.status.code)


# --- what a person can do about a missing list entry (3140) ------------------------------


def _explain(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> str:
    """QuickBooks' status as a person can act on it; for a missing list entry, the exact
    command that fixes it."""
    message = explain(response.status, response.kind)
    hint = reference_hint(ctx, order, response)
    return f"{message}. {hint}" if hint else message


def _list_is(list_name: str, wanted: str) -> bool:
    return list_name.replace(" ", "").casefold() == wanted.casefold()


def _map_command(company: str, kind: MappingKind, source: str, target: str) -> str:
    return (
        f"`qbwc-bridge map set --company {shlex.quote(company)} {kind.value} "
        f"{shlex.quote(source)} {shlex.quote(target)}`"
    )


def _retry_command(company: str, order: QueuedOrder) -> str:
    return f"`qbwc-bridge retry --company {shlex.quote(company)} {shlex.quote(order.order_number)}`"


def reference_hint(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> str:
    """Which mapping (or setting) names the list entry a 3140 says QuickBooks lacks, and the
    command that fixes it; "" for any other answer."""
    reference = invalid_reference(response.status)
    if reference is None:
        return ""
    list_name, value = reference
    wanted = value.strip().casefold()
    company, mappings = ctx.company, ctx.mappings
    retry = "then " + _retry_command(company, order)

    def mapped_or_named(kind: MappingKind, sources: Sequence[str], what: str) -> str:
        for source in sources:
            target = mappings.target(kind, source)
            if target is not None and target.casefold() == wanted:
                return (
                    f"{what} {source!r} is mapped to it: create it in QuickBooks, or map "
                    f"{source!r} to one QuickBooks has: "
                    + _map_command(company, kind, source, "QUICKBOOKS NAME")
                    + f", {retry}"
                )
        for source in sources:
            if mappings.target(kind, source) is None:
                return (
                    f"Create it in QuickBooks, or map {what} {source!r} to one QuickBooks has: "
                    + _map_command(company, kind, source, "QUICKBOOKS NAME")
                    + f", {retry}"
                )
        return ""

    source = order.order
    if _list_is(list_name, "Item"):
        for key in ("shipping_item", "discount_item", "tax_item"):
            if str(getattr(ctx.settings, key)).strip().casefold() == wanted:
                return (
                    f"It is the company's {key} setting: create the item in QuickBooks, or "
                    f"`qbwc-bridge company set {shlex.quote(company)} {key} 'QUICKBOOKS ITEM'`, "
                    f"{retry}"
                )
        for line in source.lines:
            target = mappings.target(MappingKind.SKU, line.sku)
            if target is not None and target.casefold() == wanted:
                return (
                    f"SKU {line.sku!r} is mapped to it: create the item in QuickBooks, or map "
                    "the SKU to an item QuickBooks has: "
                    + _map_command(company, MappingKind.SKU, line.sku, "QUICKBOOKS ITEM")
                    + f", {retry}"
                )
        for line in source.lines:
            if mappings.item(line.sku).casefold() == wanted:
                adds = (
                    ""
                    if ctx.settings.create_missing_items != "off"
                    else " (or let the bridge add such items: `qbwc-bridge company set "
                    f"{shlex.quote(company)} create_missing_items non_inventory`)"
                )
                return (
                    "Map the SKU to an item QuickBooks has: "
                    + _map_command(company, MappingKind.SKU, line.sku, "QUICKBOOKS ITEM")
                    + f", {retry}{adds}"
                )
        return ""
    if _list_is(list_name, "PaymentMethod"):
        cards = [source.credit_card_name, *(p.credit_card_name for p in source.payments)]
        names = [card for card in dict.fromkeys(cards) if card.strip()]
        return mapped_or_named(MappingKind.PAYMENT_METHOD, names, "the card name")
    if _list_is(list_name, "ShipMethod"):
        return mapped_or_named(
            MappingKind.SHIPPING_METHOD, [source.shipping_method], "the shipping method"
        )
    if _list_is(list_name, "Class"):
        return mapped_or_named(MappingKind.CLASS, [source.channel_name], "the channel")
    return ""


# --- undo (`unpost`) --------------------------------------------------------------------
# An order to unpost walks CHECK (query each payment the bridge added, then its
# transaction, by TxnID) → PAY_ADD (TxnDel each payment) → ADD (TxnDel the transaction) →
# unposted. Only what the bridge added is deleted, and only if QuickBooks still has it as
# the bridge's add left it: if anything changed, nothing of the order is deleted.


def own_payments(order: QueuedOrder) -> list[QueuedPayment]:
    """The payments the bridge added for the order and has not deleted (a sales receipt's
    payments are the receipt itself)."""
    return [
        p
        for p in order.payments
        if p.status is PaymentStatus.SYNCED and p.qb_txn_id and p.qb_txn_id != order.qb_txn_id
    ]


def _unpost_requests(order: QueuedOrder, plan: Plan) -> None:
    if order.stage is OrderStage.CHECK:
        for queued in own_payments(order):
            plan.add(
                build.payment_query_by_id(queued.qb_txn_id or ""),
                RequestPurpose(RequestKind.UNPOST_CHECK, order_id=order.id, payment_id=queued.id),
            )
        plan.add(
            build.txn_query_by_id(order.txn_kind, order.qb_txn_id or ""),
            RequestPurpose(RequestKind.UNPOST_CHECK, order_id=order.id),
        )
    elif order.stage is OrderStage.PAY_ADD:
        for queued in own_payments(order):
            plan.add(
                build.txn_del(build.TXN_DEL_PAYMENT, queued.qb_txn_id or ""),
                RequestPurpose(RequestKind.TXN_DEL, order_id=order.id, payment_id=queued.id),
            )
    elif order.stage is OrderStage.ADD:
        plan.add(
            build.txn_del(order.txn_kind.value, order.qb_txn_id or ""),
            RequestPurpose(RequestKind.TXN_DEL, order_id=order.id),
        )


def _gone(response: QbResponse) -> bool:
    """Does the answer say QuickBooks no longer has the record (3120 to a TxnID)?"""
    outcome = classify(response.status, response.kind)
    return (
        outcome is Outcome.ABSENT
        or response.status.code == 3120
        or (outcome in (Outcome.OK, Outcome.WARNING) and not response.records)
    )


def _describe_txn(order: QueuedOrder) -> str:
    number = order.qb_ref_number or mapping.txn_refs(order.order_number).ref_number
    return f"{order.txn_kind.value} {number} (TxnID {order.qb_txn_id})"


def _describe_payment(queued: QueuedPayment) -> str:
    payment = queued.payment
    reference = f" {payment.reference_number}" if payment.reference_number else ""
    return f"payment{reference} of {payment.amount:.2f} (TxnID {queued.qb_txn_id})"


def _change_of(
    what: str, edit_sequence: str | None, time_modified: str | None, record: QbRecord
) -> str | None:
    """How QuickBooks' record differs from what the bridge's add left, or None."""
    if not edit_sequence and not time_modified:
        return f"{what}: the bridge kept no trace of how it added it, so cannot tell"
    if (edit_sequence and record.edit_sequence != edit_sequence) or (
        time_modified and record.time_modified and record.time_modified != time_modified
    ):
        return f"{what} was changed in QuickBooks (last modified {record.time_modified or '?'})"
    return None


def _unpost_checked(
    ctx: ResponseContext, order: QueuedOrder, payment_id: int | None, response: QbResponse
) -> None:
    order = ctx.orders[order.id]
    gone = _gone(response)
    if not gone and classify(response.status, response.kind) is Outcome.FAILED:
        _fail(ctx, order, response)
        return
    changed = ctx.unpost_changed.setdefault(order.id, [])
    if payment_id is not None:
        queued = next(p for p in order.payments if p.id == payment_id)
        if gone:
            ctx.unpost_gone.setdefault(order.id, set()).add(payment_id)
        else:
            change = _change_of(
                _describe_payment(queued),
                queued.qb_edit_sequence,
                queued.qb_time_modified,
                response.records[0],
            )
            if change:
                changed.append(change)
        return
    # The transaction's check comes last: it decides for the whole order.
    if not gone:
        change = _change_of(
            _describe_txn(order),
            order.qb_edit_sequence,
            order.qb_time_modified,
            response.records[0],
        )
        if change:
            changed.append(change)
    if changed:
        _finish_error(ctx, order, _refusal(ctx, order, changed), UNPOST_REFUSED)
        return
    for queued in own_payments(order):
        if queued.id in ctx.unpost_gone.get(order.id, set()):
            _set_payment(ctx, order, queued, outcome=PaymentOutcome(PaymentStatus.UNPOSTED))
            order = ctx.orders[order.id]
    if own_payments(order):
        _set_stage(ctx, order, OrderStage.PAY_ADD)
    elif gone:
        _unposted(ctx, order)  # nothing of it is left in QuickBooks
    else:
        _set_stage(ctx, order, OrderStage.ADD)


def _refusal(ctx: ResponseContext, order: QueuedOrder, changed: Sequence[str]) -> str:
    company, number = shlex.quote(ctx.company), shlex.quote(order.order_number)
    return (
        "Not unposted, and nothing of it was deleted: "
        + "; ".join(changed)
        + ". The bridge deletes only what QuickBooks still has as the bridge added it. If it "
        "should go anyway, delete it in QuickBooks by hand, then "
        f"`qbwc-bridge retry --company {company} {number}` (the bridge then finds it gone and "
        f"marks the order unposted); to keep it, `qbwc-bridge unpost --company {company} "
        f"{number} --cancel`."
    )


def _set_stage(ctx: ResponseContext, order: QueuedOrder, stage: OrderStage) -> None:
    ctx.change_order(order.id, OrderChange(stage=stage))
    ctx.orders[order.id] = dataclasses.replace(order, stage=stage)


def _payment_deleted(
    ctx: ResponseContext, order: QueuedOrder, payment_id: int, response: QbResponse
) -> None:
    order = ctx.orders[order.id]
    queued = next(p for p in order.payments if p.id == payment_id)
    outcome = classify(response.status, response.kind)
    if outcome in (Outcome.OK, Outcome.WARNING) or response.status.code == 3120:
        _set_payment(ctx, order, queued, outcome=PaymentOutcome(PaymentStatus.UNPOSTED))
        order = ctx.orders[order.id]
        if order.id not in ctx.failed and not own_payments(order):
            _set_stage(ctx, order, OrderStage.ADD)
        return
    if order.id in ctx.failed:
        return
    if is_transient(response.status):
        _fail(ctx, order, response)
        return
    _finish_error(
        ctx,
        order,
        f"QuickBooks refused to delete the {_describe_payment(queued)}, so the "
        f"{order.txn_kind.value} was not deleted: {explain(response.status, response.kind)}",
        response.status.code,
    )


def _txn_deleted(ctx: ResponseContext, order: QueuedOrder, response: QbResponse) -> None:
    order = ctx.orders[order.id]
    outcome = classify(response.status, response.kind)
    if outcome in (Outcome.OK, Outcome.WARNING) or response.status.code == 3120:
        _unposted(ctx, order)
        return
    if is_transient(response.status):
        _fail(ctx, order, response)
        return
    _finish_error(
        ctx,
        order,
        f"QuickBooks refused to delete {_describe_txn(order)}: "
        f"{explain(response.status, response.kind)}",
        response.status.code,
    )


def _unposted(ctx: ResponseContext, order: QueuedOrder) -> None:
    """Nothing the bridge added for the order is left in QuickBooks: the order and the
    payments that were its transaction (a sales receipt's) are unposted."""
    for queued in order.payments:
        if queued.status is PaymentStatus.SYNCED and queued.qb_txn_id == order.qb_txn_id:
            outcome = PaymentOutcome(PaymentStatus.UNPOSTED)
            ctx.change_payment(queued.id, PaymentChange(order.id, outcome=outcome))
    ctx.change_order(order.id, OrderChange(outcome=OrderOutcome(OrderStatus.UNPOSTED)))
    ctx.orders[order.id] = dataclasses.replace(
        order, stage=OrderStage.DONE, status=OrderStatus.UNPOSTED
    )
