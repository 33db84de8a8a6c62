"""Reading qbXML requests and writing Rets as QuickBooks does, for every request family."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lxml import etree

from qbwc_bridge.simulator.quickbooks.records import Aggregate, Field

_NOT_IN_LIST = (
    "  QuickBooks error message: Invalid argument."
    "  The specified record does not exist in the list."
)
_STATUS_OK = "Status OK"
_CENT = Decimal("0.01")
_Value = str | Aggregate | list[etree._Element]


class _Status(Exception):
    """A non-OK statusCode for one request: the request changes nothing."""

    def __init__(self, code: int, severity: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.severity = severity
        self.message = message


@dataclass
class _Answer:
    rets: list[etree._Element]
    code: int = 0
    severity: str = "Info"
    message: str = _STATUS_OK
    iterator: tuple[int, str] | None = None


def _tags(names: str) -> tuple[str, ...]:
    return tuple(names.split())


def _ref(list_id: str, full_name: str) -> Aggregate:
    return (("ListID", list_id), ("FullName", full_name))


_AR_ACCOUNT = _ref("8000001D-1400000000", "Accounts Receivable")
_UNDEPOSITED = _ref("8000001E-1400000000", "Undeposited Funds")
_TAX_NON = _ref("80000002-1400000000", "Non")
_ADDRESS_LIMITS = {
    "Addr1": 41,
    "Addr2": 41,
    "Addr3": 41,
    "Addr4": 41,
    "Addr5": 41,
    "City": 31,
    "State": 21,
    "PostalCode": 13,
    "Country": 31,
    "Note": 41,
}


def _to_cp1252(text: str) -> str:
    """What QuickBooks stores: Windows-1252, anything else as '?'."""
    return text.encode("cp1252", errors="replace").decode("cp1252")


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _child(element: etree._Element, tag: str) -> etree._Element | None:
    return next((child for child in _children(element) if child.tag == tag), None)


def _text(element: etree._Element, tag: str) -> str | None:
    child = _child(element, tag)
    if child is None:
        return None
    return _to_cp1252((child.text or "").strip())


def _texts(element: etree._Element, tag: str) -> list[str]:
    return [_to_cp1252((c.text or "").strip()) for c in _children(element) if c.tag == tag]


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise _Status(3000, "Error", f'The given value "{text}" is invalid.') from exc


def _money(amount: Decimal) -> str:
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def _quantity(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def _price(amount: Decimal) -> str:
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return _money(amount)
    return format(amount.normalize(), "f")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ordered(tag: str, order: Sequence[str], pairs: Iterable[tuple[str, _Value]]) -> etree._Element:
    """Build ``tag`` with its children in schema order, whatever order they were gathered in."""
    position = {name: index for index, name in enumerate(order)}
    items = list(pairs)
    unknown = [name for name, _ in items if name not in position]
    if unknown:
        raise ValueError(f"{tag} has no child {unknown[0]}")
    element = etree.Element(tag)
    for name, value in sorted(items, key=lambda pair: position[pair[0]]):
        if isinstance(value, list):
            element.extend(value)
        elif isinstance(value, tuple):
            aggregate = etree.SubElement(element, name)
            for child_tag, child_text in value:
                etree.SubElement(aggregate, child_tag).text = child_text
        else:
            etree.SubElement(element, name).text = value
    return element


def _address_block(address: Aggregate) -> Aggregate:
    parts = dict(address)
    lines = [parts[key] for key in ("Addr1", "Addr2", "Addr3", "Addr4", "Addr5") if key in parts]
    region = " ".join(p for p in (parts.get("State"), parts.get("PostalCode")) if p)
    city_line = ", ".join(p for p in (parts.get("City"), region) if p)
    if city_line:
        lines.append(city_line)
    if parts.get("Country"):
        lines.append(parts["Country"])
    return tuple((f"Addr{index}", line[:41]) for index, line in enumerate(lines[:5], start=1))


def _passthrough(
    add: etree._Element, allowed: Iterable[str], computed: frozenset[str]
) -> list[Field]:
    """Request children QuickBooks echoes unchanged in the Ret: leaves and one-level aggregates."""
    allowed_tags = set(allowed) - computed
    fields: list[Field] = []
    for child in _children(add):
        if child.tag not in allowed_tags:
            continue
        grandchildren = _children(child)
        if not grandchildren:
            fields.append((child.tag, _to_cp1252((child.text or "").strip())))
        elif all(not _children(grandchild) for grandchild in grandchildren):
            fields.append(
                (
                    child.tag,
                    tuple((g.tag, _to_cp1252((g.text or "").strip())) for g in grandchildren),
                )
            )
    return fields


def _check_lengths(add: etree._Element, limits: Mapping[str, int]) -> None:
    """3070 for the first string longer than QuickBooks' field allows, in document order."""
    for element in add.iter():
        if not isinstance(element.tag, str) or _children(element):
            continue
        parent = element.getparent()
        parent_tag = parent.tag if parent is not None and isinstance(parent.tag, str) else ""
        if parent_tag.endswith("Ref"):
            continue
        limit = _ADDRESS_LIMITS.get(element.tag) if parent_tag.endswith("Address") else None
        if parent_tag.endswith("Address") and limit is None:
            continue
        limit = limit if limit is not None else limits.get(element.tag)
        text = _to_cp1252((element.text or "").strip())
        if limit is not None and len(text) > limit:
            raise _Status(
                3070, "Error", f'The string "{text}" in the field "{element.tag}" is too long.'
            )


def _parse_datetime(text: str, default_tz: datetime, *, end_of_day: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(
                day, datetime.max.time() if end_of_day else datetime.min.time()
            )
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Status(
            3020, "Error", f'There was an error when converting the date value "{text}".'
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz.tzinfo)
    return moment


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise _Status(
            3020, "Error", f'There was an error when converting the date value "{text}".'
        ) from exc


def _edit_sequence(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _set_status(rs: etree._Element, code: int, severity: str, message: str) -> None:
    rs.set("statusCode", str(code))
    rs.set("statusSeverity", severity)
    rs.set("statusMessage", message)


def _required_child(request: etree._Element, tag: str) -> etree._Element:
    child = _child(request, tag)
    if child is None:
        raise _Status(3000, "Error", f'The request has no "{tag}" element.')
    return child


def _ref_parts(ref: etree._Element | None) -> tuple[str | None, str | None]:
    if ref is None:
        return None, None
    return _text(ref, "ListID"), _text(ref, "FullName")


def _address_blocks(fields: Iterable[Field]) -> list[tuple[str, _Value]]:
    blocks: list[tuple[str, _Value]] = []
    for tag, value in fields:
        if tag in ("BillAddress", "ShipAddress") and isinstance(value, tuple):
            block = _address_block(value)
            if block:
                blocks.append((f"{tag}Block", block))
    return blocks
