"""Order use cases shared by the command line and the HTTP API: enqueue, status, retry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from qbwc_bridge.domain import customers, intake, mapping
from qbwc_bridge.domain.company import Company
from qbwc_bridge.domain.orders import OrderStatus, QueuedOrder, Resolution
from qbwc_bridge.domain.posting import NO_MAPPINGS, MappingKind, Mappings
from qbwc_bridge.errors import BridgeError, OrderRejected
from qbwc_bridge.store import Store, Tx, utcnow
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import posting as posting_store
from qbwc_bridge.store.orders import EnqueueOutcome, NewOrder

CHUNK = 1000


class NothingEnqueued(BridgeError):
    """Some orders are invalid, so none were queued.

    Each caller says how to queue the valid ones anyway in its own terms (the command
    line's --skip-invalid, the API's ?skip_invalid=true).
    """

    def __init__(self, problems: list[OrderRejected]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; nothing was queued."
        )


# --- enqueue -------------------------------------------------------------------------------


@dataclass
class EnqueueReport:
    queued: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)
    problems: list[OrderRejected] = field(default_factory=list)
    # The numbers the company had queued already (updated, unchanged or in conflict).
    resent: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return (
            self.queued + self.updated + self.unchanged + len(self.conflicts) + len(self.problems)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "conflicts": [
                {
                    "order_number": number,
                    "problem": "already in QuickBooks with different content; not queued again",
                }
                for number in self.conflicts
            ],
            "errors": [problem.as_dict() for problem in self.problems],
        }


def _new_order(
    raw: object,
    company: Company,
    report: EnqueueReport,
    mappings: Mappings = NO_MAPPINGS,
    connections: Mapping[str, int] | None = None,
) -> NewOrder | None:
    order, problems = intake.read_order(raw)
    if order is None:
        report.problems.extend(problems)
        return None
    payload = intake.canonical_json(order)  # encoded once: stored and fingerprinted
    return NewOrder(
        order=order,
        payload=payload,
        fingerprint=intake.fingerprint_of(payload),
        txn_kind=mapping.txn_kind(order, company.settings, mappings),
        customer_name=customers.customer_name(order, company.settings.customer_match),
        user_connection_id=(connections or {}).get(order.order_number),
    )


def enqueue(
    store: Store,
    company_name: str,
    items: Iterable[object],
    *,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
    then: Callable[[Tx, Company, EnqueueReport], Iterable[OrderRejected]] | None = None,
    connections: Mapping[str, int] | None = None,
) -> EnqueueReport:
    """Queue JMAUser orders, a chunk at a time, in one transaction.

    Without ``skip_invalid`` one invalid order means nothing is queued: the transaction
    rolls back after every problem has been collected. ``then`` does more in the same
    transaction once the orders are queued (the REST API's cancellations); the problems
    it returns count as the orders' own. ``connections`` names the channel (by order
    number) each order came from, written with it.
    """
    report = EnqueueReport()
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        # A channel mapped to a txn-type (the run applies it again when it claims the order).
        txn_types = Mappings.of(posting_store.mapping_rules(tx, found.id, [MappingKind.TXN_TYPE]))
        for chunk in _chunks(items, CHUNK):
            news = [
                n
                for n in (_new_order(raw, found, report, txn_types, connections) for raw in chunk)
                if n
            ]
            _record(report, order_store.enqueue(tx, found.id, news, utcnow()))
            if progress:
                progress(report.seen)
        if then is not None:
            report.problems.extend(then(tx, found, report))
        if report.problems and not skip_invalid:
            raise NothingEnqueued(report.problems)  # rolls the transaction back
        if report.queued:
            order_store.refresh_statistics(tx)  # only when the tables outgrew their statistics
    return report


def _record(report: EnqueueReport, outcomes: list[tuple[str, EnqueueOutcome]]) -> None:
    for number, outcome in outcomes:
        if outcome is EnqueueOutcome.QUEUED:
            report.queued += 1
            continue
        report.resent.append(number)
        if outcome is EnqueueOutcome.UPDATED:
            report.updated += 1
        elif outcome is EnqueueOutcome.UNCHANGED:
            report.unchanged += 1
        else:
            report.conflicts.append(number)


def _chunks(items: Iterable[object], size: int) -> Iterator[list[object]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- status / retry / product updates ------------------------------------------------------


def order_json(queued: QueuedOrder) -> dict[str, Any]:
    """One order as `status --json` lists it (and the order_outcome event carries it)."""
    return {
        "order_number": queued.order_number,
        "status": queued.status.value,
        "txn_type": queued.txn_kind.value,
        "qb_txn_id": queued.qb_txn_id,
        "qb_ref_number": queued.qb_ref_number,
        "error": queued.error,
        "payments": [
            {
                "reference_number": p.payment.reference_number,
                "amount": format(p.payment.amount, "f"),
                "status": p.status.value,
                "qb_txn_id": p.qb_txn_id,
                "error": p.error,
            }
            for p in queued.payments
        ],
    }


def status(
    store: Store,
    company_name: str,
    *,
    order_status: OrderStatus | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The `status --json` object: counts and every order's outcome (docs/operations.md).

    With ``order_status`` only the orders in that status, with ``limit`` at most that many
    (the first in queue order); the counts are always the company's whole queue.
    """
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        orders = order_store.iter_company_orders(tx, found.id, status=order_status)
        return {
            "counts": order_store.counts(tx, found.id),
            "orders": [order_json(q) for q in islice(orders, limit)],
        }


def resolve(store: Store, company_name: str, order_number: str, resolution: Resolution) -> None:
    """A person's answer to a RefNumber conflict: the order goes back to the queue with it."""
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        if order_store.resolve(tx, found.id, order_number, resolution, utcnow()):
            return
        status = order_store.status_of(tx, found.id, order_number)
    if status is None:
        raise BridgeError(f"Company '{found.name}' has no order {order_number!r}.")
    raise BridgeError(
        f"Order {order_number!r} is {status.value}, not in a RefNumber conflict: there is "
        "nothing to resolve (`qbwc-bridge status` shows why an order is in error)."
    )


@dataclass
class RetryReport:
    """What `retry` did: the orders back in the queue, and why each named one is not."""

    retried: list[str]
    # order number → why it was not retried
    refused: dict[str, str] = field(default_factory=dict)


def retry(store: Store, company_name: str, order_numbers: list[str]) -> list[str]:
    """Put errored orders (those named, or every one) back in the queue; their numbers."""
    return retry_orders(store, company_name, order_numbers).retried


def retry_orders(store: Store, company_name: str, order_numbers: list[str]) -> RetryReport:
    with store.transaction() as tx:
        found = company_store.by_name(tx, company_name)
        report = RetryReport(order_store.retry(tx, found.id, order_numbers, utcnow()))
        done = set(report.retried)
        for number in dict.fromkeys(order_numbers):
            if number in done:
                continue
            current = order_store.status_of(tx, found.id, number)
            if current is None:
                report.refused[number] = f"company '{found.name}' has no order {number}"
            elif current is OrderStatus.IN_PROGRESS:
                report.refused[number] = (
                    f"order {number} is in a Web Connector run now: retry it after the run"
                )
            else:
                report.refused[number] = (
                    f"order {number} is {current.value}, not in error: nothing to retry"
                )
        return report
