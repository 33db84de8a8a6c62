"""The qbXML request skeletons in ``qbxml_templates/`` and the small language that fills them.

A template fixes the schema order of everything the bridge may send, so element order lives
in one XML file per request type instead of in code. The language (see
``qbxml_templates/README.md``): ``{name}`` placeholders as element text or attribute value,
``repeat="list"``, ``maxLength="N"``, ``minVersion="X.Y"`` and ``minVersion-ATTR="X.Y"``.
Skeletons are parsed once (through the hardened parser) and compiled, once per qbXML version,
to plain tuples without what that version lacks; a fill works out which elements it needs,
then copies an element tree of that shape built earlier, so filling a large message stays fast.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from lxml import etree

from qbwc_bridge.domain.text import FIELD_LIMITS
from qbwc_bridge.errors import UnsupportedQuickBooks
from qbwc_bridge.qbxml.versions import QbxmlVersion
from qbwc_bridge.safexml import parse_xml

TEMPLATE_PACKAGE = "qbxml_templates"
MIN_VERSION = "minVersion"
_ATTRIBUTE_VERSION_PREFIX = "minVersion-"
_DIRECTIVES = frozenset({"repeat", "maxLength"})
SHAPES_KEPT = 256  # element trees kept per template; a rarer shape is built each time

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
    """A compiled skeleton of one ``…Rq`` element.

    ``nodes`` maps each node's id to the node and its parent's id (``None`` for the root);
    ``shapes`` keeps the element trees already built, by shape (see ``_Layout``).
    """

    kind: str
    root: _Node
    nodes: dict[int, tuple[_Node, int | None]]
    shapes: dict[tuple[int, ...], etree._Element] = field(default_factory=dict)


def _index(node: _Node, parent: _Node | None, into: dict[int, tuple[_Node, int | None]]) -> None:
    into[id(node)] = (node, None if parent is None else id(parent))
    for child in node.children:
        _index(child, node, into)


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

    Compiling per version keeps version checks and XPath out of every fill.
    Raises UnsupportedQuickBooks when the request type itself is newer than ``version``.
    """
    root = _compile(for_version(skeleton(kind), version))
    nodes: dict[int, tuple[_Node, int | None]] = {}
    _index(root, None, nodes)
    return Template(kind=kind, root=root, nodes=nodes)


def _text(node: _Node, value: str) -> str:
    """The element's text: ``value`` is QuickBooks text already (domain/records.py's
    contract; build.py folds the few strings that do not come in records), so only the
    element's own limit is applied."""
    value = value.strip()
    return value[: node.max_length].rstrip() if node.max_length is not None else value


def _value(values: Values, key: str) -> str:
    value = values.get(key, "")
    return value if isinstance(value, str) else ""


def _slot_attributes(node: _Node, values: Values) -> list[tuple[str, str]]:
    found = []
    for name, key in node.attribute_slots:
        value = _text(node, _value(values, key))
        if value:
            found.append((name, value))
    return found


class _Layout:
    """What one fill creates, in document order, worked out before any element exists.

    ``shape`` names the template node of every element to create. Fills with the same shape
    differ only in ``texts`` (``None`` for literals and containers) and slot ``attributes``,
    so each shape's element tree is built once and then copied, which lxml does in C.
    """

    __slots__ = ("attributes", "shape", "texts")

    def __init__(self) -> None:
        self.shape: list[int] = []
        self.texts: list[str | None] = []
        self.attributes: list[tuple[int, str, str]] = []

    def element(self, node: _Node, text: str | None, values: Values) -> None:
        for name, value in _slot_attributes(node, values) if node.attribute_slots else ():
            self.attributes.append((len(self.shape), name, value))
        self.shape.append(id(node))
        self.texts.append(text)

    def children(self, node: _Node, values: Values) -> bool:
        """Lay out ``node``'s children; True when any placeholder below got a value.

        Leaves are handled inline: most placeholders are empty, and skipping those (and
        laying out literals) without a call keeps a large message cheap to build.
        """
        filled = False
        for child in node.children:
            if child.repeat is not None:
                items = values.get(child.repeat, ())
                for item in items if not isinstance(items, str) else ():
                    filled = self.once(child, item) or filled
            elif child.literal is not None and not (child.children or child.attribute_slots):
                self.shape.append(id(child))
                self.texts.append(None)
            elif child.slot is not None and not child.children:
                value = values.get(child.slot)
                if value and isinstance(value, str):
                    text = _text(child, value)
                    if text:
                        self.element(child, text, values)
                        filled = True
            else:
                filled = self.once(child, values) or filled
        return filled

    def once(self, node: _Node, values: Values) -> bool:
        """Lay out ``node``; True when a placeholder at or below it got a value."""
        value = _text(node, _value(values, node.slot)) if node.slot is not None else None
        if value == "":
            return False
        elements, attributes = len(self.shape), len(self.attributes)
        self.element(node, value, values)
        if value is not None:
            return True
        filled = self.children(node, values)
        if node.has_slots and not filled:  # a container with nothing in it is left out
            del self.shape[elements:], self.texts[elements:], self.attributes[attributes:]
        return filled


def _build(template: Template, shape: tuple[int, ...]) -> etree._Element:
    """The element tree of ``shape``, with literal texts and attributes and no slot values."""
    latest: dict[int, etree._Element] = {}  # node → its element made last (pre-order)
    root: etree._Element | None = None
    for token in shape:
        node, parent = template.nodes[token]
        if parent is None:
            element = root = etree.Element(node.tag)
        else:
            element = etree.SubElement(latest[parent], node.tag)
        element.text = node.literal
        for name, raw in node.attributes:
            element.set(name, raw)
        latest[token] = element
    assert root is not None
    return root


def fill(kind: str, values: Values, version: QbxmlVersion) -> etree._Element:
    """The ``…Rq`` element of ``kind`` for qbXML ``version``, filled from ``values``.

    Every text is folded to Windows-1252 and cut to its limit; elements whose placeholders are
    all empty disappear, and so does whatever ``version`` lacks.
    """
    template = load(kind, version)
    layout = _Layout()
    layout.element(template.root, None, values)
    layout.children(template.root, values)
    shape = tuple(layout.shape)
    skeleton = template.shapes.get(shape)
    if skeleton is None:
        skeleton = _build(template, shape)
        if len(template.shapes) < SHAPES_KEPT:
            template.shapes[shape] = skeleton
    element = copy.deepcopy(skeleton)
    for target, text in zip(element.iter(), layout.texts, strict=True):
        if text is not None:
            target.text = text
    if layout.attributes:
        elements = list(element.iter())
        for index, name, value in layout.attributes:
            elements[index].set(name, value)
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
