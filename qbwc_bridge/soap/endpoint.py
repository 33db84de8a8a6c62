"""POST /qbwc and GET /qbwc?wsdl: the hardened front of the spyne application.

The HTTP layer reads the body (with its size limit) and hands it here. The envelope is
parsed once, by the one hardened parser, and spyne takes the parsed tree (see
BridgeSoap11.create_in_document): it never reads the bytes, so a charset header that lies
about the body cannot make it decode garbage.

Before the parser and spyne spend time on a body, it must look like what the Web Connector
sends: a handful of elements around text (every recorded envelope has at most 9 elements,
19 tags and no attribute). spyne reads an element with attributes its generic way, whose
cost grows with the square of their number (64 000 attributes in a 693 kB body: 25 s of
CPU); libxml2 parses markup at about 40 ms a megabyte. So the markup is bounded before
parsing (a count of '<' and a bounded look at each tag, in C) and the tree right after
(XPath counts, in C): any body under the size limit is refused in milliseconds, or is
mostly text, which costs what a legitimate answer of that size costs (escaped qbXML: about
7 ms a megabyte to parse).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree

from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import MalformedXml
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.soap.app import PARSED_ENVELOPE, make_soap_app

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

# Every tag, end tag, comment, processing instruction and CDATA section starts with '<';
# text cannot hold one (the Web Connector escapes the qbXML it carries).
MAX_MARKUP = 256
# One tag with its name and attributes; the longest the Web Connector sends is the
# Envelope's, with its namespace declarations (under 200 bytes).
MAX_TAG_BYTES = 4096
MAX_ELEMENTS = 64
# On the Envelope, its Header and the Body; none on the operation or below it, where
# spyne would read them.
MAX_ATTRIBUTES = 8

# One tag, comment or CDATA section from its '<': quoted values are read whole (they may
# hold a '>'), possessively, so matching costs one pass over at most MAX_TAG_BYTES.
_TAG = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<(?:[^<>\"']++|\"[^\"]*+\"|'[^']*+')*+>", re.DOTALL
)
_ELEMENTS = etree.XPath("count(//*)")
_ATTRIBUTES = etree.XPath("count(//@*)")
_BELOW_BODY = etree.XPath("boolean(/s:Envelope/s:Body//*/@*)", namespaces={"s": SOAP_ENV})

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def soap_operation(envelope: etree._Element) -> etree._Element | None:
    """The operation element of a SOAP 1.1 request, or None (spyne fails on such shapes)."""
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        return None
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    if body is None:
        return None
    return next((child for child in body if isinstance(child.tag, str)), None)


def markup_problem(body: bytes) -> str | None:
    """Why ``body`` has more markup than a callback, or None: before parsing, in C."""
    if body.count(b"<") > MAX_MARKUP:
        return f"more than {MAX_MARKUP} tags"
    start = body.find(b"<")
    while start >= 0:
        tag = _TAG.match(body, start, start + MAX_TAG_BYTES)
        if tag is None:
            return f"a tag that does not end within {MAX_TAG_BYTES} bytes"
        start = body.find(b"<", tag.end())
    return None


def shape_problem(envelope: etree._Element) -> str | None:
    """Why a parsed envelope is not shaped like a callback, or None (XPath, in C)."""
    if _count(_ELEMENTS, envelope) > MAX_ELEMENTS:
        return f"more than {MAX_ELEMENTS} elements"
    if _BELOW_BODY(envelope) is True:
        return "attributes on the operation or its parameters"
    if _count(_ATTRIBUTES, envelope) > MAX_ATTRIBUTES:
        return f"more than {MAX_ATTRIBUTES} attributes"
    return None


def _count(xpath: etree.XPath, envelope: etree._Element) -> float:
    found = xpath(envelope)
    return found if isinstance(found, float) else 0.0


def soap_fault(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    """A SOAP 1.1 Client fault, for requests that never reach a callback."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soap:Client"
    etree.SubElement(fault, "faultstring").text = message
    answer = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    start_response(
        status, [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(answer)))]
    )
    return [answer]


class SoapEndpoint:
    """The Web Connector's endpoint: one spyne application serving one RunEngine."""

    def __init__(self, engine: RunEngine, max_request_bytes: int) -> None:
        self.max_request_bytes = max_request_bytes
        self.spyne = make_soap_app(engine, max_request_bytes)

    def wsdl(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.spyne(environ, start_response)  # type: ignore[no-any-return]

    def call(self, environ: Environ, start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        """Answer one callback whose request body is ``body``."""
        problem = markup_problem(body)
        if problem is not None:
            return soap_fault(
                start_response, "400 Bad Request", f"Malformed SOAP request: {problem}"
            )
        try:
            envelope = parse_xml(body, max_bytes=self.max_request_bytes)
        except MalformedXml as error:
            return soap_fault(
                start_response, "400 Bad Request", f"Malformed SOAP request: {error.message}"
            )
        if soap_operation(envelope) is None:
            return soap_fault(
                start_response,
                "400 Bad Request",
                "Malformed SOAP request: a SOAP 1.1 Envelope whose Body holds the operation",
            )
        problem = shape_problem(envelope)
        if problem is not None:
            return soap_fault(
                start_response,
                "400 Bad Request",
                f"Malformed SOAP request: {problem}, which no Web Connector callback has",
            )
        environ = dict(environ)
        environ[PARSED_ENVELOPE] = envelope
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["CONTENT_LENGTH"] = "0"
        environ["CONTENT_TYPE"] = "text/xml; charset=utf-8"
        return self.spyne(environ, start_response)  # type: ignore[no-any-return]
