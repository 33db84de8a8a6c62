"""The stand-in Web Connector follows QBWC's call order against a scripted SOAP service."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from lxml import etree
from lxml.builder import ElementMaker
from oracle import require_oracle
from qbsim_requests import customer_add, message

from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.simulator import FakeQuickBooks, WebConnector

pytestmark = pytest.mark.oracle

INTUIT = "http://developer.intuit.com/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
Answer = str | int | list[str]


class Script:
    """Answers per operation (a fixed value, or successive values); records every call."""

    def __init__(self, **answers: Answer | Iterable[Answer]) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._answers: dict[str, Callable[[], Answer]] = {}
        defaults: dict[str, Answer] = {
            "serverVersion": "stub 1.0",
            "clientVersion": "",
            "authenticate": ["TICKET", ""],
            "sendRequestXML": "",
            "receiveResponseXML": 100,
            "getLastError": "",
            "closeConnection": "OK",
            "connectionError": "done",
        }
        for name, default in defaults.items():
            self._answers[name] = _source(answers.get(name, default))

    def answer(self, operation: str, arguments: dict[str, str]) -> Answer:
        self.calls.append((operation, arguments))
        return self._answers[operation]()

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


def _source(value: Answer | Iterable[Answer]) -> Callable[[], Answer]:
    if isinstance(value, tuple):
        queue = list(value)
        return lambda: queue.pop(0) if len(queue) > 1 else queue[0]
    fixed: Any = value
    return lambda: fixed


def _envelope(operation: str, answer: Answer) -> bytes:
    soap, intuit = (
        ElementMaker(namespace=SOAP, nsmap={"soap": SOAP}),
        ElementMaker(namespace=INTUIT, nsmap={None: INTUIT}),
    )
    result = intuit(f"{operation}Result")
    if isinstance(answer, list):
        result.extend(intuit.string(value) for value in answer)
    else:
        result.text = str(answer)
    body = soap.Body(intuit(f"{operation}Response", result))
    return etree.tostring(soap.Envelope(body), xml_declaration=True, encoding="utf-8")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def scripted_service(script: Script) -> Iterator[str]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = parse_xml(environ["wsgi.input"].read(length))
        call = body.find(f"{{{SOAP}}}Body")
        assert call is not None
        operation = etree.QName(call[0]).localname
        arguments = {etree.QName(arg).localname: arg.text or "" for arg in call[0]}
        payload = _envelope(operation, script.answer(operation, arguments))
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
        return [payload]

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/qbwc"
    finally:
        server.shutdown()
        server.server_close()


def run(script: Script, quickbooks: FakeQuickBooks | None = None, **options: Any) -> Any:
    wsdl = require_oracle("wsdl", "TroubleshootWebServiceFS.intuit-hosted.wsdl")
    with scripted_service(script) as url:
        connector = WebConnector(
            url, "user", "secret", quickbooks or FakeQuickBooks(), wsdl=wsdl, **options
        )
        return connector.run()


def test_a_full_run_hands_requests_to_quickbooks_and_closes() -> None:
    requests = (message(customer_add("Ann")), message(customer_add("Bob")))
    script = Script(sendRequestXML=requests, receiveResponseXML=(50, 100))
    quickbooks = FakeQuickBooks()
    report = run(script, quickbooks)
    assert script.operations == [
        "serverVersion",
        "clientVersion",
        "authenticate",
        "sendRequestXML",
        "receiveResponseXML",
        "sendRequestXML",
        "receiveResponseXML",
        "closeConnection",
    ]
    first_send, second_send = (args for name, args in script.calls if name == "sendRequestXML")
    assert "<HostQueryRs" in first_send["strHCPResponse"] and second_send["strHCPResponse"] == ""
    assert (first_send["qbXMLMajorVers"], first_send["qbXMLMinorVers"]) == ("13", "0")
    received = [args for name, args in script.calls if name == "receiveResponseXML"]
    assert "CustomerAddRs" in received[0]["response"] and received[0]["ticket"] == "TICKET"
    assert [c.full_name for c in quickbooks.customers] == ["Ann", "Bob"]
    assert report.exchanges == 2 and report.outcome == "done" and report.close_message == "OK"
    assert report.requests == requests
    assert "Sending request 1 … 50 %" in report.progress
    assert len(report.seconds_of("receiveResponseXML")) == 2


def test_client_version_error_stops_before_authenticating() -> None:
    script = Script(clientVersion="E:too old")
    report = run(script)
    assert script.operations == ["serverVersion", "clientVersion"]
    assert report.outcome == "client-version-rejected" and not report.ticket_issued


@pytest.mark.parametrize(
    ("status", "outcome"), [("nvu", "auth-failed"), ("none", "nothing-to-do"), ("busy", "busy")]
)
def test_authentication_answers_that_end_the_run(status: str, outcome: str) -> None:
    script = Script(authenticate=["TICKET", status])
    report = run(script)
    assert script.operations[-1] == "authenticate"
    assert (report.auth_result, report.outcome) == (status, outcome)


def test_unreachable_quickbooks_reports_connection_error() -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.unreachable = True
    script = Script()
    report = run(script, quickbooks)
    assert script.operations[-2:] == ["connectionError", "closeConnection"]
    assert script.calls[-2][1]["hresult"] == "0x80040408"
    assert report.outcome == "connection-error" and quickbooks.round_trips == 0


def test_parse_error_is_reported_with_hresult_and_empty_response() -> None:
    script = Script(sendRequestXML=message(customer_add("Ann 😀")), receiveResponseXML=100)
    run(script)
    (received,) = [args for name, args in script.calls if name == "receiveResponseXML"]
    assert received["response"] == "" and received["hresult"] == "0x80040400"
    assert (
        received["message"]
        == "QuickBooks found an error when parsing the provided XML text stream."
    )


def test_lost_response_kills_the_run_without_closing() -> None:
    quickbooks = FakeQuickBooks()
    quickbooks.lose_response_after(1)
    script = Script(sendRequestXML=message(customer_add("Ann")))
    report = run(script, quickbooks)
    assert report.lost and report.outcome == "lost"
    assert (
        "receiveResponseXML" not in script.operations and "closeConnection" not in script.operations
    )
    assert quickbooks.customer("Ann") is not None


def test_negative_progress_reads_the_last_error_then_closes() -> None:
    script = Script(
        sendRequestXML=message(customer_add("Ann")), receiveResponseXML=-1, getLastError="boom"
    )
    report = run(script)
    assert script.operations[-3:] == ["receiveResponseXML", "getLastError", "closeConnection"]
    assert (report.outcome, report.last_error) == ("error", "boom")


def test_noop_asks_again_and_an_empty_request_ends_the_run() -> None:
    script = Script(
        sendRequestXML=("", message(customer_add("Ann")), ""),
        getLastError=("NoOp", "All done"),
        receiveResponseXML=50,
    )
    report = run(script)
    assert script.operations[3:] == [
        "sendRequestXML",
        "getLastError",
        "sendRequestXML",
        "receiveResponseXML",
        "sendRequestXML",
        "getLastError",
        "closeConnection",
    ]
    assert (
        report.exchanges == 1 and report.last_error == "All done" and report.outcome == "no-request"
    )


def test_exchanges_are_bounded() -> None:
    script = Script(sendRequestXML=message(host_query()), receiveResponseXML=10)
    report = run(script, max_exchanges=3)
    assert report.exchanges == 3 and report.outcome == "exchange-limit"
    assert script.operations[-1] == "closeConnection"


def host_query() -> etree._Element:
    return etree.Element("HostQueryRq")
