"""The qbXML request skeletons in ``qbxml_templates/`` and the small language that fills them.

A template fixes the schema order of everything the bridge may send, so element order lives
in one XML file per request type instead of in code. The language (see
``qbxml_templates/README.md``): ``{name}`` placeholders as element text or attribute value,
``repeat="list"``, ``maxLength="N"``, ``minVersion="X.Y"`` and ``minVersion-ATTR="X.Y"``.
Skeletons are parsed once (through the hardened parser) and compiled, once per qbXML version,
to plain tuples without what that version lacks, so filling a large message stays fast.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lxml import etree

from qbwc_bridge.domain.text import FIELD_LIMITS, qb_text
from qbwc_bridge.errors import UnsupportedQuickBooks
from qbwc_bridge.qbxml.parsing import parse_xml
from qbwc_bridge.qbxml.versions import QbxmlVersion

TEMPLATE_PACKAGE = "qbxml_templates"
MIN_VERSION = "minVersion"
_ATTRIBUTE_VERSION_PREFIX = "minVersion-"
_DIRECTIVES = frozenset({"repeat", "maxLength"})

Values = Mapping[str, str | Sequence[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class _Node:
    tag: str
    slot: str | None
    literal: str | None
    attributes: tuple[tuple[str, str], ...]
    attribute_slots: tuple[tuple[str, str], ...]
    repeat: str | None
    max_length: int | None
    children: tuple[_Node, ...]
    has_slots: bool


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled skeleton of one ``…Rq`` element."""

    kind: str
    root: _Node


def _slot_name(text: str | None) -> str | None:
    stripped = (text or "").strip()
    if len(stripped) > 2 and stripped.startswith("{") and stripped.endswith("}"):
        return stripped[1:-1]
    return None


def _compile(element: etree._Element) -> _Node:
    children = tuple(_compile(child) for child in element if isinstance(child.tag, str))
    text = (element.text or "").strip()
    slot = _slot_name(text)
    attributes: list[tuple[str, str]] = []
    attribute_slots: list[tuple[str, str]] = []
    for name, value in element.attrib.items():
        key, raw = str(name), str(value)
        if key in _DIRECTIVES:
            continue
        slot_name = _slot_name(raw)
        if slot_name is None:
            attributes.append((key, raw))
        else:
            attribute_slots.append((key, slot_name))
    limit = element.get("maxLength")
    tag = str(element.tag)
    return _Node(
        tag=tag,
        slot=slot,
        literal=None if slot is not None or not text else text,
        attributes=tuple(attributes),
        attribute_slots=tuple(attribute_slots),
        repeat=element.get("repeat"),
        max_length=int(limit) if limit is not None else FIELD_LIMITS.get(tag),
        children=children,
        has_slots=slot is not None or any(child.has_slots for child in children),
    )


@cache
def skeleton(kind: str) -> etree._Element:
    """The parsed skeleton ``qbxml_templates/<kind>.xml`` (e.g. ``"InvoiceAdd"``), markers kept."""
    data = resources.files(TEMPLATE_PACKAGE).joinpath(f"{kind}.xml").read_bytes()
    root = parse_xml(data)
    if root.tag != f"{kind}Rq":
        raise ValueError(f"template {kind}.xml must have root <{kind}Rq>, not <{root.tag}>")
    return root


@cache
def load(kind: str, version: QbxmlVersion) -> Template:
    """The template of ``kind`` compiled for ``version``: what that version lacks is gone.

    Compiling per version keeps filling a pure tree build: no copies or XPath per request.
    Raises UnsupportedQuickBooks when the request type itself is newer than ``version``.
    """
    return Template(kind=kind, root=_compile(for_version(skeleton(kind), version)))


def _text(node: _Node, value: str) -> str:
    folded = qb_text(value).strip()
    return folded[: node.max_length].rstrip() if node.max_length is not None else folded


def _value(values: Values, key: str) -> str:
    value = values.get(key, "")
    return value if isinstance(value, str) else ""


def _set_attributes(node: _Node, values: Values, element: etree._Element) -> None:
    for name, raw in node.attributes:
        element.set(name, raw)
    for name, key in node.attribute_slots:
        value = _text(node, _value(values, key))
        if value:
            element.set(name, value)


def _fill_children(node: _Node, values: Values, element: etree._Element) -> bool:
    """Append ``node``'s children filled from ``values``; True when any placeholder got a value.

    Leaves are handled inline: most placeholders are empty, and skipping those (and writing
    literals) without a call keeps a large message cheap to build.
    """
    filled = False
    for child in node.children:
        if child.repeat is not None:
            items = values.get(child.repeat, ())
            for item in items if not isinstance(items, str) else ():
                filled = _fill_once(child, item, element) or filled
        elif child.literal is not None and not (
            child.children or child.attributes or child.attribute_slots
        ):
            etree.SubElement(element, child.tag).text = child.literal
        elif child.slot is not None and not child.children:
            value = values.get(child.slot)
            if value and isinstance(value, str):
                text = _text(child, value)
                if text:
                    leaf = etree.SubElement(element, child.tag)
                    leaf.text = text
                    if child.attributes or child.attribute_slots:
                        _set_attributes(child, values, leaf)
                    filled = True
        else:
            filled = _fill_once(child, values, element) or filled
    return filled


def _fill_once(node: _Node, values: Values, parent: etree._Element) -> bool:
    """Append ``node`` filled from ``values``; True when a placeholder below it got a value."""
    value = _text(node, _value(values, node.slot)) if node.slot is not None else None
    if value == "":
        return False
    element = etree.SubElement(parent, node.tag)
    element.text = value if value is not None else node.literal
    if node.attributes or node.attribute_slots:
        _set_attributes(node, values, element)
    if value is not None:
        return True
    filled = _fill_children(node, values, element)
    if node.has_slots and not filled:
        parent.remove(element)
    return filled


def fill(kind: str, values: Values, version: QbxmlVersion) -> etree._Element:
    """The ``…Rq`` element of ``kind`` for qbXML ``version``, filled from ``values``.

    Every text is folded to Windows-1252 and cut to its limit; elements whose placeholders are
    all empty disappear, and so does whatever ``version`` lacks.
    """
    root = load(kind, version).root
    element = etree.Element(root.tag)
    _set_attributes(root, values, element)
    _fill_children(root, values, element)
    return element


_MARKED = etree.XPath("descendant-or-self::*[@*[starts-with(name(), 'minVersion')]]")


def for_version(element: etree._Element, version: QbxmlVersion) -> etree._Element:
    """A copy of a skeleton without what ``version`` lacks, and without markers.

    Raises UnsupportedQuickBooks when the request type itself is newer than ``version``.
    """
    request = copy.deepcopy(element)
    needed = request.get(MIN_VERSION)
    if needed is not None and QbxmlVersion.parse(needed) > version:
        raise UnsupportedQuickBooks(
            f"{request.tag} needs qbXML {needed}; this QuickBooks speaks qbXML {version}"
        )
    marked = _MARKED(request)
    assert isinstance(marked, list)
    for found in marked:
        if isinstance(found, etree._Element):
            _apply_markers(found, request, version)
    return request


def _apply_markers(element: etree._Element, root: etree._Element, version: QbxmlVersion) -> None:
    for name in [str(key) for key in element.attrib]:
        if not name.startswith(MIN_VERSION):
            continue
        needed = QbxmlVersion.parse(str(element.attrib.pop(name)))
        if needed <= version:
            continue
        if name == MIN_VERSION:
            _remove_pruning(element, root)
            return
        attribute = name[len(_ATTRIBUTE_VERSION_PREFIX) :]
        if attribute in element.attrib:
            del element.attrib[attribute]


def _remove_pruning(element: etree._Element, root: etree._Element) -> None:
    """Remove ``element`` and any ancestor that it leaves empty (never the request itself)."""
    parent = element.getparent()
    if parent is None:
        return
    parent.remove(element)
    if parent is not root and len(parent) == 0 and not (parent.text or "").strip():
        _remove_pruning(parent, root)
