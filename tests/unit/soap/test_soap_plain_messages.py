"""The SOAP layer's own reading and writing of plain messages is spyne's, to the byte.

BridgeSoap11 reads plain requests and builds plain answers itself (spyne's generic code
cost a tenth of a callback). Each case here goes through spyne's server pipeline twice,
once with BridgeSoap11 and once with spyne's own Soap11, and the two must agree: the same
arguments or the same error for any envelope, the same bytes or the same error for any
answer. The Web Connector's recorded envelopes must take the shortcut, or it is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from oracle import require_oracle
from spyne.context import MethodContext
from spyne.protocol.soap import Soap11
from spyne.server import ServerBase

from qbwc_bridge.soap.app import NAMESPACE, BridgeSoap11, plain_arguments, spyne_application
from qbwc_bridge.tools.loadgen import PARAMETERS

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
INTEGER_PARAMETERS = {"qbXMLMajorVers", "qbXMLMinorVers"}
OPERATIONS = [*sorted(PARAMETERS), "connectionError"]
PARAMETERS_OF = {**PARAMETERS, "connectionError": ("ticket", "hresult", "message")}


def _server(protocol: type[Soap11]) -> ServerBase:
    return ServerBase(spyne_application(protocol=protocol))


OURS, SPYNES = _server(BridgeSoap11), _server(Soap11)


def _context(server: ServerBase, envelope: bytes) -> MethodContext:
    ctx = MethodContext(server, MethodContext.SERVER)
    ctx.in_string = [envelope]
    (ctx, *_) = server.generate_contexts(ctx)
    return ctx


def _read(server: ServerBase, envelope: bytes) -> tuple[Any, ...]:
    """What the service method would be called with, or the fault or error spyne raises
    (an attribute named like a parameter makes spyne itself fail: both ways must)."""
    ctx = _context(server, envelope)
    if ctx.in_error is None:
        try:
            server.get_in_object(ctx)
        except Exception as error:
            return ("error", type(error).__name__)
    if ctx.in_error is not None:
        return ("fault", type(ctx.in_error).__name__, ctx.in_error.faultcode)
    return ("call", ctx.method_request_string, tuple(ctx.in_object))


def _write(server: ServerBase, operation: str, value: object) -> tuple[str, object]:
    """The answer's bytes for ``operation`` returning ``value``, or the error raised."""
    ctx = _context(server, _envelope(operation, []))
    ctx.out_object = [value]
    try:
        server.get_out_string(ctx)
    except Exception as error:
        return ("error", type(error).__name__)
    return ("bytes", b"".join(ctx.out_string))


Child = tuple[str, str, str | None, dict[str, str], bool]  # namespace, name, text, attrs, nest


def _envelope(
    operation: str, children: list[Child], operation_attrs: dict[str, str] | None = None
) -> bytes:
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "xsi": XSI})
    body = etree.SubElement(root, f"{{{SOAP}}}Body")
    call = etree.SubElement(
        body, f"{{{NAMESPACE}}}{operation}", operation_attrs or {}, nsmap={None: NAMESPACE}
    )  # type: ignore[dict-item]
    for namespace, name, text, attributes, nested in children:
        if name == "#comment":
            call.append(etree.Comment(" a comment "))
            continue
        child = etree.SubElement(call, f"{{{namespace}}}{name}" if namespace else name, attributes)
        child.text = text
        if nested:
            etree.SubElement(child, f"{{{NAMESPACE}}}inner").text = "x"
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


xml_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r")
)
integer_text = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.from_regex(r"\A[ +-]?[0-9]{0,11}[ ]?\Z"),
    st.sampled_from(["", "-", "1.5", "1e3", "٣", "0x1F", " 7", "007", "-0"]),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """Envelopes of every operation: mostly plain, often with something spyne must judge."""
    operation = draw(st.sampled_from(OPERATIONS))
    names = list(PARAMETERS_OF[operation])
    present = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    children: list[Child] = []
    for name in present:
        text = draw(integer_text if name in INTEGER_PARAMETERS else st.one_of(xml_text, st.none()))
        namespace = draw(st.sampled_from([NAMESPACE] * 8 + ["urn:other", ""]))
        attributes = draw(
            st.sampled_from([{}] * 8 + [{f"{{{XSI}}}nil": "true"}, {"id": "a1"}, {"ticket": "t"}])
        )
        children.append(
            (
                namespace,
                name,
                text,
                attributes,
                draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()),
            )
        )
    extras = draw(st.lists(st.sampled_from([*names, "unknown", "#comment"]), max_size=2))
    children += [(NAMESPACE, name, draw(xml_text), {}, False) for name in extras]
    children = draw(st.permutations(children))
    attrs = draw(st.sampled_from([{}] * 8 + [{"id": "op"}, {"ticket": "t"}]))
    return _envelope(operation, children, attrs)


@given(requests())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_request_is_read_as_spyne_reads_it(envelope: bytes) -> None:
    assert _read(OURS, envelope) == _read(SPYNES, envelope)


answers = st.one_of(
    st.text(),
    xml_text,
    st.integers(-(2**40), 2**40),
    st.lists(xml_text, max_size=4),
    st.lists(st.one_of(xml_text, st.none(), st.integers()), max_size=3),
    st.sampled_from([None, True, 1.5, b"bytes", ("a", "b")]),
)


@given(st.sampled_from(OPERATIONS), answers)
@settings(max_examples=400, deadline=None)
def test_every_answer_is_written_as_spyne_writes_it(operation: str, value: object) -> None:
    assert _write(OURS, operation, value) == _write(SPYNES, operation, value)


def _recorded_requests() -> list[Path]:
    folder = require_oracle("soap")
    found = [
        path
        for path in sorted(folder.rglob("*.xml"))
        if path.name.endswith((".request.xml", ".raw.xml")) and b"Envelope" in path.read_bytes()
    ]
    assert len(found) >= 10, f"expected the Web Connector's recorded requests in {folder}"
    return found


def test_the_web_connectors_recorded_requests_take_the_shortcut() -> None:
    """Each real envelope is plain: read here, with spyne's arguments exactly."""
    for path in _recorded_requests():
        envelope = path.read_bytes()
        ctx = _context(OURS, envelope)
        assert ctx.in_error is None, path.name
        arguments = plain_arguments(ctx.in_body_doc, ctx.descriptor.in_message)
        assert arguments is not None, f"{path.name} would take spyne's slower way"
        assert ("call", ctx.method_request_string, tuple(arguments)) == _read(SPYNES, envelope)


@pytest.mark.parametrize(
    ("operation", "value"),
    [
        ("serverVersion", "qbwc-bridge 1.0"),
        ("clientVersion", ""),
        ("authenticate", ["ticket", "nvu"]),
        ("sendRequestXML", '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML/>'),
        ("receiveResponseXML", 100),
        ("connectionError", "done"),
        ("getLastError", "No error."),
        ("closeConnection", "OK"),
    ],
)
def test_the_services_answers_take_the_shortcut(operation: str, value: object) -> None:
    ctx = _context(OURS, _envelope(operation, []))
    protocol = OURS.app.out_protocol
    assert protocol.plain_answer(ctx.descriptor.out_message, [value]) is not None
    assert _write(OURS, operation, value) == _write(SPYNES, operation, value)
