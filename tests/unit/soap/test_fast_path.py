"""soap.fast answers byte for byte as spyne does, and calls the engine exactly as often.

Every envelope goes through the whole WSGI application twice: once as served (the fast
path where it applies) and once with the fast path switched off (spyne alone). Status,
headers, body, the engine calls and the log lines must be the same.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from oracle import oracle_dir, require_oracle

from qbwc_bridge.config import Settings
from qbwc_bridge.errors import InvalidTicket
from qbwc_bridge.soap.guard import ENGINE_ATTRIBUTE
from qbwc_bridge.web import BridgeApp

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
HEAD = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="' + SOAP + '" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>'
)
TAIL = "</soap:Body></soap:Envelope>"


def envelope(inner: str) -> bytes:
    """A test envelope (fixed test text, so plain formatting is enough here)."""
    return (HEAD + inner + TAIL).encode()


def op(name: str, params: str = "") -> bytes:
    return envelope(f'<{name} xmlns="http://developer.intuit.com/">{params}</{name}>')


@dataclass
class Auth:
    ticket: Any
    answer: Any


@dataclass
class StubEngine:
    """Records every call; answers what ``results`` says (a callable raises or computes)."""

    results: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)

    def _answer(self, name: str, default: Any, *args: Any) -> Any:
        self.calls.append((name, args))
        value = self.results.get(name, default)
        return value(*args) if callable(value) else value

    def server_version(self) -> Any:
        return self._answer("server_version", "qbwc-bridge test")

    def client_version(self, *args: Any) -> Any:
        return self._answer("client_version", "", *args)

    def authenticate(self, *args: Any) -> Any:
        return self._answer("authenticate", Auth("T" * 43, ""), *args)

    def next_request(self, *args: Any) -> Any:
        return self._answer("next_request", '<?xml version="1.0"?><QBXML>&amp;</QBXML>', *args)

    def record_response(self, *args: Any) -> Any:
        return self._answer("record_response", 42, *args)

    def connection_error(self, *args: Any) -> Any:
        return self._answer("connection_error", "done", *args)

    def last_error(self, *args: Any) -> Any:
        return self._answer("last_error", "No error.", *args)

    def close(self, *args: Any) -> Any:
        return self._answer("close", "Synced 3 orders", *args)

    def remember_error(self, *args: Any) -> Any:
        return self._answer("remember_error", None, *args)


ANSWERED_FAST: list[bool] = []


def serve(body: bytes, results: dict[str, Any], *, fast: bool) -> tuple[Any, ...]:
    app = BridgeApp(Settings(database_url="sqlite://"))
    engine = StubEngine(results)
    setattr(app.soap.app, ENGINE_ATTRIBUTE, engine)
    answer_fast = app.fast.answer

    def spied(*args: Any) -> bytes | None:
        answer = answer_fast(*args) if fast else None
        ANSWERED_FAST.append(answer is not None)
        return answer

    app.fast.answer = spied  # type: ignore[method-assign]
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/qbwc",
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/xml; charset=utf-8",
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "10.1.2.3",
        "SERVER_NAME": "bridge.test",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
    }
    started: list[tuple[str, list[tuple[str, str]]]] = []
    handler = _Lines()
    logger = logging.getLogger("qbwc_bridge.soap")
    logger.addHandler(handler)
    try:
        answer = b"".join(
            app(environ, lambda status, headers, *_: started.append((status, headers)))
        )
    except Exception as error:  # spyne's own failures (an empty Body) must stay the same too
        answer = f"{type(error).__name__}: {error}".encode()
    finally:
        logger.removeHandler(handler)
    return started, answer, engine.calls, handler.lines


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Timing differs between the two runs; the rest of the line must not.
        self.lines.append(record.getMessage().split(" duration_ms=")[0])


def assert_same(body: bytes, results: dict[str, Any] | None = None) -> bool:
    """Same answer both ways; True when the fast path (not spyne) answered."""
    ANSWERED_FAST.clear()
    fast = serve(body, results or {}, fast=True)
    spyne = serve(body, results or {}, fast=False)
    assert fast == spyne
    return ANSWERED_FAST[0]


T = "<ticket>abc</ticket>"
CANONICAL = {
    "serverVersion": op("serverVersion"),
    "clientVersion": op("clientVersion", "<strVersion>2.3.0.36</strVersion>"),
    "authenticate": op(
        "authenticate", "<strUserName>shop</strUserName><strPassword>secret</strPassword>"
    ),
    "sendRequestXML": op(
        "sendRequestXML",
        T + "<strHCPResponse>&lt;QBXML/&gt;</strHCPResponse><strCompanyFileName>C:\\A.QBW"
        "</strCompanyFileName><qbXMLCountry>US</qbXMLCountry><qbXMLMajorVers>13"
        "</qbXMLMajorVers><qbXMLMinorVers>0</qbXMLMinorVers>",
    ),
    "receiveResponseXML": op(
        "receiveResponseXML",
        T + "<response>&lt;QBXML&gt;é&lt;/QBXML&gt;</response><hresult /><message />",
    ),
    "connectionError": op(
        "connectionError", T + "<hresult>0x80040408</hresult><message>No QB</message>"
    ),
    "getLastError": op("getLastError", T),
    "closeConnection": op("closeConnection", T),
}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_every_callback_answers_as_spyne_does(name: str) -> None:
    assert assert_same(CANONICAL[name])


SHAPES = {
    "empty parameters": op(
        "sendRequestXML",
        "<ticket/><strHCPResponse/><strCompanyFileName/><qbXMLCountry/>"
        "<qbXMLMajorVers/><qbXMLMinorVers/>",
    ),
    "missing parameters": op("sendRequestXML", T),
    "spaces kept": op("clientVersion", "<strVersion>  2.3 \n</strVersion>"),
    "numbers with spaces and signs": op(
        "sendRequestXML",
        T + "<qbXMLMajorVers> 13 </qbXMLMajorVers><qbXMLMinorVers>+0</qbXMLMinorVers>",
    ),
    "huge number": op("sendRequestXML", T + "<qbXMLMajorVers>99999999999</qbXMLMajorVers>"),
    "not a number": op("sendRequestXML", T + "<qbXMLMajorVers>thirteen</qbXMLMajorVers>"),
    "parameters out of order": op(
        "receiveResponseXML", "<message>m</message><hresult>h</hresult>" + T
    ),
    "unknown parameter": op("getLastError", T + "<extra>x</extra>"),
    "repeated parameter": op("getLastError", T + "<ticket>other</ticket>"),
    "nil parameter": op("getLastError", '<ticket xsi:nil="true"/>'),
    "nested parameter": op("getLastError", "<ticket><b>abc</b></ticket>"),
    "text beside parameters": op("getLastError", "stray " + T),
    "processing instruction": op("getLastError", "<?pi x?>" + T),
    "unknown operation": op("dropTables", T),
    "operation outside Intuit's namespace": envelope(
        '<getLastError xmlns="urn:other">' + T + "</getLastError>"
    ),
    "two operations": envelope(
        '<getLastError xmlns="http://developer.intuit.com/">' + T + "</getLastError>"
        '<closeConnection xmlns="http://developer.intuit.com/">' + T + "</closeConnection>"
    ),
    "header": (
        HEAD.replace("<soap:Body>", "<soap:Header><h>1</h></soap:Header><soap:Body>")
        + '<getLastError xmlns="http://developer.intuit.com/">'
        + T
        + "</getLastError>"
        + TAIL
    ).encode(),
    "empty body": envelope(""),
    "SOAP 1.2": op("getLastError", T).replace(
        SOAP.encode(), b"http://www.w3.org/2003/05/soap-envelope"
    ),
    "attribute on the operation": envelope(
        '<getLastError xmlns="http://developer.intuit.com/" a="1">' + T + "</getLastError>"
    ),
    "unicode and entities": op("clientVersion", "<strVersion>&lt;é&gt; \u2603 &amp;</strVersion>"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_unusual_envelopes_answer_as_spyne_does(shape: str) -> None:
    assert_same(SHAPES[shape])


def _raise(error: Exception) -> Callable[..., Any]:
    def fail(*_args: Any) -> Any:
        raise error

    return fail


RESULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "None for text": ("getLastError", {"last_error": None}),
    "None for a number": ("receiveResponseXML", {"record_response": None}),
    "None in authenticate": ("authenticate", {"authenticate": Auth(None, "nvu")}),
    "a number for text": ("closeConnection", {"close": 7}),
    "a bool for a number": ("receiveResponseXML", {"record_response": True}),
    "text for a number": ("receiveResponseXML", {"record_response": "100"}),
    "a NUL character": ("getLastError", {"last_error": "a\x00b"}),
    "a lone surrogate": ("getLastError", {"last_error": "\ud800"}),
    "minus one": ("receiveResponseXML", {"record_response": -1}),
    "empty text": ("sendRequestXML", {"next_request": ""}),
    "an invalid ticket": ("sendRequestXML", {"next_request": _raise(InvalidTicket("gone"))}),
    "a crash": ("closeConnection", {"close": _raise(RuntimeError("boom"))}),
}


@pytest.mark.parametrize("case", sorted(RESULTS))
def test_unusual_results_answer_as_spyne_does(case: str) -> None:
    name, results = RESULTS[case]
    assert_same(CANONICAL[name], results)  # the engine was called once: calls compared


def test_the_web_connectors_own_envelopes_take_the_fast_path() -> None:
    require_oracle("soap")
    taken = {path.name: assert_same(path.read_bytes()) for path in _captured()}
    assert taken and all(taken.values()), taken


def _captured() -> list[Path]:
    folder = oracle_dir() / "soap"
    return sorted(folder.rglob("*.request.xml")) + sorted(folder.rglob("*.raw.xml"))


@pytest.mark.parametrize("path", _captured(), ids=lambda p: p.name)
def test_captured_web_connector_traffic_answers_as_spyne_does(path: Path) -> None:
    assert_same(path.read_bytes())
