"""The posting rules' part of the unit of work (engine/run.py): what a callback reads for
them (mappings, missing items) only when a step needs it, and what it writes after (items
learnt, summaries formed and settled, txn-types mapped)."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime

from qbwc_bridge.domain import customers, mapping, summaries
from qbwc_bridge.domain.company import Company, CompanySettings
from qbwc_bridge.domain.orders import (
    OrderStatus,
    OrderType,
    QueuedOrder,
)
from qbwc_bridge.domain.posting import NO_MAPPINGS, Lazy, MappingKind, Mappings
from qbwc_bridge.engine import steps
from qbwc_bridge.qbxml.responses import QbResponse
from qbwc_bridge.store import Tx
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import posting as posting_store

log = logging.getLogger("qbwc_bridge.engine")

DAILY_SUMMARY = "daily_summary"


def summarizing(settings: CompanySettings) -> bool:
    return settings.posting == DAILY_SUMMARY


def _last_due_day(settings: CompanySettings, now: datetime) -> tuple[date, zoneinfo.ZoneInfo]:
    zone = zoneinfo.ZoneInfo(settings.timezone)
    return summaries.last_due_day(now, zone, settings.summary_delay_hours), zone


def orders_waiting(tx: Tx, company: Company, now: datetime) -> bool:
    """Is there an order a run would work on? With daily summaries, orders of a day that
    is not over yet wait without a run."""
    if not summarizing(company.settings):
        return order_store.any_pending(tx, company.id)
    last_day, zone = _last_due_day(company.settings, now)
    return posting_store.work_waiting(tx, company.id, last_day, zone)


def form_summaries(tx: Tx, company: Company, now: datetime) -> int:
    """Gather the pending orders of every day that is over (in the company's time zone)
    into that day's summaries (one per channel and kind; a day summarized before gets a
    supplementary one). How many."""
    settings = company.settings
    last_day, zone = _last_due_day(settings, now)
    due = posting_store.due_for_summary(tx, company.id, last_day, zone)
    if not due:
        return 0
    groups = summaries.group_orders(
        ((queued, queued.order, queued.txn_kind) for queued in due), zone, last_day
    )
    if not groups:
        return 0
    rules = Mappings.of(posting_store.mapping_rules(tx, company.id, [MappingKind.PAYMENT_METHOD]))
    formed = 0
    for (channel, day, kind), members in sorted(groups.items(), key=lambda group: group[0]):
        seq = posting_store.next_seq(tx, company.id, channel, day, kind)
        supplementary = seq > 0 and posting_store.posted_before(tx, company.id, channel, day, kind)
        try:
            summary = summaries.build_summary(
                kind,
                day,
                channel,
                seq,
                [queued.order for queued in members],
                settings,
                payment_method_of=rules.payment_method,
                supplementary=supplementary,
            )
        except summaries.SummaryFull as error:
            log.warning("company %s: %s; its orders wait", company.name, error)
            continue
        txn_kind = mapping.txn_kind(summary.order, settings)
        customer = customers.customer_name(
            summary.order, f"{customers.FIXED_PREFIX}{summary.order.customer_name}"
        )
        posting_store.add_summary(
            tx,
            company.id,
            summary,
            [queued.id for queued in members],
            txn_kind=txn_kind.value,
            customer_name=customer,
            now=now,
        )
        formed += 1
    log.info("company %s: %s daily summaries formed", company.name, formed)
    return formed


def map_txn_types(tx: Tx, company: Company, run_id: int) -> None:
    """A web order's channel mapped to a txn-type decides what the claimed order becomes,
    as long as nothing of it is in QuickBooks yet."""
    if not posting_store.has_mappings(tx, company.id, MappingKind.TXN_TYPE):
        return
    rules = Mappings.of(posting_store.mapping_rules(tx, company.id, [MappingKind.TXN_TYPE]))
    changed: dict[int, str] = {}
    for queued in order_store.claimed_by(tx, run_id):
        if queued.add_sent or queued.qb_txn_id or queued.unpost or queued.summary_memo:
            continue
        order = queued.order
        if order.order_type is not OrderType.WEB_ORDER:
            continue
        kind = mapping.txn_kind(order, company.settings, rules)
        if kind is not queued.txn_kind:
            changed[queued.id] = kind.value
    if changed:
        posting_store.set_txn_kinds(tx, run_id, changed)


def posting_context(tx: Tx, company: Company) -> steps.PostingContext:
    """The request halves' view of the posting rules, each read on first use."""
    items_on = company.settings.create_missing_items != "off"
    return steps.PostingContext(
        mappings=Lazy(lambda: posting_store.mappings(tx, company.id)),
        missing_items=Lazy(
            lambda: posting_store.missing_item_keys(tx, company.id) if items_on else frozenset()
        ),
        company=company.name,
    )


def response_context(
    tx: Tx, company: Company, orders: Sequence[QueuedOrder], responses: Sequence[QbResponse]
) -> steps.ResponseContext:
    """The response halves' context: the mappings only when an answer names a missing list
    entry (its message then says which `map set` fixes it)."""
    needs_mappings = any(response.status.code == 3140 for response in responses)
    return steps.ResponseContext(
        {order.id: order for order in orders},
        company.name,
        settings=company.settings,
        mappings=posting_store.mappings(tx, company.id) if needs_mappings else NO_MAPPINGS,
    )


def after_answers(tx: Tx, company: Company, ctx: steps.ResponseContext, now: datetime) -> None:
    """Write what the answers taught beyond the orders' own rows: the items QuickBooks has
    or lacks, the members of a daily summary that is now in QuickBooks, and those of one
    an undo deleted (back in the queue for a new summary)."""
    if ctx.items_present or ctx.items_absent:
        posting_store.note_items(
            tx, company.id, present=ctx.items_present, absent=ctx.items_absent, now=now
        )
    for order_id, change in ctx.order_changes.items():
        order = ctx.orders.get(order_id)
        outcome = change.outcome
        if order is None or order.summary_memo is None or outcome is None:
            continue
        if outcome.status is OrderStatus.UNPOSTED:
            released = posting_store.release_summary(tx, order_id, now)
            log.info(
                "company %s: %s unposted, %s orders queued again",
                company.name,
                order.order_number,
                len(released),
            )
            continue
        if outcome.status not in (OrderStatus.SYNCED, OrderStatus.DUPLICATE):
            continue
        txn_id = ctx.orders[order_id].qb_txn_id or (change.txn.txn_id if change.txn else None)
        if txn_id is None:
            continue
        ref_number = change.txn.ref_number if change.txn else (order.qb_ref_number or "")
        posting_store.settle_summary(tx, order_id, txn_id, ref_number, now)
