"""One Web Connector run, callback by callback, with all state in the store.

Each method is one callback's work inside one transaction that commits before the
answer goes back, so any worker process can serve the next callback and a crash between
callbacks loses nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from qbwc_bridge import __version__
from qbwc_bridge.config import Settings
from qbwc_bridge.domain import passwords
from qbwc_bridge.domain.company import Company, CompanyFile
from qbwc_bridge.domain.exports import ChargeItems
from qbwc_bridge.domain.orders import OrderStatus, QueuedOrder
from qbwc_bridge.domain.runs import (
    Exchange,
    ExportState,
    RequestMap,
    Run,
    RunStage,
    RunStatus,
    order_ids,
)
from qbwc_bridge.engine import export as export_step
from qbwc_bridge.engine import inventory, logins, planning, steps
from qbwc_bridge.engine import posting as posting_unit
from qbwc_bridge.engine.recording import Recorder
from qbwc_bridge.errors import (
    InvalidTicket,
    MalformedQbxml,
    UnsupportedQuickBooks,
    WrongCompanyFile,
)
from qbwc_bridge.qbxml import build, hcp, versions
from qbwc_bridge.qbxml import export as qbxml_export
from qbwc_bridge.qbxml.responses import QbResponse, parse_response
from qbwc_bridge.store import Store, Tx
from qbwc_bridge.store import channels as channel_store
from qbwc_bridge.store import companies as company_store
from qbwc_bridge.store import exports as export_store
from qbwc_bridge.store import inventory as inventory_store
from qbwc_bridge.store import orders as order_store
from qbwc_bridge.store import runs as run_store
from qbwc_bridge.store.database import utcnow
from qbwc_bridge.store.runs import CompanyBusy

log = logging.getLogger("qbwc_bridge.engine")

# Which company and run the current callback served, for the SOAP layer's log line.
current_call: ContextVar[dict[str, object] | None] = ContextVar("current_call", default=None)


def _note_call(**values: object) -> None:
    noted = current_call.get()
    if noted is not None:
        noted.update(values)


PARSE_ERROR_HRESULT = "0x80040400"
# How long the Web Connector waits for one callback's answer (about two minutes, by users'
# reports; docs/web-connector.md): a request older than this is not coming back.
WEB_CONNECTOR_CALL_TIMEOUT = timedelta(minutes=3)
# A Web Connector calls back to back (its login, then each exchange at once), waiting only
# while QuickBooks works on a request: a run that called this recently is a live session
# (another Web Connector with the same .qwc), not one that ended.
LIVE_SESSION = timedelta(seconds=5)
# A clientVersion belongs to the login that follows it from the same address.
CLIENT_VERSION_MATCH = timedelta(minutes=10)
MAX_ATTEMPTS = steps.MAX_RUNS
NO_WORK = "none"
NOT_VALID_USER = "nvu"
BUSY = "busy"


@dataclass(frozen=True, slots=True)
class AuthResult:
    ticket: str
    answer: str  # "" (use the open company file), "none", "nvu" or "busy"


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.strip().split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class RunEngine:
    """The bridge's side of the Web Connector conversation."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.recorder = Recorder(settings.record_dir) if settings.record_dir else None

    # --- serverVersion / clientVersion ------------------------------------------------

    def server_version(self) -> str:
        return f"qbwc-bridge {__version__}"

    def client_version(self, version: str, client_address: str = "") -> str:
        """'' (go on): the bridge works with every Web Connector that speaks its WSDL, and a
        warning is a dialog that holds up an unattended machine. Only when the operator
        names a minimum (QBWC_BRIDGE_MIN_WEB_CONNECTOR_VERSION) do older ones get one.

        The version is kept by client address for the company that logs in next.
        """
        if not version:
            return ""
        if client_address:
            with self.store.transaction() as tx:
                company_store.remember_client_version(
                    tx, client_address, version[:40], self.clock()
                )
        minimum = self.settings.min_web_connector_version
        if minimum and _version_tuple(version) < _version_tuple(minimum):
            return (
                f"W:This service is tested with QuickBooks Web Connector "
                f"{self.settings.min_web_connector_version} and newer; you run {version}. "
                "Please upgrade the Web Connector."
            )
        return ""

    # --- authenticate -------------------------------------------------------------------

    def authenticate(self, username: str, password: str, client_address: str = "") -> AuthResult:
        now = self.clock()
        company = logins.check_login(
            self.store, self.settings, username, password, client_address, now
        )
        if company is None:
            return AuthResult("", NOT_VALID_USER)
        _note_call(company=company.name)
        ticket = passwords.new_ticket()
        with self.store.transaction() as tx:
            if client_address:
                company_store.take_client_version(
                    tx, company.id, client_address, now - CLIENT_VERSION_MATCH
                )
            # Any login of the company makes its channels' pulls due (the worker runs them:
            # nothing slow, no outbound HTTP, inside a callback).
            channel_store.request_company_pulls(tx, company.id, now)
            self._abandon_expired(tx, now, company.id)
            if not self._take_over(tx, company, now):
                return AuthResult(ticket, BUSY)
            inventory_due = self._inventory_due(tx, company, now)
            export_due = self._export_due(tx, company, now)
            if not (inventory_due or export_due) and not posting_unit.orders_waiting(
                tx, company, now
            ):
                return AuthResult(ticket, NO_WORK)
            try:
                run_store.open_run(
                    tx,
                    company.id,
                    passwords.ticket_digest(ticket),
                    now,
                    now + timedelta(seconds=self.settings.run_timeout_seconds),
                    inventory_due=inventory_due,
                    export_due=export_due,
                )
            except CompanyBusy:
                return AuthResult(ticket, BUSY)
        return AuthResult(ticket, "")

    def _take_over(self, tx: Tx, company: Company, now: datetime) -> bool:
        """End the company's open run if its Web Connector is gone; False while it works.

        The Web Connector runs one session per application at a time, so a new login means
        the old session ended — unless a request of it is still with QuickBooks (and not for
        longer than the Web Connector waits for one), or it called moments ago.
        """
        for open_run in run_store.open_runs(tx, company.id):
            in_flight = open_run.in_flight_since
            if in_flight is not None and now - in_flight < WEB_CONNECTOR_CALL_TIMEOUT:
                return False
            if now - open_run.last_seen_at < LIVE_SESSION:
                return False
            if run_store.close(tx, open_run.id, RunStatus.ABANDONED, now):
                released = order_store.release_run(tx, open_run.id, now, max_attempts=MAX_ATTEMPTS)
                log.info(
                    "run %s taken over by a new login of %s; %s orders back in the queue",
                    open_run.id,
                    company.name,
                    released,
                )
        return True

    def _inventory_due(self, tx: Tx, company: Company, now: datetime) -> bool:
        due_at = company_store.inventory_due_at(tx, company.id)
        return due_at is None or due_at <= now

    def _export_due(self, tx: Tx, company: Company, now: datetime) -> bool:
        if not company.settings.export_types:
            return False
        due_at = export_store.due_at(tx, company.id)
        return due_at is None or due_at <= now

    def _abandon_expired(self, tx: Tx, now: datetime, company_id: int | None = None) -> None:
        """Runs whose Web Connector went silent give their orders back to the queue."""
        for run_id in run_store.expired_open_runs(tx, now, company_id):
            if run_store.close(tx, run_id, RunStatus.ABANDONED, now):
                released = order_store.release_run(tx, run_id, now, max_attempts=MAX_ATTEMPTS)
                log.info("run %s abandoned; %s orders back in the queue", run_id, released)

    # --- sendRequestXML -----------------------------------------------------------------

    def next_request(
        self,
        ticket: str,
        hcp_response: str,
        company_file: str,
        country: str,
        major: int,
        minor: int,
    ) -> str:
        """The next qbXML message of the run, or '' when there is nothing (see last_error)."""
        now = self.clock()
        with self.store.transaction() as tx:
            run, company = self._open(tx, ticket, now)
            # A request still waiting for its answer never got one: whatever it carried may
            # or may not have been applied, so its orders are checked again.
            lost = (
                run_store.answer_pending(tx, run.id, "", "lost", "", now)
                if run.awaiting_answer
                else None
            )
            if lost is not None:
                order_store.recheck(tx, run.id, order_ids(lost.request_map), now)
            if run.stage is RunStage.NEGOTIATE:
                try:
                    run = self._negotiate(
                        tx, run, company, hcp_response, company_file, country, major, minor, now
                    )
                except (UnsupportedQuickBooks, MalformedQbxml, WrongCompanyFile) as error:
                    run_store.set_error(tx, run.id, error.message)
                    run_store.set_stage(tx, run.id, RunStage.DONE)
                    return ""
            message = self._plan(tx, run, company, now)
            if not message:
                run_store.set_stage(tx, run.id, RunStage.DONE)
                run_store.set_error(tx, run.id, "Nothing left to do in this run.")
            return message

    def _negotiate(
        self,
        tx: Tx,
        run: Run,
        company: Company,
        hcp_response: str,
        company_file: str,
        country: str,
        major: int,
        minor: int,
        now: datetime,
    ) -> Run:
        host = hcp.parse_hcp(hcp_response) if hcp_response.strip() else None
        chosen = hcp.negotiate(host, major, minor, country or "US")
        self._check_company_file(tx, company, host, company_file, now)
        speed = company.seconds_per_request
        size = planning.batch_size(speed, company.settings.batch_min, company.settings.batch_max)
        summarizing = posting_unit.summarizing(company.settings)
        if summarizing:
            posting_unit.form_summaries(tx, company, now)
        claimed = order_store.claim_batch(
            tx, company.id, run.id, size, now, summaries_only=summarizing
        )
        posting_unit.map_txn_types(tx, company, run.id)
        company_store.remember_company_file(tx, company.id, str(chosen.version), company_file)
        run_store.start_orders(
            tx,
            run.id,
            qbxml_version=str(chosen.version),
            country=chosen.country,
            company_file=company_file,
            batch_size=claimed,
        )
        log.info("run %s: qbXML %s, claimed %s orders", run.id, chosen.version, claimed)
        return run_store.get(tx, run.id)

    def _check_company_file(
        self, tx: Tx, company: Company, host: hcp.HostInfo | None, path: str, now: datetime
    ) -> None:
        """Pair the company with the open file at its first run; afterwards refuse another.

        A test copy, another client's books or a moved file would take web orders that
        belong elsewhere: the run adds nothing and says which file is open.
        """
        open_file = CompanyFile(
            file_id=host.file_id(company.owner_id) if host else "",
            company_name=host.company_name if host else "",
            path=path,
        )
        company_store.note_seen_file(tx, company.id, open_file)
        if company.paired_file is None:
            company_store.pair_file(tx, company.id, open_file, now)
            log.info("company %s paired with %s", company.name, open_file.describe())
            return
        differences = company.paired_file.differences(open_file)
        if differences:
            raise WrongCompanyFile(
                f"This is not the company file '{company.name}' is paired with: QuickBooks "
                f"has {open_file.describe()} open, but the bridge works with "
                f"{company.paired_file.describe()} (the {' and '.join(differences)} differ). "
                "Nothing was added. Open the paired file in QuickBooks, or, if this file is "
                "the right one from now on, run `qbwc-bridge company pair "
                f"{shlex.quote(company.name)} --accept-current-file`."
            )

    def _plan(self, tx: Tx, run: Run, company: Company, now: datetime) -> str:
        version = versions.QbxmlVersion.parse(run.qbxml_version or "13.0")
        if run.stage is RunStage.ORDERS:
            budget = planning.request_budget(company.seconds_per_request)
            suspects = run.summary.suspects
            waiting_suspects = (
                order_store.claimed_by(tx, run.id, order_ids=suspects) if suspects else []
            )
            if not waiting_suspects:
                suspects = ()  # all isolated (or gone back to the queue): carry on as usual
            first_page = company.settings.orders_per_message or PAGE
            orders = waiting_suspects or _pages(tx, run.id, min(first_page, PAGE))
            plan = steps.plan_message(
                orders,
                company.settings,
                budget=budget,
                suspects=suspects,
                posting=posting_unit.posting_context(tx, company),
            )
            if plan.failures:  # orders that cannot be sent at all end here
                order_store.apply_changes(tx, run.id, now, plan.failures, {})
            if plan.requests:
                order_store.mark_adds_sent(tx, run.id, plan.adds_sent, plan.payment_adds_sent)
                return self._send(
                    tx, run, build.message(plan.requests, version), plan.request_map, now
                )
            run = self._enter_inventory(tx, run)
        if run.stage is RunStage.INVENTORY:
            state = run.inventory_state or inventory.start(
                company_store.inventory_synced_from(tx, company.id), now
            )
            requests, request_map = inventory.next_request(state)
            if requests:
                run_store.set_inventory_state(tx, run.id, inventory.with_progress(state))
                return self._send(tx, run, build.message(requests, version), request_map, now)
        if run.stage is RunStage.EXPORT:
            export_state = run.export_state or self._start_export(tx, company, now)
            if run.awaiting_answer:
                # The page QuickBooks read last never came back: read that query again.
                export_state = export_step.restart(export_state)
            requests, request_map = export_step.next_request(export_state)
            if requests:
                run_store.set_export_state(tx, run.id, export_step.with_progress(export_state))
                return self._send(tx, run, build.message(requests, version), request_map, now)
        return ""

    def _start_export(self, tx: Tx, company: Company, now: datetime) -> ExportState:
        exported_from = export_store.exported_from(tx, company.id)
        return export_step.start(company.settings.export_types, exported_from, now)

    def _enter_inventory(self, tx: Tx, run: Run) -> Run:
        stage = RunStage.INVENTORY if run.inventory_due else _after_inventory(run)
        run_store.set_stage(tx, run.id, stage)
        return run_store.get(tx, run.id)

    def _handle_inventory(
        self,
        tx: Tx,
        run: Run,
        company: Company,
        exchange: Exchange,
        responses: list[QbResponse],
        now: datetime,
    ) -> None:
        """Write what the inventory query's answer decided: the stock levels, its state, and
        when the query is over, when the next one is due."""
        state = run.inventory_state or inventory.start(
            company_store.inventory_synced_from(tx, company.id), now
        )
        answer = inventory.handle(state, exchange.request_map, responses)
        changed = inventory_store.upsert(tx, company.id, answer.levels, now)
        state = dataclasses.replace(answer.state, changed=answer.state.changed + changed)
        if answer.error:
            run_store.set_error(tx, run.id, answer.error)
        if state.finished:
            if answer.succeeded:
                company_store.set_inventory_synced_from(tx, company.id, state.started_at)
            every = timedelta(minutes=company.settings.inventory_every_minutes)
            company_store.set_inventory_due_at(tx, company.id, now + every)
            run_store.set_stage(tx, run.id, _after_inventory(run))
        run_store.set_inventory_state(tx, run.id, state)

    def _record_export(
        self,
        tx: Tx,
        run: Run,
        company: Company,
        exchange: Exchange,
        response: str,
        now: datetime,
    ) -> int:
        """Write what the export's answer decided: the transactions and deletions, its state,
        and when the export is over, when the next one is due and where it will start.

        A page of transactions with their lines is no measure of one order's requests, so
        it leaves QuickBooks' measured speed alone."""
        try:
            pages = qbxml_export.read_page(response, ChargeItems.of(company.settings))
        except MalformedQbxml as error:
            run_store.set_error(
                tx,
                run.id,
                f"QuickBooks' answer to the export could not be read ({error.message}); the "
                "run stops, and the next export reads the same transactions again.",
            )
            return -1
        state = run.export_state or self._start_export(tx, company, now)
        answer = export_step.handle(state, exchange.request_map, pages)
        changed = export_store.write(tx, company.id, answer.txns, answer.deleted, now)
        state = dataclasses.replace(answer.state, changed=answer.state.changed + changed)
        if answer.error:
            run_store.set_error(tx, run.id, answer.error)
        if state.finished:
            if answer.succeeded:
                export_store.set_exported_from(tx, company.id, state.started_at)
            every = timedelta(minutes=company.settings.export_every_minutes)
            export_store.set_due_at(tx, company.id, now + every)
            run_store.set_stage(tx, run.id, RunStage.DONE)
        run_store.set_export_state(tx, run.id, state)
        return self._progress(tx, run_store.get(tx, run.id))

    def _send(
        self,
        tx: Tx,
        run: Run,
        message: bytes,
        request_map: RequestMap,
        now: datetime,
    ) -> str:
        text = message.decode("utf-8")
        exchange = run_store.add_exchange(tx, run.id, text, request_map, now)
        if self.recorder:
            self.recorder.sent(run.id, exchange.seq, text)
        return text

    # --- receiveResponseXML ---------------------------------------------------------------

    def record_response(self, ticket: str, response: str, hresult: str, message: str) -> int:
        """Progress 0-100, or -1 when the run cannot go on (last_error says why)."""
        now = self.clock()
        with self.store.transaction() as tx:
            run, company = self._open(tx, ticket, now, count_waiting=True)
            exchange = run_store.answer_pending(
                tx, run.id, response or "", hresult or "", message or "", now
            )
            if exchange is None:
                run_store.set_error(tx, run.id, "No request of this run is waiting for a response.")
                return -1
            if self.recorder:
                self.recorder.received(
                    run.id, exchange.seq, response or "", hresult or "", message or ""
                )
            sent_for = order_ids(exchange.request_map)
            if hresult:
                return self._quickbooks_failed(tx, run, company, sent_for, hresult, message, now)
            if run.stage is RunStage.EXPORT:
                return self._record_export(tx, run, company, exchange, response or "", now)
            try:
                responses = parse_response(response)
            except MalformedQbxml as error:
                order_store.recheck(tx, run.id, sent_for, now)
                run_store.set_error(
                    tx,
                    run.id,
                    f"The response from QuickBooks could not be read ({error.message}); "
                    "the run stops and its orders will be checked again in the next run.",
                )
                return -1
            waiting = None
            if run.stage is RunStage.INVENTORY:
                self._handle_inventory(tx, run, company, exchange, responses, now)
            else:
                left = self._handle_orders(tx, run, company, exchange.request_map, responses, now)
                if run.waiting_orders is not None:
                    waiting = run.waiting_orders - left
            elapsed = (now - exchange.sent_at).total_seconds()
            speed = company.seconds_per_request
            updated = planning.updated_speed(speed, elapsed, len(exchange.request_map))
            if planning.speed_changed(speed, updated):
                company_store.set_seconds_per_request(tx, company.id, updated)
            if run.stage is RunStage.INVENTORY:
                run = run_store.get(tx, run.id)  # the step moved its inventory_state on
            # Handling orders changes only their rows and the run's suspects, which
            # _progress does not read: the run as locked at the start still tells it, and
            # the orders still waiting are those the lease counted less those that left.
            return self._progress(tx, run, waiting)

    def _handle_orders(
        self,
        tx: Tx,
        run: Run,
        company: Company,
        request_map: RequestMap,
        responses: list[QbResponse],
        now: datetime,
    ) -> int:
        """Apply one response to the run's orders; returns how many left the run's waiting set."""
        sent_for = order_ids(request_map)
        loaded = order_store.claimed_by(tx, run.id, order_ids=sent_for)
        ctx = posting_unit.response_context(tx, company, loaded, responses)
        answered: set[int] = set()
        for response in responses:
            purpose = request_map.get(response.request_id)
            if purpose is None:
                continue
            steps.handle(ctx, purpose, response)
            if purpose.order_id is not None:
                answered.add(purpose.order_id)
        if ctx.mismatched:
            log.warning(
                "run %s: QuickBooks' answers for orders %s did not answer what was asked; "
                "they are checked again",
                run.id,
                sorted(ctx.mismatched),
            )
            answered -= ctx.mismatched
        order_store.apply_changes(tx, run.id, now, ctx.order_changes, ctx.payment_changes)
        posting_unit.after_answers(tx, company, ctx, now)
        order_store.recheck(tx, run.id, [oid for oid in sent_for if oid not in answered], now)
        suspects = tuple(s for s in run.summary.suspects if s not in answered)
        if suspects != run.summary.suspects:
            run_store.set_summary(tx, run.id, dataclasses.replace(run.summary, suspects=suspects))
        return ctx.left_run()

    def _quickbooks_failed(
        self,
        tx: Tx,
        run: Run,
        company: Company,
        sent_for: list[int],
        hresult: str,
        message: str,
        now: datetime,
    ) -> int:
        if hresult.lower() == PARSE_ERROR_HRESULT and run.stage is RunStage.ORDERS:
            # QuickBooks rejected the whole message, so none of it was applied. Send its
            # orders one per message until the one it cannot read is found.
            earlier = run.summary.suspects
            if len(sent_for) == 1:
                orders = {o.id: o for o in order_store.claimed_by(tx, run.id, order_ids=sent_for)}
                if sent_for[0] in orders:
                    ctx = steps.ResponseContext(orders, company.name)
                    steps.fail_unreadable(ctx, orders[sent_for[0]], hresult, message)
                    order_store.apply_changes(
                        tx, run.id, now, ctx.order_changes, ctx.payment_changes
                    )
                suspects = tuple(s for s in earlier if s != sent_for[0])
            else:
                suspects = (*sent_for, *(s for s in earlier if s not in sent_for))
            run_store.set_summary(tx, run.id, dataclasses.replace(run.summary, suspects=suspects))
            return self._progress(tx, run_store.get(tx, run.id))
        order_store.recheck(tx, run.id, sent_for, now)
        run_store.set_error(
            tx,
            run.id,
            f"QuickBooks reported {hresult}: {message or 'no message'}. The run stops; its orders "
            "are safe and will be checked again in the next run.",
        )
        return -1

    def _progress(self, tx: Tx, run: Run, waiting: int | None = None) -> int:
        # The orders take the run up to 90 % when an inventory query or an export follows
        # (80 % when both do); each of those then fills its tenth.
        export_from = 90 if run.export_due else 100
        inventory_from = export_from - 10 if run.inventory_due else export_from
        if run.stage is RunStage.ORDERS:
            if waiting is None:
                waiting = order_store.waiting_count(tx, run.id)
            if waiting == 0 and not (run.inventory_due or run.export_due):
                return 100
            done = (run.batch_size - waiting) / max(run.batch_size, 1)
            return min(99, int(done * inventory_from))
        if run.stage is RunStage.INVENTORY:
            state = run.inventory_state
            if state is None:
                return inventory_from
            if state.finished and not run.export_due:
                return 100
            return min(99, inventory_from + int(9 * (1.0 if state.finished else state.fraction)))
        if run.stage is RunStage.EXPORT:
            export_state = run.export_state
            if export_state is None:
                return export_from
            if export_state.finished:
                return 100
            return min(99, export_from + int(9 * export_state.fraction))
        return 100

    # --- connectionError / getLastError / closeConnection ------------------------------

    def connection_error(self, ticket: str, hresult: str, message: str) -> str:
        now = self.clock()
        with self.store.transaction() as tx:
            try:
                run = run_store.by_ticket(tx, passwords.ticket_digest(ticket), lock=True)
            except InvalidTicket:
                return "done"
            reason = message.strip().rstrip(".") or "no message"
            run_store.set_error(
                tx,
                run.id,
                f"The Web Connector could not reach QuickBooks ({hresult}: {reason}). "
                "Make sure QuickBooks can open the company file, then run again.",
            )
            self._end(tx, run, RunStatus.FAILED, now)
        return "done"

    def last_error(self, ticket: str) -> str:
        with self.store.transaction() as tx:
            try:
                run = run_store.by_ticket(tx, passwords.ticket_digest(ticket))
            except InvalidTicket as error:
                return error.message
            return run.last_error or "No error."

    def remember_error(self, ticket: str, message: str) -> None:
        """Keep ``message`` for getLastError (InvalidTicket when there is no such run)."""
        with self.store.transaction() as tx:
            run = run_store.by_ticket(tx, passwords.ticket_digest(ticket))
            run_store.set_error(tx, run.id, message)

    def close(self, ticket: str) -> str:
        now = self.clock()
        if not ticket:
            return "No run: the login was refused (see the Web Connector's status)."
        with self.store.transaction() as tx:
            try:
                run = run_store.by_ticket(tx, passwords.ticket_digest(ticket), lock=True)
            except InvalidTicket:
                return (
                    "No run was started: nothing was queued and no inventory query was due, "
                    "or another run of this company was still working."
                )
            outcomes = self._end(tx, run, RunStatus.CLOSED, now)
        return summary_text(outcomes)

    def _end(self, tx: Tx, run: Run, status: RunStatus, now: datetime) -> dict[str, int]:
        if run_store.close(tx, run.id, status, now):
            order_store.release_run(tx, run.id, now, max_attempts=MAX_ATTEMPTS)
        outcomes = order_store.run_outcomes(tx, run.id)
        run_store.set_summary(tx, run.id, dataclasses.replace(run.summary, outcomes=outcomes))
        return outcomes

    # --- shared -------------------------------------------------------------------------

    def _open(
        self, tx: Tx, ticket: str, now: datetime, *, count_waiting: bool = False
    ) -> tuple[Run, Company]:
        """The ticket's open run, locked for this callback, its lease extended."""
        expires_at = now + timedelta(seconds=self.settings.run_timeout_seconds)
        run, company = run_store.lease(
            tx, passwords.ticket_digest(ticket), now, expires_at, count_waiting=count_waiting
        )
        _note_call(run=run.id, company=company.name)
        return run, company


PAGE = 40


def _after_inventory(run: Run) -> RunStage:
    """What a run does once its orders and any inventory query are done."""
    return RunStage.EXPORT if run.export_due else RunStage.DONE


def _pages(tx: Tx, run_id: int, first: int = PAGE) -> Iterator[QueuedOrder]:
    """The run's waiting orders, read a page at a time: a message fills after a few pages.

    The first page holds ``first`` orders: a company that sends one order per message has
    its message after reading one order, not forty.
    """
    after, size = 0, first
    while True:
        page = order_store.claimed_by(tx, run_id, limit=size, after_id=after)
        yield from page
        if len(page) < size:
            return
        after, size = page[-1].id, PAGE


def summary_text(outcomes: dict[str, int]) -> str:
    """closeConnection's one line, e.g. 'Synced 12 orders, 1 duplicate skipped, 1 error'."""
    synced = outcomes.get(OrderStatus.SYNCED.value, 0)
    parts = [f"Synced {synced} order{'s' if synced != 1 else ''}"]
    duplicates = outcomes.get(OrderStatus.DUPLICATE.value, 0)
    if duplicates:
        parts.append(f"{duplicates} already in QuickBooks")
    errors = outcomes.get(OrderStatus.ERROR.value, 0)
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    left = outcomes.get(OrderStatus.PENDING.value, 0) + outcomes.get(
        OrderStatus.IN_PROGRESS.value, 0
    )
    if left:
        parts.append(f"{left} left for the next run")
    return ", ".join(parts)
