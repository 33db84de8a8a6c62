"""What the SOAP endpoint refuses before the parser and spyne work on it, and what that
costs: a hostile body of any markup-heavy shape, up to the size limit, is refused in a few
milliseconds of CPU (spyne's reading of 64 000 attributes took 6-25 s), while every
envelope the Web Connector was recorded sending passes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oracle import require_oracle

from qbwc_bridge.config import Settings
from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.soap.endpoint import SoapEndpoint, markup_problem, shape_problem
from qbwc_bridge.store import Store

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://developer.intuit.com/"
LIMIT = 20 * 1024 * 1024
# CPU one refusal may cost, in this thread: a few ms measured; "tens of milliseconds" at most.
CPU_BOUND_SECONDS = 0.05


def envelope(inner: str = "", attributes: str = "", operation: str = "getLastError") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        f'<{operation} xmlns="{TNS}"{attributes}>{inner}</{operation}></soap:Body></soap:Envelope>'
    ).encode()


def fill(unit: str, budget: int = LIMIT - 400) -> str:
    """``unit`` repeated to fill the size limit."""
    return unit * (budget // len(unit))


def many_attributes(count: int, width: int = 7) -> str:
    return "".join(f' a{number:0{width}d}=""' for number in range(count))


SHAPES: dict[str, Callable[[], bytes]] = {
    "64000-attributes-on-the-operation": lambda: envelope(
        "<ticket>t</ticket>", many_attributes(64_000)
    ),
    "64000-attributes-on-the-ticket": lambda: envelope(
        f"<ticket{many_attributes(64_000)}>t</ticket>"
    ),
    "attributes-filling-the-limit": lambda: envelope("", many_attributes((LIMIT - 400) // 12)),
    "attributes-behind-a-quoted-gt": lambda: envelope(
        "", ' z=">"' + many_attributes((LIMIT - 400) // 12)
    ),
    "namespace-declarations-filling-the-limit": lambda: envelope(
        "<ticket " + "".join(f'xmlns:p{n:06d}="u" ' for n in range((LIMIT - 400) // 20)) + "/>"
    ),
    "elements-filling-the-limit": lambda: envelope(fill("<a/>")),
    "elements-with-attributes": lambda: envelope(fill('<a b="" c=""/>')),
    "nested-elements": lambda: envelope(fill("<a><b/></a>")),
    "comments": lambda: envelope(fill("<!---->")),
    "processing-instructions": lambda: envelope(fill("<?p?>")),
    "cdata-sections": lambda: envelope(fill("<![CDATA[]]>")),
    "text-between-elements": lambda: envelope(fill("<a/>x")),
    "five-million-levels-deep": lambda: envelope("<a>" * 5_000_000),
    "a-10-mb-name": lambda: envelope("<" + "a" * 10_000_000 + "/>"),
    "one-attribute-on-a-parameter": lambda: envelope('<ticket id="t">t</ticket>'),
    "nine-attributes-on-the-envelope": lambda: envelope().replace(
        b"<soap:Envelope ", b"<soap:Envelope" + many_attributes(9, 1).encode() + b" "
    ),
    "65-elements": lambda: envelope("<ticket>t</ticket>" + "<x/>" * 62),
}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoapEndpoint]:
    """An endpoint whose engine nothing here reaches: every shape is refused before."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits')}/unused.db"
    store = Store.from_url(url)
    yield SoapEndpoint(RunEngine(store, Settings(database_url=url)), LIMIT)
    store.database.dispose()


def call(endpoint: SoapEndpoint, body: bytes) -> tuple[str, bytes, float]:
    """(status, answer, CPU seconds of this thread) of one POST /qbwc with ``body``."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[Any], *_: object) -> None:
        statuses.append(status)

    started = time.thread_time()
    answer = b"".join(endpoint.call({"REQUEST_METHOD": "POST"}, start_response, body))
    return statuses[0], answer, time.thread_time() - started


@pytest.mark.parametrize("name", SHAPES)
def test_a_hostile_shape_is_refused_in_milliseconds(endpoint: SoapEndpoint, name: str) -> None:
    body = SHAPES[name]()
    assert len(body) <= LIMIT
    cpu = min(call(endpoint, body)[2] for _ in range(3))  # the least disturbed of three
    status, answer, _ = call(endpoint, body)
    assert status.startswith("400"), answer[:300]
    fault = parse_xml(answer).findtext(f".//{{{SOAP}}}Fault/faultstring") or ""
    assert fault.startswith("Malformed SOAP request: "), fault
    assert cpu < CPU_BOUND_SECONDS, f"{name}: {cpu * 1000:.1f} ms of CPU"


def test_the_web_connectors_recorded_envelopes_pass() -> None:
    found = [
        path
        for path in sorted(require_oracle("soap").rglob("*.xml"))
        if path.name.endswith((".request.xml", ".raw.xml")) and b"Envelope" in path.read_bytes()
    ]
    assert len(found) >= 10
    for path in found:
        body = path.read_bytes()
        assert markup_problem(body) is None, path.name
        assert shape_problem(parse_xml(body)) is None, path.name


def test_what_the_limits_allow_passes_them() -> None:
    """A Header, a few attributes on the Envelope and Body, 64 elements in all."""
    header = "<soap:Header><h1/><h2/></soap:Header>"
    body = envelope("<ticket>t</ticket>" + "<x/>" * 57).replace(
        b"<soap:Body>", header.encode() + b'<soap:Body a="1" b="2">'
    )
    root = parse_xml(body)
    assert root.xpath("count(//*)") == 64
    assert markup_problem(body) is None and shape_problem(root) is None
