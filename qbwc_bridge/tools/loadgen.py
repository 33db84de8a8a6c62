"""Many stand-in Web Connectors at once, cheaply, from processes of their own.

Why not the zeep-based WebConnector: it spends milliseconds of CPU per call and ran in the
benchmark's own process, so a figure taken with it measured the client as much as the
service. Here each connector sends the envelopes the real Web Connector sends (the shape of
../shared/oracle/soap, built with lxml) over HTTP/1.1, one connection per call, from
non-blocking sockets on an asyncio loop, and the connectors are spread over a few processes
so none of them shares a GIL with the service or waits on another process's loop for long.

One connector is one company's Web Connector: serverVersion, clientVersion and authenticate
open a run; sendRequestXML / receiveResponseXML exchanges follow, with QuickBooks' "think
time" between a request and its response; closeConnection ends it, and a new run starts at
once until the measured window is over (the run in progress is then finished, so every
order ends claimed by a closed run). QuickBooks is the stand-in FakeQuickBooks (no XSD
validation), its answers remembered by conversation so that connectors whose conversations
are alike do not each pay for computing the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from qbwc_bridge.errors import MalformedXml
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator.demo_company import demo_quickbooks
from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, QuickBooksFailure, ResponseLost

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
INTUIT_NS = "http://developer.intuit.com/"
_NSMAP = {
    "soap": SOAP_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xsd": "http://www.w3.org/2001/XMLSchema",
}
# The parameter names of Intuit's WSDL, in order.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "serverVersion": (),
    "clientVersion": ("strVersion",),
    "authenticate": ("strUserName", "strPassword"),
    "sendRequestXML": (
        "ticket",
        "strHCPResponse",
        "strCompanyFileName",
        "qbXMLCountry",
        "qbXMLMajorVers",
        "qbXMLMinorVers",
    ),
    "receiveResponseXML": ("ticket", "response", "hresult", "message"),
    "getLastError": ("ticket",),
    "closeConnection": ("ticket",),
}
# The callbacks that move data; the rest open a run (and authenticate is slow on purpose).
EXCHANGE_CALLBACKS = ("sendRequestXML", "receiveResponseXML", "closeConnection", "getLastError")
RUN_START_CALLBACKS = ("serverVersion", "clientVersion", "authenticate")
WEB_CONNECTOR_VERSION = "2.3.0.36"
COMPANY_FILE = r"C:\Company\Sample.QBW"
_USER_AGENT = b"Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)"
# A fixed clock makes the stand-in's answers depend on the conversation alone (see _Memo).
_FIXED_NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def envelope(method: str, values: Sequence[str | int]) -> bytes:
    """The SOAP 1.1 request the Web Connector sends for ``method`` with ``values``."""
    root = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap=_NSMAP)
    body = etree.SubElement(root, f"{{{SOAP_NS}}}Body")
    call = etree.SubElement(body, f"{{{INTUIT_NS}}}{method}", nsmap={None: INTUIT_NS})  # type: ignore[dict-item]
    for name, value in zip(PARAMETERS[method], values, strict=True):
        etree.SubElement(call, f"{{{INTUIT_NS}}}{name}").text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class CallFailed(Exception):
    """A call got no usable answer: HTTP error, SOAP fault, or an unreadable body."""


def read_result(method: str, body: bytes) -> str | list[str]:
    """``methodResult``'s text (a list of strings for authenticate), or CallFailed."""
    try:
        root = parse_xml(body)
    except MalformedXml as error:
        raise CallFailed(f"{method}: unreadable answer ({error.message})") from error
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    if fault is not None:
        raise CallFailed(f"{method}: SOAP fault {fault.findtext('faultstring')!r}")
    result = root.find(f".//{{{INTUIT_NS}}}{method}Result")
    if result is None:
        raise CallFailed(f"{method}: no {method}Result in the answer")
    if method == "authenticate":
        return [child.text or "" for child in result]
    return result.text or ""


# --- HTTP ------------------------------------------------------------------------------------


class _Http:
    """HTTP/1.1 POSTs, one connection per call, half-closed as soon as the request is sent.

    gunicorn's sync workers close every connection after one answer, and then (gunicorn 27,
    ``util.close_graceful``) wait until the client closes its end before taking the next
    one. In production that client is nginx (deploy/nginx.conf), which closes within
    microseconds; a Python event loop sharing two busy cores with the service can take
    milliseconds to get there, and the worker would sit idle meanwhile. Half-closing right
    after the request ends the client's side before the answer is even written.

    Plain non-blocking sockets on the event loop: an asyncio stream (transport, protocol,
    reader) per call cost the generator more CPU than everything else it does.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.timeout = timeout
        self.connects = 0
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n".encode()
            + b"User-Agent: "
            + _USER_AGENT
            + b"\r\nContent-Type: text/xml; charset=utf-8\r\nConnection: close\r\n"
        )

    async def post(self, action: str, body: bytes) -> bytes:
        request = (
            self._head
            + f'SOAPAction: "{INTUIT_NS}{action}"\r\nContent-Length: {len(body)}\r\n\r\n'.encode()
            + body
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(sock, request)
        except TimeoutError as error:
            raise CallFailed(f"{action}: no answer within {self.timeout} s") from error
        except _Closed as closed:
            raise CallFailed(f"{action}: the server closed the connection") from closed
        except OSError as error:
            raise CallFailed(f"{action}: {type(error).__name__}: {error}") from error
        finally:
            sock.close()

    async def _exchange(self, sock: socket.socket, request: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (self.host, self.port))
        self.connects += 1
        await loop.sock_sendall(sock, request)
        sock.shutdown(socket.SHUT_WR)
        data = await self._receive(loop, sock, b"")
        while b"\r\n\r\n" not in data:
            data = await self._receive(loop, sock, data)
        head, _, body = data.partition(b"\r\n\r\n")
        status, *headers = head.split(b"\r\n")
        length = 0
        for line in headers:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body = await self._receive(loop, sock, body)
        code = status.split(b" ", 2)[1]
        if code != b"200":
            raise CallFailed(f"HTTP {code.decode()}: {body[:200]!r}")
        return body[:length]

    @staticmethod
    async def _receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, had: bytes) -> bytes:
        chunk = await loop.sock_recv(sock, 262144)
        if not chunk:
            raise _Closed()
        return had + chunk


class _Closed(Exception):
    """The server closed the connection before a whole answer came."""


# --- QuickBooks ------------------------------------------------------------------------------


class _Memo:
    """QuickBooks' answers by conversation so far, shared by the connectors of one process.

    The stand-in is deterministic given its clock and the requests it has seen, so a
    connector whose conversation matches one already answered takes the remembered answer.
    Only the first connector to reach a new point of the conversation pays for
    FakeQuickBooks.process, with the one stand-in that stands at that point (``fakes``),
    which it then carries forward.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[bytes, str], tuple[str, bytes]] = {}
        self.fakes: dict[bytes, FakeQuickBooks] = {}
        self.hcp = ""
        self.hits = 0
        self.misses = 0


class _QuickBooks:
    """One connector's QuickBooks: remembered answers, else the stand-in at its point."""

    def __init__(self, memo: _Memo) -> None:
        self.memo = memo
        self.history: list[str] = []  # every request since the start, "" for a new session
        self.state = hashlib.sha1(b"start").digest()

    def hcp_response(self) -> str:
        if not self.memo.hcp:
            self.memo.hcp = _fake().hcp_response()
        return self.memo.hcp

    def begin_session(self) -> None:
        fake = self.memo.fakes.pop(self.state, None)
        self._advance("")
        if fake is not None:
            fake.begin_session()
            self.memo.fakes[self.state] = fake

    def process(self, request: str) -> str:
        key = (self.state, request)
        known = self.memo.answers.get(key)
        if known is not None:
            self.memo.hits += 1
            response, self.state = known
            self.history.append(request)
            return response
        self.memo.misses += 1
        fake = self.memo.fakes.pop(self.state, None) or self._replayed()
        response = fake.process(request)
        self._advance(request)
        self.memo.fakes[self.state] = fake
        self.memo.answers[key] = (response, self.state)
        return response

    def _advance(self, request: str) -> None:
        self.history.append(request)
        self.state = hashlib.sha1(self.state + request.encode()).digest()

    def _replayed(self) -> FakeQuickBooks:
        """A new stand-in taken through this conversation (it went where no other did)."""
        fake = _fake()
        for past in self.history:
            if past:
                fake.process(past)
            else:
                fake.begin_session()
        return fake


def _fake() -> FakeQuickBooks:
    return demo_quickbooks(validate=False, clock=lambda: _FIXED_NOW)


# --- one Web Connector -----------------------------------------------------------------------

Record = tuple[str, float, float]  # method, wall time at the answer, milliseconds


@dataclass
class _Outcome:
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # authenticate's second string
    runs_closed: int = 0
    exchanges: int = 0
    connects: int = 0


class _Connector:
    """One company's Web Connector, run after run, noting every call in ``outcome``."""

    def __init__(
        self,
        url: str,
        account: tuple[str, str],
        think: float,
        timeout: float,
        memo: _Memo,
        rng: random.Random,
        outcome: _Outcome,
    ) -> None:
        self.http = _Http(url, timeout)
        self.username, self.password = account
        self.think = think
        self.quickbooks = _QuickBooks(memo)
        self.rng = rng
        self.out = outcome
        self.ticket = ""

    async def call(self, method: str, *values: str | int) -> str | list[str]:
        body = envelope(method, values)
        started = time.perf_counter()
        raw = await self.http.post(method, body)
        self.out.records.append((method, time.time(), (time.perf_counter() - started) * 1000))
        return read_result(method, raw)

    async def open_run(self) -> bool:
        """serverVersion, clientVersion, authenticate: True with a ticket for a run to do."""
        try:
            await self.call("serverVersion")
            await self.call("clientVersion", WEB_CONNECTOR_VERSION)
            answer = await self.call("authenticate", self.username, self.password)
        except CallFailed as error:
            self.out.errors.append(str(error))
            return False
        ticket, status = [*answer, "", ""][:2]
        self.out.answers[status] = self.out.answers.get(status, 0) + 1
        if status.lower() in ("nvu", "none", "busy") or not ticket:
            if status.lower() != "none":
                self.out.errors.append(f"authenticate answered {status!r} for {self.username}")
            return False
        self.ticket = ticket
        return True

    async def run(self, until: float) -> None:
        """Runs back to back until wall time ``until``; the one in progress is finished."""
        await asyncio.sleep(self.rng.uniform(0, 3 * self.think))  # not all in step
        opened = bool(self.ticket)
        while True:
            if opened:
                try:
                    await self._exchanges()
                except CallFailed as error:
                    self.out.errors.append(str(error))
                    await asyncio.sleep(self.think)
            if time.time() >= until:
                break
            opened = await self.open_run()
            if not opened:
                await asyncio.sleep(self.think)  # nothing to do (or refused): ask later
        self.out.connects += self.http.connects

    async def _exchanges(self) -> None:
        ticket, first = self.ticket, True
        self.quickbooks.begin_session()
        while True:
            request = await self.call(
                "sendRequestXML",
                ticket,
                self.quickbooks.hcp_response() if first else "",
                COMPANY_FILE,
                "US",
                13,
                0,
            )
            first = False
            if not request:
                message = await self.call("getLastError", ticket)
                if message != "Nothing left to do in this run.":
                    self.out.errors.append(f"no request: {message}")
                break
            assert isinstance(request, str)
            think = self.think * self.rng.uniform(0.8, 1.2)
            started = time.perf_counter()
            response, hresult, text = "", "", ""
            try:
                response = self.quickbooks.process(request)
            except (QuickBooksFailure, ResponseLost) as failure:
                self.out.errors.append(f"QuickBooks: {failure}")
                if isinstance(failure, QuickBooksFailure):
                    hresult, text = failure.hresult, failure.message
            await asyncio.sleep(max(0.0, think - (time.perf_counter() - started)))
            answer = await self.call("receiveResponseXML", ticket, response, hresult, text)
            self.out.exchanges += 1
            percent = int(str(answer) or "-1")
            if percent < 0:
                self.out.errors.append(
                    f"receiveResponseXML: {await self.call('getLastError', ticket)}"
                )
                break
            if percent >= 100:
                break
        await self.call("closeConnection", ticket)
        self.out.runs_closed += 1
        self.ticket = ""


# --- the processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    """What to offer: one account per Web Connector, and how long to measure."""

    url: str
    accounts: tuple[tuple[str, str], ...]
    think_seconds: float  # defaults live in tools.bench.LoadOptions
    warmup_seconds: float
    duration_seconds: float
    processes: int
    timeout_seconds: float = 120.0
    seed: int = 1


@dataclass
class LoadReport:
    """What the connectors saw. Wall times let the service's log be cut to the same window."""

    window_start: float
    window_end: float
    records: list[Record]
    errors: list[str]
    answers: dict[str, int]
    runs_closed: int
    exchanges: int
    connects: int
    login_ms: list[float]  # the first authenticate of every connector, before the window
    client_cpu_seconds: float  # the generator's processes, over the window
    memo_hits: int
    memo_misses: int

    def in_window(self, methods: Sequence[str]) -> list[float]:
        return [
            ms
            for method, at, ms in self.records
            if method in methods and self.window_start <= at <= self.window_end
        ]

    @property
    def seconds(self) -> float:
        return self.window_end - self.window_start


def offered_rate(connectors: int, think: float, exchanges_per_run: int) -> float:
    """Exchange callbacks per second the connectors offer when the service answers at once.

    A run of E exchanges makes 2E + 1 of them (sendRequestXML and receiveResponseXML per
    exchange, then closeConnection) in E think times.
    """
    return connectors * (2 * exchanges_per_run + 1) / (exchanges_per_run * think)


def drive(plan: LoadPlan) -> LoadReport:
    """Start the processes, open every connector's first run, measure, finish, gather."""
    context = multiprocessing.get_context("spawn")
    shares = [plan.accounts[i :: plan.processes] for i in range(plan.processes)]
    pipes: list[Connection] = []
    workers = []
    for number, share in enumerate(shares):
        if not share:
            continue
        parent, child = context.Pipe()
        worker = context.Process(
            target=_child, args=(plan, share, plan.seed * 1000 + number, child), daemon=True
        )
        worker.start()
        child.close()
        pipes.append(parent)
        workers.append(worker)
    try:
        logins: list[float] = []
        for pipe in pipes:
            logins += _expect(pipe, "ready")
        start = time.time() + 0.2
        window = (start + plan.warmup_seconds, start + plan.warmup_seconds + plan.duration_seconds)
        for pipe in pipes:
            pipe.send(("go", start, window))
        parts = [_expect(pipe, "done") for pipe in pipes]
    finally:
        for worker in workers:
            worker.join(timeout=plan.timeout_seconds)
            if worker.is_alive():
                worker.terminate()
    return LoadReport(
        window_start=window[0],
        window_end=window[1],
        records=[r for part in parts for r in part["records"]],
        errors=[e for part in parts for e in part["errors"]],
        answers=_sum_counts(part["answers"] for part in parts),
        runs_closed=sum(part["runs_closed"] for part in parts),
        exchanges=sum(part["exchanges"] for part in parts),
        connects=sum(part["connects"] for part in parts),
        login_ms=logins,
        client_cpu_seconds=sum(part["cpu"] for part in parts),
        memo_hits=sum(part["hits"] for part in parts),
        memo_misses=sum(part["misses"] for part in parts),
    )


def _expect(pipe: Connection, what: str) -> Any:
    kind, payload = pipe.recv()
    if kind == "failed":
        raise RuntimeError(f"a load generator process failed: {payload}")
    if kind != what:
        raise RuntimeError(f"a load generator process said {kind!r}, expected {what!r}")
    return payload


def _sum_counts(parts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def _child(
    plan: LoadPlan, accounts: Sequence[tuple[str, str]], seed: int, pipe: Connection
) -> None:
    try:
        asyncio.run(_child_main(plan, accounts, seed, pipe))
    except BaseException as error:  # the parent must hear of it, not wait forever
        pipe.send(("failed", f"{type(error).__name__}: {error}"))
        raise


async def _child_main(
    plan: LoadPlan, accounts: Sequence[tuple[str, str]], seed: int, pipe: Connection
) -> None:
    memo, outcome, rng = _Memo(), _Outcome(), random.Random(seed)
    connectors = [
        _Connector(
            plan.url,
            account,
            plan.think_seconds,
            plan.timeout_seconds,
            memo,
            random.Random(rng.random()),
            outcome,
        )
        for account in accounts
    ]
    await asyncio.gather(*(c.open_run() for c in connectors))
    logins = [ms for method, _, ms in outcome.records if method == "authenticate"]
    outcome.records.clear()
    pipe.send(("ready", logins))
    loop = asyncio.get_running_loop()
    _, start, (window_start, window_end) = await loop.run_in_executor(None, pipe.recv)
    await asyncio.sleep(max(0.0, start - time.time()))
    cpu: dict[str, float] = {}

    async def cpu_mark(at: float, name: str) -> None:
        await asyncio.sleep(max(0.0, at - time.time()))
        cpu[name] = time.process_time()

    marks = [
        asyncio.create_task(cpu_mark(window_start, "start")),
        asyncio.create_task(cpu_mark(window_end, "end")),
    ]
    await asyncio.gather(*(c.run(window_end) for c in connectors))
    await asyncio.gather(*marks)
    pipe.send(
        (
            "done",
            {
                "records": outcome.records,
                "errors": outcome.errors,
                "answers": outcome.answers,
                "runs_closed": outcome.runs_closed,
                "exchanges": outcome.exchanges,
                "connects": outcome.connects,
                "cpu": cpu["end"] - cpu["start"],
                "hits": memo.hits,
                "misses": memo.misses,
                "pid": os.getpid(),
            },
        )
    )
