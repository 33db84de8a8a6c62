"""The spyne application: Intuit's namespace, SOAP 1.1 document/literal in and out.

What this module relies on inside spyne (upper bound pinned in pyproject.toml):
- Soap11's hooks ``create_in_document``, ``decompose_incoming_envelope``, ``deserialize``
  and ``serialize``, and the context fields they fill (``ctx.in_document``,
  ``ctx.in_body_doc``, ``ctx.in_header_doc``, ``ctx.method_request_string``,
  ``ctx.in_object``, ``ctx.out_document``, ``ctx.out_body_doc``) — guarded by
  tests/unit/soap/test_soap_plain_messages.py, which answers every message both through
  BridgeSoap11 and through spyne's own Soap11 and requires the same bytes;
- message classes' ``_type_info`` (parameter names and types, in signature order);
- ``spyne.const.MIN_GC_INTERVAL`` (see make_soap_app).
The shortcuts save about a tenth of a callback's CPU (docs/benchmarks.md); the
differential tests are what keep them honest when spyne changes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import spyne.const
from lxml import etree
from spyne import Application, Array, Integer, Unicode
from spyne.const.xml import NS_SOAP11_ENV
from spyne.protocol.soap import Soap11
from spyne.protocol.xml import XmlDocument
from spyne.server.wsgi import WsgiApplication

from qbwc_bridge.engine.run import RunEngine
from qbwc_bridge.soap.service import BridgeApplication, QBWebConnectorSvc

NAMESPACE = "http://developer.intuit.com/"
# The WSGI environ key under which soap/endpoint.py hands over the envelope it parsed.
PARSED_ENVELOPE = "qbwc_bridge.envelope"


class BridgeSoap11(Soap11):  # type: ignore[misc]
    """spyne's SOAP 1.1, with shortcuts for the plain messages the Web Connector exchanges.

    - It reads the envelope SoapEndpoint parsed with the hardened parser: parsing once
      saves serialising the tree again and spyne parsing it a second time (about 0.15 ms
      for a 10 kB receiveResponseXML), and leaves one parser, ours, facing the outside.
      Without a parsed envelope (never, through SoapEndpoint) spyne parses as usual.
    - Plain requests and answers (each parameter or result a string, an integer or a list
      of strings) are read and built here, element for element as spyne does: its generic
      reader and writer cost about a tenth of a callback's CPU. Anything else takes
      spyne's own way, so it still decides every unusual case.
    """

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        environ = getattr(ctx.transport, "req_env", None) or {}
        envelope = environ.get(PARSED_ENVELOPE)
        if envelope is None:
            super().create_in_document(ctx, charset)
            return
        ctx.in_document = (envelope, _ids(envelope))

    def decompose_incoming_envelope(self, ctx: Any, message: Any = XmlDocument.REQUEST) -> None:
        """spyne's, with the Body found by ``find`` instead of an XPath compiled per call
        (about 30 µs a callback). Envelopes with SOAP hrefs (``id`` attributes) or without
        an operation in their Body take spyne's own way."""
        envelope, xmlids = ctx.in_document
        body = envelope.find(_BODY)
        if xmlids or envelope.tag != _ENVELOPE or body is None or not len(body):
            super().decompose_incoming_envelope(ctx, message)
            return
        header = envelope.find(_HEADER)
        ctx.in_document = envelope
        ctx.in_header_doc = None if header is None else list(header)
        ctx.in_body_doc = body[0]
        if ctx.in_body_doc.tag != _FAULT:
            ctx.method_request_string = ctx.in_body_doc.tag
            self.validate_body(ctx, message)

    def deserialize(self, ctx: Any, message: Any) -> None:
        """spyne's, except for a plain request (see plain_arguments)."""
        if message is self.REQUEST and ctx.in_body_doc is not None:
            arguments = plain_arguments(ctx.in_body_doc, ctx.descriptor.in_message)
            if arguments is not None:
                self.event_manager.fire_event("before_deserialize", ctx)
                ctx.in_object = arguments
                self.event_manager.fire_event("after_deserialize", ctx)
                return
        super().deserialize(ctx, message)

    def serialize(self, ctx: Any, message: Any) -> None:
        """spyne's, except for a plain answer (see plain_answer)."""
        if message is self.RESPONSE and ctx.out_error is None and ctx.out_header is None:
            envelope = self.plain_answer(ctx.descriptor.out_message, ctx.out_object)
            if envelope is not None:
                self.event_manager.fire_event("before_serialize", ctx)
                ctx.out_document, ctx.out_body_doc = envelope, envelope[0]
                self.event_manager.fire_event("after_serialize", ctx)
                return
        super().serialize(ctx, message)

    def plain_answer(self, out_message: Any, out_object: Any) -> etree._Element | None:
        """The envelope spyne would build for a one-result answer of a string, an integer
        or a list of strings; None for anything else (spyne's way then decides)."""
        shape = _answer_shape(out_message)
        if shape is None or not isinstance(out_object, (list, tuple)) or len(out_object) != 1:
            return None
        response_tag, result_tag, kind, item_tag = shape
        value = out_object[0]
        texts: list[Any] = value if kind is list and type(value) is list else []
        if type(value) is not kind or any(type(text) is not str for text in texts):
            return None
        envelope = etree.Element(_ENVELOPE, nsmap=self._answer_nsmap())
        response = etree.SubElement(etree.SubElement(envelope, _BODY), response_tag)
        result = etree.SubElement(response, result_tag)
        try:
            if kind is list:
                for text in texts:
                    etree.SubElement(result, item_tag).text = text
            else:
                result.text = str(value)
        except ValueError:  # not XML text: spyne's way reports it
            return None
        return envelope

    def _answer_nsmap(self) -> dict[str, str]:
        """The prefixes spyne's answers keep (it declares more, then removes the unused)."""
        prefixes, tns = self.app.interface.prefmap, self.app.interface.get_tns()
        return {prefixes[NS_SOAP11_ENV]: NS_SOAP11_ENV, prefixes[tns]: tns}


# Digits that spyne's Integer32 reads as Python's int() does; anything else is its to judge.
_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,9}")


def plain_arguments(operation: etree._Element, in_message: Any) -> list[Any] | None:
    """The arguments of a plain request, in signature order, as spyne reads them (a
    repeated parameter's last element counts); None for anything else: attributes,
    nested, unknown or foreign-namespace elements, comments, integers that are not plain
    digits."""
    members = _request_members(in_message)
    if operation.attrib:
        return None
    values: dict[str, Any] = {}
    for child in operation:
        member = members.get(child.tag)  # a comment's tag is a function: no member
        if member is None or child.attrib or len(child):
            return None
        name, is_integer = member
        text = child.text or ""
        if not is_integer:
            values[name] = text
        elif _PLAIN_INTEGER.fullmatch(text):
            values[name] = int(text)
        else:
            return None
    return [values.get(name) for name, _ in members.values()]


_MEMBERS: dict[Any, dict[str, tuple[str, bool]]] = {}
_SHAPES: dict[Any, tuple[str, str, type, str] | None] = {}


def _request_members(in_message: Any) -> dict[str, tuple[str, bool]]:
    """Element tag -> (parameter name, whether an integer), in signature order."""
    members = _MEMBERS.get(in_message)
    if members is None:
        namespace = in_message.get_namespace()
        members = _MEMBERS[in_message] = {
            f"{{{namespace}}}{name}": (name, issubclass(kind, Integer))
            for name, kind in in_message._type_info.items()
        }
    return members


def _answer_shape(out_message: Any) -> tuple[str, str, type, str] | None:
    """(response tag, result tag, str | int | list, a list item's tag) of a one-result
    answer message."""
    if out_message not in _SHAPES:
        shape = None
        if len(out_message._type_info) == 1:
            ((name, kind),) = out_message._type_info.items()
            python_type = (
                str if issubclass(kind, Unicode)
                else int if issubclass(kind, Integer)
                else list if issubclass(kind, Array) and issubclass(kind._type_info[0], Unicode)
                else None
            )  # fmt: skip
            if python_type is not None:
                namespace = out_message.get_namespace()
                item = next(iter(kind._type_info), "") if python_type is list else ""
                shape = (
                    f"{{{namespace}}}{out_message.get_type_name()}",
                    f"{{{namespace}}}{name}",
                    python_type,
                    f"{{{namespace}}}{item}",
                )
        _SHAPES[out_message] = shape
    return _SHAPES[out_message]


_ENVELOPE, _HEADER, _BODY, _FAULT = (
    f"{{{NS_SOAP11_ENV}}}{name}" for name in ("Envelope", "Header", "Body", "Fault")
)
_WITH_ID = etree.XPath("//*[@id]")


def _ids(envelope: etree._Element) -> dict[str, etree._Element]:
    """What etree.XMLID gives spyne: the elements by their id attribute (SOAP hrefs)."""
    found = _WITH_ID(envelope)
    elements = found if isinstance(found, list) else []
    return {str(e.get("id")): e for e in elements if isinstance(e, etree._Element)}


def spyne_application(
    engine: RunEngine | None = None, protocol: type[Soap11] = BridgeSoap11
) -> Application:
    """Intuit's QBWebConnectorSvc in spyne, speaking ``protocol`` (tests compare spyne's own)."""
    return BridgeApplication(
        [QBWebConnectorSvc],
        engine,
        tns=NAMESPACE,
        name="QBWebConnectorSvc",
        in_protocol=protocol(validator=None),
        out_protocol=protocol(),
    )


def make_soap_app(engine: RunEngine, max_request_bytes: int) -> WsgiApplication:
    # spyne runs a full gc.collect() after a request once a second per process, to close
    # uploaded files early. We take no uploads; in a gunicorn worker that collection is a
    # pause of 10-140 ms landing on one callback every second (the p99), for nothing. The
    # setting is process-wide: this process serves no other spyne application.
    spyne.const.MIN_GC_INTERVAL = math.inf
    # spyne's own cap (2 MiB) would refuse a large inventory page below our configured limit.
    return WsgiApplication(spyne_application(engine), max_content_length=max_request_bytes)
