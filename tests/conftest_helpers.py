"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
TNS = "http://developer.intuit.com/"


def _local(qname: str | None) -> str:
    return (qname or "").split(":")[-1]


def wsdl_operations(root: etree._Element) -> dict[str, object]:
    """Operation → (input element, its parameters, output element, its result fields).

    Each parameter is (name, XSD type local name, minOccurs, maxOccurs); array types are
    resolved to (type name, item element name, item type), which is what a client
    serialises. Only the SOAP 1.1 contract is compared.
    """
    schema_elements = {
        el.get("name"): el
        for el in root.iter(f"{{{XS}}}element")
        if el.getparent() is not None and el.getparent().tag == f"{{{XS}}}schema"
    }
    complex_types = {
        ct.get("name"): ct for ct in root.iter(f"{{{XS}}}complexType") if ct.get("name")
    }

    def fields(element: etree._Element) -> tuple[tuple[object, ...], ...]:
        # spyne declares each message element's type by name; Intuit's WSDL inlines it.
        body = complex_types.get(_local(element.get("type")), element)
        result = []
        for child in body.iter(f"{{{XS}}}element"):
            if child is element:
                continue
            type_name = _local(child.get("type"))
            described: object = type_name
            if type_name in complex_types:
                items = [
                    (e.get("name"), _local(e.get("type")), e.get("maxOccurs"))
                    for e in complex_types[type_name].iter(f"{{{XS}}}element")
                ]
                described = ("array", type_name, tuple(items))
            if type_name in ("int", "integer"):
                described = "int"
            result.append((child.get("name"), described, child.get("minOccurs", "1")))
        return tuple(result)

    operations: dict[str, object] = {}
    messages = {
        m.get("name"): _local(m.find(f"{{{WSDL}}}part").get("element"))  # type: ignore[union-attr]
        for m in root.iter(f"{{{WSDL}}}message")
    }
    port_type = root.find(f"{{{WSDL}}}portType")
    assert port_type is not None
    for operation in port_type.iter(f"{{{WSDL}}}operation"):
        input_el = messages[_local(operation.find(f"{{{WSDL}}}input").get("message"))]  # type: ignore[union-attr]
        output_el = messages[_local(operation.find(f"{{{WSDL}}}output").get("message"))]  # type: ignore[union-attr]
        operations[operation.get("name") or ""] = (
            input_el,
            fields(schema_elements[input_el]),
            output_el,
            fields(schema_elements[output_el]),
        )
    return operations
