"""The export step: page QuickBooks' sales transactions, then its deletions, out to the
channels' feed (exported_transactions; docs/export.md).

Which transactions: those of the types the company's ``export_transactions`` names,
modified since the last *complete* export started, less a safety margin; everything on
the first export and when a full one is asked for. Each type is one query, paged with an
iterator (MaxReturned, with line items); the iterator lives only inside this run
(QuickBooks expires it, and the Web Connector may never come back), so its state is kept
on the run and dropped with it, and a query whose iterator expired starts again. Then one
TxnDeletedQuery reports the deletions of those types over the same window.

A failed query (an error status, an iterator that kept expiring) does not move the
"since" mark forward, so nothing it missed is skipped by the next export. Like
engine/inventory.py, these halves talk to no database: the unit of work (engine/run.py)
loads the state and writes what an answer decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qbwc_bridge.domain.exports import EXPORT_KINDS, DeletedTxn, ExportedTxn
from qbwc_bridge.domain.runs import ExportState, RequestKind, RequestMap, RequestPurpose
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.export import ExportResponse
from qbwc_bridge.qbxml.status import Outcome, classify, explain

# Transactions come with their lines: a page is several times an inventory page's size.
PAGE_SIZE = 100
# Transactions saved while the previous export ran, or stamped by a QuickBooks clock that
# runs behind ours, are read again (and written only if they changed) rather than missed.
CLOCK_SKEW_MARGIN = timedelta(minutes=10)
# An iterator QuickBooks no longer knows (expired, or from another session).
ITERATOR_INVALID_CODES = frozenset({3390, 3391, 3392})
# "Feature not enabled": an edition or a file without sales orders simply has none.
FEATURE_NOT_ENABLED = 3250
MAX_RESTARTS = 3
DELETED = "deleted"  # the last phase: TxnDeletedQuery


def query_from(exported_from: datetime | None) -> datetime | None:
    """FromModifiedDate after an export that started at ``exported_from``; None: a full pass."""
    return None if exported_from is None else exported_from - CLOCK_SKEW_MARGIN


def start(types: Sequence[str], exported_from: datetime | None, now: datetime) -> ExportState:
    """The state of an export of ``types`` (export_transactions' names) starting ``now``."""
    phases = (*(t for t in EXPORT_KINDS if t in types), DELETED)
    return ExportState(
        phase=phases[0],
        phases=phases,
        started_at=now,
        modified_from=query_from(exported_from),
    )


@dataclass(frozen=True, slots=True)
class ExportAnswer:
    """What one answer of the export decided; the unit of work writes it."""

    state: ExportState
    txns: list[ExportedTxn] = field(default_factory=list)
    deleted: list[DeletedTxn] = field(default_factory=list)
    error: str | None = None  # for getLastError: this export may be incomplete

    @property
    def succeeded(self) -> bool:
        """The export is over and read everything: the next one may start from now."""
        return self.state.finished and not self.state.failed


def next_request(state: ExportState) -> tuple[list[tuple[str, build.Request]], RequestMap]:
    """The next page's request (Start or Continue), or nothing once the export is done."""
    if state.finished:
        return [], {}
    if state.phase == DELETED:
        kinds = [EXPORT_KINDS[phase] for phase in state.phases if phase != DELETED]
        request = build.deleted_query(kinds, state.modified_from)
    else:
        request = build.export_query(
            EXPORT_KINDS[state.phase],
            max_returned=PAGE_SIZE,
            from_modified=state.modified_from,
            iterator="Continue" if state.iterator_id else "Start",
            iterator_id=state.iterator_id or None,
        )
    return [("exp", request)], {"exp": RequestPurpose(RequestKind.EXPORT)}


def handle(
    state: ExportState, request_map: RequestMap, responses: list[ExportResponse]
) -> ExportAnswer:
    """The response half: the page's transactions and where the export goes next."""
    # The message carries one request: an answer without a requestID (QuickBooks omits it
    # when a request had none) can only be that one.
    only = next(iter(request_map)) if len(request_map) == 1 else None
    answer = next(
        (
            found
            for found in responses
            if found.response.request_id in request_map or (not found.response.request_id and only)
        ),
        None,
    )
    if answer is None:
        found = _fail(
            state, "QuickBooks' answer to the export query was missing from its response."
        )
    else:
        found = _page(state, answer)
    return dataclasses.replace(found, state=with_progress(found.state))


def _page(state: ExportState, answer: ExportResponse) -> ExportAnswer:
    response = answer.response
    outcome = classify(response.status, response.kind)
    if outcome is Outcome.FAILED:
        return _failed(state, answer)
    read = len(answer.txns) + len(answer.deleted)
    remaining = response.iterator_remaining or 0
    state = dataclasses.replace(
        state,
        fetched=state.fetched + read,
        pass_fetched=state.pass_fetched + read,
        pages=state.pages + 1,
        remaining=remaining,
    )
    txns, deleted = list(answer.txns), list(answer.deleted)
    if state.phase != DELETED and response.iterator_id and remaining > 0:
        return ExportAnswer(dataclasses.replace(state, iterator_id=response.iterator_id), txns)
    return ExportAnswer(_next_phase(state), txns, deleted)


def _failed(state: ExportState, answer: ExportResponse) -> ExportAnswer:
    response = answer.response
    code = response.status.code
    if code in ITERATOR_INVALID_CODES and state.restarts < MAX_RESTARTS:
        # Start the same query again: rows already written are unchanged, so writing them
        # again takes no cursor.
        restarted = dataclasses.replace(
            state, iterator_id="", pass_fetched=0, remaining=0, restarts=state.restarts + 1
        )
        return ExportAnswer(restarted)
    if code == FEATURE_NOT_ENABLED and state.phase != DELETED:
        # Nothing of that type can exist; the rest of the export is not held up by it.
        note = f"QuickBooks has no {state.phase.replace('_', ' ')}s to export: {explain(response.status, response.kind)}"
        return ExportAnswer(_next_phase(state), error=note)
    return _fail(state, explain(response.status, response.kind))


def restart(state: ExportState) -> ExportState:
    """The current query from its first page again (its last page was lost on the way)."""
    if state.finished or state.phase == DELETED:
        return state
    return dataclasses.replace(state, iterator_id="", pass_fetched=0, remaining=0)


def _fail(state: ExportState, reason: str) -> ExportAnswer:
    error = (
        f"The export of QuickBooks transactions ({state.phase.replace('_', ' ')}) failed, so "
        f"the channels' feed may miss changes until the next export: {reason}"
    )
    return ExportAnswer(_next_phase(dataclasses.replace(state, failed=True)), error=error)


def _next_phase(state: ExportState) -> ExportState:
    position = state.phases.index(state.phase)
    state = dataclasses.replace(
        state,
        iterator_id="",
        pass_fetched=0,
        remaining=0,
        fraction=(position + 1) / len(state.phases),
    )
    if position + 1 < len(state.phases):
        return dataclasses.replace(state, phase=state.phases[position + 1])
    return dataclasses.replace(state, finished=True)


def with_progress(state: ExportState) -> ExportState:
    """The share of the export done, for the run's progress; never backwards, even when an
    expired iterator starts its query again."""
    if state.finished:
        return state
    done, remaining = state.pass_fetched, state.remaining
    within = done / (done + remaining) if done + remaining else 0.0
    position = state.phases.index(state.phase)
    return dataclasses.replace(
        state, fraction=max(state.fraction, (position + within) / len(state.phases))
    )
