"""A stand-in QuickBooks Web Connector: drives the bridge's SOAP service over HTTP as QBWC does.

It speaks through zeep from Intuit's own WSDL (the service's `?wsdl` only when Intuit's is not
at hand), so a service that only works with its own generated client is caught here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport
from zeep.wsdl.bindings.soap import Soap11Binding

from qbwc_bridge.simulator.quickbooks import (
    COULD_NOT_START_HRESULT,
    COULD_NOT_START_MESSAGE,
    FakeQuickBooks,
    QuickBooksFailure,
    ResponseLost,
)
from qbwc_bridge.simulator.schema import find_oracle_dir, parse_version

INTUIT_WSDL_NAME = "TroubleshootWebServiceFS.intuit-hosted.wsdl"
INTUIT_BINDING = "{http://developer.intuit.com/}TroubleshootWebServiceFSSoap"

_CONNECTION_ATTEMPTS = 3

Outcome = Literal[
    "done",
    "error",
    "auth-failed",
    "nothing-to-do",
    "busy",
    "client-version-rejected",
    "connection-error",
    "lost",
    "no-request",
    "exchange-limit",
    "soap-fault",
    "transport-error",
]

_AUTH_ENDINGS: dict[str, Outcome] = {"nvu": "auth-failed", "none": "nothing-to-do", "busy": "busy"}


@dataclass(frozen=True)
class CallTiming:
    method: str
    seconds: float


@dataclass(frozen=True)
class RunReport:
    """What one Web Connector run saw, call by call."""

    outcome: Outcome
    ticket_issued: bool
    ticket: str | None
    auth_result: str | None
    exchanges: int
    progress: tuple[str, ...]
    last_error: str | None
    close_message: str | None
    server_version: str | None
    client_version_result: str | None
    connection_error_result: str | None
    requests: tuple[str, ...]
    lost: bool
    failure: str | None
    timings: tuple[CallTiming, ...]

    def seconds_of(self, method: str) -> tuple[float, ...]:
        """Wall time of every call of one callback, in call order."""
        return tuple(t.seconds for t in self.timings if t.method == method)


@dataclass
class _Recorder:
    """The mutable notes of a run in progress; frozen into a RunReport at the end."""

    say: Callable[[str], None] | None
    outcome: Outcome = "done"
    ticket: str | None = None
    auth_result: str | None = None
    exchanges: int = 0
    progress: list[str] = field(default_factory=list)
    last_error: str | None = None
    close_message: str | None = None
    server_version: str | None = None
    client_version_result: str | None = None
    connection_error_result: str | None = None
    requests: list[str] = field(default_factory=list)
    lost: bool = False
    failure: str | None = None
    timings: list[CallTiming] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.progress.append(text)
        if self.say is not None:
            self.say(text)

    def report(self) -> RunReport:
        return RunReport(
            outcome=self.outcome,
            ticket_issued=bool(self.ticket),
            ticket=self.ticket,
            auth_result=self.auth_result,
            exchanges=self.exchanges,
            progress=tuple(self.progress),
            last_error=self.last_error,
            close_message=self.close_message,
            server_version=self.server_version,
            client_version_result=self.client_version_result,
            connection_error_result=self.connection_error_result,
            requests=tuple(self.requests),
            lost=self.lost,
            failure=self.failure,
            timings=tuple(self.timings),
        )


class _RunEnded(Exception):
    """The run stops here; the recorder already says why."""


class WebConnector:
    """One QBWC application entry: URL, user name, password, and the QuickBooks beside it.

    ``noop_wait`` is the pause after getLastError answers "NoOp" (QBWC waits a few seconds;
    tests use 0) and ``max_noops`` bounds those retries. ``max_exchanges`` bounds a run whose
    service never reports 100 %. ``timeout`` is the per-call limit, about QBWC's two minutes.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        quickbooks: FakeQuickBooks,
        *,
        wsdl: str | Path | None = None,
        version: str = "2.3.0.36",
        company_file: str = r"C:\Company\Sample.QBW",
        progress: Callable[[str], None] | None = None,
        max_exchanges: int = 10000,
        noop_wait: float = 0.0,
        max_noops: int = 10,
        timeout: float = 120.0,
    ) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.quickbooks = quickbooks
        self.version = version
        self.company_file = company_file
        self.max_exchanges = max_exchanges
        self.noop_wait = noop_wait
        self.max_noops = max_noops
        self._progress = progress
        self._wsdl = str(wsdl) if wsdl is not None else _default_wsdl(url)
        self._timeout = timeout
        self._service: Any = None

    def run(self) -> RunReport:
        """One scheduled update: the whole conversation, ending however QBWC would end it."""
        run = _Recorder(self._progress)
        try:
            self._converse(run)
        except _RunEnded:
            pass
        except zeep.exceptions.Fault as fault:
            run.outcome, run.failure = "soap-fault", f"SOAP fault: {fault.message}"
            run.note(run.failure)
        except (requests.RequestException, zeep.exceptions.TransportError) as exc:
            run.outcome, run.failure = "transport-error", f"{type(exc).__name__}: {exc}"
            run.note(run.failure)
        return run.report()

    # ----------------------------------------------------------------- the conversation

    def _converse(self, run: _Recorder) -> None:
        run.note(f"Connecting to {self.url}")
        run.server_version = self._call(run, "serverVersion")
        run.client_version_result = self._call(run, "clientVersion", strVersion=self.version)
        self._check_client_version(run, run.client_version_result or "")
        ticket, status = self._authenticate(run)
        self.quickbooks.begin_session()
        company_file = status or self.company_file
        if self.quickbooks.unreachable:
            self._report_connection_error(run, ticket)
            return
        self._exchange_loop(run, ticket, company_file)

    def _check_client_version(self, run: _Recorder, answer: str) -> None:
        if answer.startswith("E:"):
            run.outcome = "client-version-rejected"
            run.note(f"clientVersion refused this Web Connector: {answer[2:]}")
            raise _RunEnded
        if answer.startswith(("W:", "O:")):
            run.note(f"clientVersion warning: {answer}")

    def _authenticate(self, run: _Recorder) -> tuple[str, str]:
        answer = self._call(
            run, "authenticate", strUserName=self.username, strPassword=self.password
        )
        values = _strings(answer)
        ticket = values[0] if values else ""
        status = values[1] if len(values) > 1 else ""
        run.ticket = ticket or None
        run.auth_result = status
        ending = _AUTH_ENDINGS.get(status.lower())
        if ending is not None or not ticket:
            run.outcome = ending or "auth-failed"
            run.note(f"authenticate: {status or 'no ticket'}")
            raise _RunEnded
        run.note("Authenticated")
        return ticket, status

    def _report_connection_error(self, run: _Recorder, ticket: str) -> None:
        """QuickBooks cannot be started: tell the service; another company file fails alike."""
        run.outcome = "connection-error"
        for _ in range(_CONNECTION_ATTEMPTS):
            run.note(f"{COULD_NOT_START_HRESULT}: {COULD_NOT_START_MESSAGE}")
            run.connection_error_result = self._call(
                run,
                "connectionError",
                ticket=ticket,
                hresult=COULD_NOT_START_HRESULT,
                message=COULD_NOT_START_MESSAGE,
            )
            if (run.connection_error_result or "done").lower() == "done":
                break
        self._close(run, ticket)

    def _exchange_loop(self, run: _Recorder, ticket: str, company_file: str) -> None:
        major, minor = parse_version(self.quickbooks.max_version)
        first, noops = True, 0
        while run.exchanges < self.max_exchanges:
            request = self._call(
                run,
                "sendRequestXML",
                ticket=ticket,
                strHCPResponse=self.quickbooks.hcp_response() if first else "",
                strCompanyFileName=company_file,
                qbXMLCountry=self.quickbooks.country,
                qbXMLMajorVers=major,
                qbXMLMinorVers=minor,
            )
            first = False
            if not request:
                if self._no_request(run, ticket, noops):
                    noops += 1
                    continue
                return
            run.requests.append(request)
            if not self._deliver(run, ticket, request):
                return
        run.outcome = "exchange-limit"
        run.note(f"stopped after {self.max_exchanges} exchanges")
        self._close(run, ticket)

    def _no_request(self, run: _Recorder, ticket: str, noops: int) -> bool:
        """After an empty request: True to ask again (NoOp), False when the run has ended."""
        message = self._call(run, "getLastError", ticket=ticket) or ""
        if message == "NoOp" and noops < self.max_noops:
            run.note("NoOp: waiting")
            time.sleep(self.noop_wait)
            return True
        run.last_error = message
        run.outcome = "no-request"
        run.note(message or "No request")
        self._close(run, ticket)
        return False

    def _deliver(self, run: _Recorder, ticket: str, request: str) -> bool:
        """Hand the request to QuickBooks and its answer to the service; False ends the run."""
        response, hresult, message = "", "", ""
        try:
            response = self.quickbooks.process(request)
        except ResponseLost:
            run.lost, run.outcome = True, "lost"
            run.note("The Web Connector lost QuickBooks' response; the run dies")
            return False
        except QuickBooksFailure as failure:
            hresult, message = failure.hresult, failure.message
            run.note(f"QuickBooks: {hresult} {message}")
        result = self._call(
            run, "receiveResponseXML", ticket=ticket, response=response, hresult=hresult,
            message=message,
        )  # fmt: skip
        run.exchanges += 1
        percent = int(result) if result is not None else -1
        if percent < 0:
            run.outcome = "error"
            run.last_error = self._call(run, "getLastError", ticket=ticket) or ""
            run.note(f"Error: {run.last_error}")
            self._close(run, ticket)
            return False
        run.note(f"Sending request {run.exchanges} … {min(percent, 100)} %")
        if percent >= 100:
            run.outcome = "done"
            self._close(run, ticket)
            return False
        return True

    def _close(self, run: _Recorder, ticket: str) -> None:
        run.close_message = self._call(run, "closeConnection", ticket=ticket)
        run.note(f"closeConnection: {run.close_message}")

    # ----------------------------------------------------------------- SOAP plumbing

    def _call(self, run: _Recorder, method: str, **arguments: Any) -> Any:
        started = time.perf_counter()
        try:
            return getattr(self._soap(), method)(**arguments)
        finally:
            run.timings.append(CallTiming(method, time.perf_counter() - started))

    def _soap(self) -> Any:
        if self._service is None:
            # zeep's constructors carry no annotations; go through Any to keep mypy strict here.
            make_transport: Any = Transport
            make_client: Any = zeep.Client
            transport = make_transport(timeout=self._timeout, operation_timeout=self._timeout)
            client = make_client(self._wsdl, transport=transport)
            self._service = client.create_service(_soap11_binding(client), self.url)
        return self._service


def _default_wsdl(url: str) -> str:
    oracle = find_oracle_dir()
    if oracle is not None and (oracle / "wsdl" / INTUIT_WSDL_NAME).is_file():
        return str(oracle / "wsdl" / INTUIT_WSDL_NAME)
    return f"{url}?wsdl"


def _soap11_binding(client: Any) -> str:
    """Intuit's SOAP 1.1 binding when present, else the first SOAP 1.1 binding of the WSDL."""
    bindings: dict[str, Any] = dict(client.wsdl.bindings)
    if INTUIT_BINDING in bindings:
        return INTUIT_BINDING
    for name, binding in bindings.items():
        if isinstance(binding, Soap11Binding):
            return str(name)
    raise ValueError("the WSDL has no SOAP 1.1 binding")


def _strings(answer: Any) -> list[str]:
    """authenticate's ArrayOfString as a list, however zeep shaped it."""
    if answer is None:
        return []
    if isinstance(answer, list):
        return [value or "" for value in answer]
    values = getattr(answer, "string", None)
    if values is None:
        return []
    return [value or "" for value in values]
