"""The export step's pure halves: which request comes next, and what an answer decides."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from qbwc_bridge.domain.exports import DeletedTxn, ExportedTxn
from qbwc_bridge.domain.orders import TxnKind
from qbwc_bridge.domain.runs import ExportState, RequestKind, RequestPurpose
from qbwc_bridge.engine import export as export_step
from qbwc_bridge.qbxml.export import ExportResponse
from qbwc_bridge.qbxml.responses import QbResponse, QbStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OK = QbStatus(0, "Info", "Status OK")
SENT = {"exp": RequestPurpose(RequestKind.EXPORT)}


def answer(
    kind: str = "InvoiceQuery",
    status: QbStatus = OK,
    *,
    txns: int = 0,
    remaining: int | None = None,
    iterator: str = "",
    request_id: str = "exp",
) -> list[ExportResponse]:
    found = tuple(
        ExportedTxn(f"T{i}", TxnKind.INVOICE, "2026-03-02T08:00:00+00:00", {"OrderNumber": str(i)})
        for i in range(txns)
    )
    header = QbResponse(
        request_id, kind, status, iterator_id=iterator, iterator_remaining=remaining
    )
    return [ExportResponse(header, txns=found)]


def first(types: tuple[str, ...] = ("invoice", "credit_memo")) -> ExportState:
    return export_step.start(types, None, NOW)


def test_the_phases_follow_the_types_then_the_deletions() -> None:
    state = export_step.start(("credit_memo", "invoice"), NOW, NOW)
    assert state.phases == ("invoice", "credit_memo", "deleted")
    assert state.modified_from == NOW - export_step.CLOCK_SKEW_MARGIN
    requests, request_map = export_step.next_request(state)
    assert [r.kind for _, r in requests] == ["InvoiceQuery"]
    assert requests[0][1].values["iterator"] == "Start"
    assert list(request_map) == ["exp"]


def test_an_iterator_is_continued_then_the_next_type_starts() -> None:
    state = first()
    page = export_step.handle(state, SENT, answer(txns=100, remaining=150, iterator="{i}"))
    assert (
        len(page.txns) == 100 and page.state.iterator_id == "{i}" and page.state.phase == "invoice"
    )
    assert 0 < page.state.fraction < 1 / 3
    requests, _ = export_step.next_request(page.state)
    assert requests[0][1].values["iterator"] == "Continue"
    assert requests[0][1].values["iterator_id"] == "{i}"
    last = export_step.handle(page.state, SENT, answer(txns=150, remaining=0, iterator="{i}"))
    assert last.state.phase == "credit_memo" and last.state.iterator_id == ""
    assert last.state.fetched == 250 and last.state.fraction >= page.state.fraction


def test_nothing_found_moves_on_and_the_deletions_finish() -> None:
    state = first(("invoice",))
    empty = export_step.handle(state, SENT, answer(status=QbStatus(1, "Info", "no match")))
    assert empty.state.phase == "deleted" and not empty.state.failed
    requests, _ = export_step.next_request(empty.state)
    assert [r.kind for _, r in requests] == ["TxnDeletedQuery"]
    gone = DeletedTxn("T9", TxnKind.INVOICE, "2026-03-02T08:30:00+00:00", "9")
    header = QbResponse("exp", "TxnDeletedQuery", OK)
    done = export_step.handle(empty.state, SENT, [ExportResponse(header, deleted=(gone,))])
    assert done.deleted == [gone] and done.state.finished and done.succeeded
    assert export_step.next_request(done.state) == ([], {})


def test_an_expired_iterator_restarts_a_few_times_then_fails() -> None:
    state = dataclasses.replace(first(), iterator_id="{old}", pass_fetched=100, remaining=50)
    expired = QbStatus(3391, "Error", 'The iteratorID "{old}" is not valid.')
    for restarts in range(1, export_step.MAX_RESTARTS + 1):
        state = export_step.handle(state, SENT, answer(status=expired)).state
        assert (state.restarts, state.iterator_id, state.phase) == (restarts, "", "invoice")
        state = dataclasses.replace(state, iterator_id="{old}")
    gave_up = export_step.handle(state, SENT, answer(status=expired))
    assert gave_up.state.failed and gave_up.state.phase == "credit_memo"
    assert gave_up.error and "failed" in gave_up.error and not gave_up.succeeded


def test_no_sales_orders_is_no_failure_and_a_missing_answer_is() -> None:
    state = first(("sales_order", "credit_memo"))
    off = QbStatus(
        3250, "Error", "This feature is not enabled or not available in this version of QuickBooks."
    )
    skipped = export_step.handle(state, SENT, answer("SalesOrderQuery", off))
    assert skipped.state.phase == "credit_memo" and not skipped.state.failed
    assert skipped.error and "no sales orders" in skipped.error
    missing = export_step.handle(skipped.state, SENT, answer(request_id="other"))
    assert missing.state.failed and missing.error and "missing" in missing.error


def test_a_lost_page_starts_its_query_again() -> None:
    state = dataclasses.replace(first(), iterator_id="{i}", pass_fetched=100, remaining=40)
    again = export_step.restart(state)
    assert (again.iterator_id, again.pass_fetched, again.restarts) == ("", 0, 0)
    deleted = dataclasses.replace(state, phase="deleted", iterator_id="")
    assert export_step.restart(deleted) == deleted
