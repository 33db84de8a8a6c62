"""The Web Connector's envelopes answered without spyne's per-request machinery.

spyne spends 0.4-1 ms of CPU on every callback (method contexts, events, its type system),
a sixth of what a data callback costs in all. The Web Connector only ever sends one shape:
a SOAP 1.1 Body holding one Intuit operation whose parameters are plain text elements. For
that shape this module calls the same service functions, through the same guard, and
writes the bytes spyne would write (tests/unit/soap/test_fast_path.py compares the two).
Anything else - a Header, attributes, nested or repeated parameters, a number spyne would
read differently - is left to spyne, and so is a result spyne would serialise in its own
way (None, text lxml refuses): spyne then answers with the result already computed, so
the engine is never called twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from spyne.model.complex import Array
from spyne.model.primitive import Integer, Unicode

from qbwc_bridge.soap.guard import PRECOMPUTED_RESULT
from qbwc_bridge.soap.service import QBWebConnectorSvc

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NAMESPACE = "http://developer.intuit.com/"
_ENVELOPE = f"{{{SOAP_ENV}}}Envelope"
_BODY = f"{{{SOAP_ENV}}}Body"
# The prefixes spyne writes, in its order.
_NSMAP = {"soap11env": SOAP_ENV, "tns": NAMESPACE}
# What spyne's int() reads the same way: optional sign and ASCII digits, spaces around.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
HEADERS = [("Content-Type", "text/xml; charset=utf-8")]


@dataclass(frozen=True)
class _Operation:
    """One callback: its function, its parameters (name, is it a number) and its answer."""

    function: Callable[..., Any]
    parameters: dict[str, tuple[int, bool]]  # tag -> position, whether an integer
    response: str
    result: str
    result_kind: type  # str, int or list (of str)
    item: str  # the element of one list item


def _operations() -> dict[str, _Operation]:
    """The service's operations as spyne declares them, so both paths read one contract."""
    found = {}
    for name, descriptor in QBWebConnectorSvc.public_methods.items():
        parameters = {
            f"{{{NAMESPACE}}}{field}": (position, issubclass(kind, Integer))
            for position, (field, kind) in enumerate(descriptor.in_message._type_info.items())
        }
        ((result, kind),) = descriptor.out_message._type_info.items()
        item = ""
        if issubclass(kind, Array):
            ((item, inner),) = kind._type_info.items()
            assert issubclass(inner, Unicode)
            result_kind: type = list
        else:
            result_kind = int if issubclass(kind, Integer) else str
        found[f"{{{NAMESPACE}}}{name}"] = _Operation(
            function=descriptor.function,
            parameters=parameters,
            response=f"{{{NAMESPACE}}}{descriptor.out_message.get_type_name()}",
            result=f"{{{NAMESPACE}}}{result}",
            result_kind=result_kind,
            item=f"{{{NAMESPACE}}}{item}",
        )
    return found


@dataclass(frozen=True)
class _Transport:
    req_env: dict[str, Any]


@dataclass(frozen=True)
class _Context:
    """What the guard and the service read of spyne's method context."""

    app: Any
    transport: _Transport


class FastPath:
    """Answers the Web Connector's own envelopes; says None to everything else."""

    def __init__(self, application: Any) -> None:
        self.application = application  # the spyne Application, holding the engine
        self.operations = _operations()

    def answer(self, envelope: etree._Element, environ: dict[str, Any]) -> bytes | None:
        """The response body, or None for spyne to answer (and then it may find, in
        ``environ``, a result already computed here)."""
        call = self._read(envelope)
        if call is None:
            return None
        operation, values = call
        result = operation.function(_Context(self.application, _Transport(environ)), *values)
        try:
            return _write(operation, result)
        except (TypeError, ValueError, UnicodeError):
            environ[PRECOMPUTED_RESULT] = result
            return None

    def _read(self, envelope: etree._Element) -> tuple[_Operation, list[Any]] | None:
        if envelope.tag != _ENVELOPE or envelope.attrib or _has_text(envelope):
            return None
        body = _only_child(envelope)
        if body is None or body.tag != _BODY or body.attrib:
            return None
        call = _only_child(body)
        if call is None or call.attrib:
            return None
        operation = self.operations.get(str(call.tag))
        if operation is None:
            return None
        values: list[Any] = [None] * len(operation.parameters)
        seen = set()
        for child in call:
            if not isinstance(child.tag, str) or child.attrib or len(child):
                return None
            where = operation.parameters.get(child.tag)
            if where is None or child.tag in seen:
                return None
            seen.add(child.tag)
            position, is_integer = where
            text = child.text
            if is_integer:
                if not text:
                    continue  # spyne reads an empty number as None
                if not _INTEGER.fullmatch(text):
                    return None
                values[position] = int(text)
            else:
                values[position] = text or ""
        return operation, values


def _has_text(element: etree._Element) -> bool:
    """Text beside the elements (spyne ignores it; this path does not guess)."""
    if (element.text or "").strip():
        return True
    return any((child.tail or "").strip() for child in element)


def _only_child(element: etree._Element) -> etree._Element | None:
    """The one child element, if it is the only thing inside ``element``."""
    if len(element) != 1 or _has_text(element):
        return None
    child = element[0]
    return child if isinstance(child.tag, str) else None


def _write(operation: _Operation, result: object) -> bytes:
    """spyne's answer for ``result``: TypeError when spyne would write it another way."""
    envelope = etree.Element(_ENVELOPE, nsmap=_NSMAP)
    response = etree.SubElement(etree.SubElement(envelope, _BODY), operation.response)
    element = etree.SubElement(response, operation.result)
    if type(result) is not operation.result_kind:
        raise TypeError(type(result).__name__)
    if isinstance(result, list):
        for value in result:
            if type(value) is not str:
                raise TypeError(type(value).__name__)
            etree.SubElement(element, operation.item).text = value
    else:
        element.text = str(result)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
