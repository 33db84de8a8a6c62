"""POST /qbwc and GET /qbwc?wsdl: the hardened front of the spyne application.

The HTTP layer reads the body (with its size limit) and hands it here. The envelope is
parsed once, by the one hardened parser, and spyne takes the parsed tree (see
BridgeSoap11.create_in_document): it never reads the bytes, so a charset header that lies
about the body cannot make it decode garbage.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree

from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.errors import MalformedXml
from qbwc_bridge.safexml import parse_xml
from qbwc_bridge.soap.app import PARSED_ENVELOPE, make_soap_app

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

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
        environ = dict(environ)
        environ[PARSED_ENVELOPE] = envelope
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["CONTENT_LENGTH"] = "0"
        environ["CONTENT_TYPE"] = "text/xml; charset=utf-8"
        return self.spyne(environ, start_response)  # type: ignore[no-any-return]
