"""The template files load from package data and the fill rules hold."""

from __future__ import annotations

from importlib import resources

import pytest
from lxml import etree

from qbwc_bridge.errors import UnsupportedQuickBooks
from qbwc_bridge.qbxml import templates
from qbwc_bridge.qbxml.versions import QbxmlVersion
from qbwc_bridge.safexml import parse_xml

V13 = QbxmlVersion(13, 0)
KINDS = [
    "CustomerQuery", "CustomerAdd", "InvoiceQuery", "InvoiceAdd", "SalesReceiptQuery",
    "SalesReceiptAdd", "SalesOrderQuery", "SalesOrderAdd", "CreditMemoQuery", "CreditMemoAdd",
    "ReceivePaymentQuery", "ReceivePaymentAdd", "ItemInventoryQuery",
    "ItemInventoryAssemblyQuery", "TxnDeletedQuery", "ItemQuery", "ItemNonInventoryAdd",
    "TxnDel",
]  # fmt: skip


def test_one_template_per_request_type_and_nothing_else() -> None:
    files = {
        entry.name.removesuffix(".xml")
        for entry in resources.files("qbxml_templates").iterdir()
        if entry.name.endswith(".xml")
    }
    assert files == set(KINDS)
    for kind in KINDS:
        assert templates.load(kind, V13).root.tag == f"{kind}Rq"
    assert templates.load("InvoiceAdd", V13) is templates.load("InvoiceAdd", V13)


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        templates.load("NoSuchThing", V13)


def test_placeholders_fill_and_empty_containers_vanish() -> None:
    element = templates.fill(
        "ReceivePaymentQuery", {"customer": "  Zoë  ", "ref_number": "", "from_date": ""}, V13
    )
    assert etree.tostring(element, encoding="utf-8") == (
        b"<ReceivePaymentQueryRq><EntityFilter><FullName>Zo\xc3\xab</FullName></EntityFilter>"
        b"<IncludeLineItems>true</IncludeLineItems></ReceivePaymentQueryRq>"
    )


def test_repeat_and_limits() -> None:
    element = templates.fill(
        "InvoiceAdd",
        {
            "customer": "C",
            "ref_number": "R" * 30,
            "lines": [{"item": "A", "amount": "1.00"}, {"desc": "only text"}, {}],
        },
        V13,
    )
    assert element.findtext("InvoiceAdd/RefNumber") == "R" * 11
    lines = element.findall("InvoiceAdd/InvoiceLineAdd")
    assert [[child.tag for child in line] for line in lines] == [["ItemRef", "Amount"], ["Desc"]]
    assert element.find(".//BillAddress") is None


def test_version_markers_drop_what_the_version_lacks() -> None:
    values = {"name": "N", "bill_addr5": "five", "ship_addr5": "five", "ship_city": "X"}
    new = templates.fill("CustomerAdd", values, QbxmlVersion(6, 0))
    old = templates.fill("CustomerAdd", values, QbxmlVersion(5, 0))
    assert new.findtext("CustomerAdd/BillAddress/Addr5") == "five"
    assert b"minVersion" not in etree.tostring(new) + etree.tostring(old)
    assert old.find("CustomerAdd/BillAddress") is None  # emptied by the drop, so pruned
    assert old.findtext("CustomerAdd/ShipAddress/City") == "X"
    assert old.find("CustomerAdd/ShipAddress/Addr5") is None
    skeleton = templates.skeleton("CustomerAdd")
    assert skeleton.find("CustomerAdd/BillAddress/Addr5").get("minVersion") == "6.0"  # type: ignore[union-attr]


def test_attribute_markers() -> None:
    values = {"iterator": "Start", "max_returned": "5"}
    element = templates.fill("ItemInventoryQuery", values, QbxmlVersion(5, 0))
    assert dict(element.items()) == {"iterator": "Start"}
    assert not templates.fill("ItemInventoryQuery", values, QbxmlVersion(4, 1)).items()
    with pytest.raises(UnsupportedQuickBooks, match=r"needs qbXML 2\.0"):
        templates.fill("ItemInventoryAssemblyQuery", {"max_returned": "5"}, QbxmlVersion(1, 1))


def test_every_template_is_well_formed_and_uses_only_known_directives() -> None:
    known = {"repeat", "maxLength", "minVersion", "iterator", "iteratorID"}
    for kind in KINDS:
        data = resources.files("qbxml_templates").joinpath(f"{kind}.xml").read_bytes()
        root = parse_xml(data)
        for element in root.iter():
            for name in element.attrib:
                assert str(name) in known or str(name).startswith("minVersion-"), (kind, name)


def test_fills_that_share_a_shape_share_nothing_else() -> None:
    """A shape's element tree is built once and copied: no value may leak between fills."""
    first = templates.fill(
        "InvoiceAdd", {"customer": "A", "memo": "first", "lines": [{"item": "X"}]}, V13
    )
    second = templates.fill(
        "InvoiceAdd", {"customer": "B", "memo": "second", "lines": [{"item": "Y"}]}, V13
    )
    fewer = templates.fill("InvoiceAdd", {"customer": "C", "lines": [{}, {"item": "Z"}]}, V13)
    assert etree.tostring(first) == etree.tostring(second).replace(b"B", b"A").replace(
        b"second", b"first"
    ).replace(b">Y<", b">X<")
    assert first.findtext("InvoiceAdd/Memo") == "first"  # the later fills left it alone
    assert second.findtext("InvoiceAdd/CustomerRef/FullName") == "B"
    assert [e.text for e in second.iter("FullName")] == ["B", "Y"]
    assert fewer.find("InvoiceAdd/Memo") is None
    assert [e.text for e in fewer.iter("FullName")] == ["C", "Z"]
    second.find("InvoiceAdd/Memo").text = "changed"  # type: ignore[union-attr]
    third = templates.fill(
        "InvoiceAdd", {"customer": "D", "memo": "third", "lines": [{"item": "W"}]}, V13
    )
    assert third.findtext("InvoiceAdd/Memo") == "third"
    shapes = templates.load("InvoiceAdd", V13).shapes
    assert all(e.text is None for tree in shapes.values() for e in tree.iter("FullName", "Memo"))
