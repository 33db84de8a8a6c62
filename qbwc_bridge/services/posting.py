"""Posting-rule use cases shared by the command line and the HTTP API: mappings, undo
(`unpost`), and the daily summaries' listing."""

from __future__ import annotations

from dataclasses import dataclass, field

from qbwc_bridge.domain.orders import OrderStatus, PaymentStatus, QueuedOrder
from qbwc_bridge.domain.posting import (
    CsvProblem,
    MappingRule,
    make_rule,
    mapping_kind,
    read_mapping_csv,
)
from qbwc_bridge.errors import BridgeError
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import posting as posting_store
from qbwc_bridge.store.posting import SummaryRow

# --- mappings --------------------------------------------------------------------------


class MappingImportFailed(BridgeError):
    """The file has problems, so no mapping of it was stored."""

    def __init__(self, problems: list[CsvProblem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{count} found; no mapping was stored.")


def set_mapping(
    store: Store, company_name: str, kind: str, source: str, target: str
) -> MappingRule:
    """Add or replace one mapping; it applies from the next request the bridge builds."""
    rule = make_rule(kind, source, target)
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        posting_store.set_mappings(tx, found.id, [rule], utcnow())
    return rule


def list_mappings(store: Store, company_name: str) -> list[MappingRule]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return posting_store.mapping_rules(tx, found.id)


def remove_mapping(store: Store, company_name: str, kind: str, source: str) -> None:
    mapped = mapping_kind(kind)
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        if posting_store.remove_mapping(tx, found.id, mapped, source):
            return
    raise BridgeError(f"Company '{found.name}' has no {mapped.value} mapping of {source!r}.")


def import_mappings(store: Store, company_name: str, text: str) -> int:
    """Every mapping of a CSV file (kind, from, to), or none when any row has a problem."""
    rules, problems = read_mapping_csv(text)
    if problems:
        raise MappingImportFailed(problems)
    if not rules:
        raise BridgeError("The file holds no mapping (columns: kind, from, to).")
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return posting_store.set_mappings(tx, found.id, rules, utcnow())


# --- undo --------------------------------------------------------------------------------


@dataclass
class UnpostReport:
    """What `unpost` did: the orders whose undo the next run does, and why each other
    named one is not undone."""

    queued: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _why_not(tx: Tx, order: QueuedOrder) -> str | None:
    """Why the bridge may not undo this order, or None."""
    number = order.order_number
    if order.status is OrderStatus.IN_PROGRESS:
        return f"order {number} is in a Web Connector run now: unpost it after the run"
    if order.unpost and order.status in (OrderStatus.PENDING, OrderStatus.ERROR):
        return None  # asked before (and failed, or waits): the next run tries again
    if order.status is OrderStatus.DUPLICATE:
        return (
            f"order {number} is linked as a duplicate: the bridge did not add its transaction, "
            "so it does not delete it"
        )
    if order.status is OrderStatus.SUMMARIZED:
        summary = posting_store.in_summary(tx, order.id)
        return (
            f"order {number} is in the daily summary {summary}: it cannot be unposted alone; "
            f"unpost {summary} to delete the summary and queue all its orders again"
        )
    if order.status is OrderStatus.UNPOSTED and order.summary_memo is not None:
        return f"{number} is unposted already: its orders were queued again"
    if order.status is OrderStatus.UNPOSTED:
        return f"order {number} is unposted already (`retry` adds it again)"
    if order.status is not OrderStatus.SYNCED or not order.qb_txn_id:
        return f"order {number} is {order.status.value}: nothing of it is in QuickBooks"
    if not order.qb_edit_sequence and not order.qb_time_modified:
        return (
            f"order {number} was added before the bridge kept how QuickBooks stored its adds, "
            "so it cannot tell whether it changed since: delete it in QuickBooks by hand"
        )
    foreign = [
        p
        for p in order.payments
        if p.status is PaymentStatus.DUPLICATE and p.qb_txn_id and p.qb_txn_id != order.qb_txn_id
    ]
    if foreign:
        reference = foreign[0].payment.reference_number or "without a reference"
        return (
            f"order {number} has a payment ({reference}) the bridge found in QuickBooks rather "
            "than added: it deletes nothing it did not add, and the transaction cannot go "
            "without it"
        )
    return None


def unpost(store: Store, company_name: str, order_numbers: list[str]) -> UnpostReport:
    """Ask the next run to delete what the bridge added for these orders (their payments,
    then their transaction), each all or nothing.

    A daily summary is named by its order number or its RefNumber (as `summaries` lists
    them), never by an order in it: its undo deletes the summary's transaction and puts
    every order of it back in the queue, where the next run forms a new summary."""
    report = UnpostReport()
    now = utcnow()
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        for number in dict.fromkeys(order_numbers):
            order = posting_store.order_by_number(tx, found.id, number)
            if order is None:
                order = posting_store.summary_order_by_ref(tx, found.id, number)
            if order is None:
                report.refused[number] = f"company '{found.name}' has no order {number}"
                continue
            why = _why_not(tx, order)
            if why is None and posting_store.request_unpost(tx, order.id, now):
                report.queued.append(number)
            else:
                report.refused[number] = why or f"order {number} changed meanwhile: try again"
    return report


def cancel_unpost(store: Store, company_name: str, order_numbers: list[str]) -> UnpostReport:
    """Keep orders whose undo waits or failed: they are synced again."""
    report = UnpostReport()
    now = utcnow()
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        for number in dict.fromkeys(order_numbers):
            order = posting_store.order_by_number(tx, found.id, number)
            if order is None:
                order = posting_store.summary_order_by_ref(tx, found.id, number)
            if order is None:
                report.refused[number] = f"company '{found.name}' has no order {number}"
            elif any(p.status is PaymentStatus.UNPOSTED for p in order.payments):
                report.refused[number] = (
                    f"order {number}'s undo deleted some of its payments already: `retry` "
                    "finishes it"
                )
            elif posting_store.cancel_unpost(tx, order.id, now):
                report.queued.append(number)
            else:
                report.refused[number] = f"order {number} has no undo waiting or failed"
    return report


# --- daily summaries ----------------------------------------------------------------------


def list_summaries(store: Store, company_name: str) -> list[SummaryRow]:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        return posting_store.summary_rows(tx, found.id)
