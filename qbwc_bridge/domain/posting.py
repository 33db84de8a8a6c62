"""Posting rules a company sets for itself: its mappings (channel names → QuickBooks
names), the items a run may create, and what an undo may delete; plain values, no I/O."""

from __future__ import annotations

import csv
import enum
import io
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from qbwc_bridge.domain.company import TXN_TYPES
from qbwc_bridge.domain.text import FIELD_LIMITS, fit, fit_line
from qbwc_bridge.errors import BridgeError

T = TypeVar("T")

# QuickBooks' limit on an item's own Name (a non-inventory item the bridge creates).
ITEM_NAME_LIMIT = 31
SOURCE_LIMIT = 200
CSV_COLUMNS = ("kind", "from", "to")


class MappingKind(enum.StrEnum):
    """What a mapping renames (the values are what `map set` takes)."""

    SKU = "sku"  # a channel SKU → a QuickBooks item FullName
    PAYMENT_METHOD = "payment-method"  # a card name → a QuickBooks PaymentMethod
    SHIPPING_METHOD = "shipping-method"  # a channel's shipping method → a QuickBooks ShipMethod
    CLASS = "class"  # a ChannelName → a QuickBooks Class
    TXN_TYPE = "txn-type"  # a ChannelName → invoice, sales_receipt or sales_order


# What each kind's target is in QuickBooks, and its longest name there.
_TARGETS: dict[MappingKind, tuple[str, int]] = {
    MappingKind.SKU: ("item FullName", FIELD_LIMITS["FullName"]),
    MappingKind.PAYMENT_METHOD: ("PaymentMethod", FIELD_LIMITS["PaymentMethod"]),
    MappingKind.SHIPPING_METHOD: ("ShipMethod", FIELD_LIMITS["ShipMethod"]),
    MappingKind.CLASS: ("Class FullName", FIELD_LIMITS["FullName"]),
}

KIND_MEANINGS = {
    MappingKind.SKU: "a channel SKU → the QuickBooks item (FullName) its lines go to",
    MappingKind.PAYMENT_METHOD: "a card name (creditCardName) → a QuickBooks payment method",
    MappingKind.SHIPPING_METHOD: "a ShippingMethod → a QuickBooks ship method (ShipMethodRef)",
    MappingKind.CLASS: "a ChannelName → a QuickBooks class (ClassRef)",
    MappingKind.TXN_TYPE: "a ChannelName → what its web orders become: " + ", ".join(TXN_TYPES),
}


class InvalidMapping(BridgeError):
    """That mapping cannot be stored (an unknown kind, an empty or over-long name)."""


def source_key(text: str) -> str:
    """How a mapping's "from" is compared: composed, trimmed, without case (QuickBooks'
    names and the channels' SKUs are matched without case)."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def item_key(name: str) -> str:
    """How QuickBooks compares item names: without case."""
    return name.strip().casefold()


@dataclass(frozen=True, slots=True)
class MappingRule:
    """One mapping as `map list` shows it: its kind, what it renames, and the new name."""

    kind: MappingKind
    source: str
    target: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "from": self.source, "to": self.target}


def mapping_kind(text: str) -> MappingKind:
    try:
        return MappingKind(text.strip().lower())
    except ValueError:
        kinds = ", ".join(kind.value for kind in MappingKind)
        raise InvalidMapping(f"unknown mapping kind {text!r}: use one of {kinds}") from None


def make_rule(kind_text: str, source: str, target: str) -> MappingRule:
    """A validated mapping; the target as QuickBooks stores it (folded to Windows-1252)."""
    kind = mapping_kind(kind_text)
    source = " ".join(source.split())
    if not source:
        raise InvalidMapping(f"a {kind.value} mapping needs a non-empty FROM")
    if len(source) > SOURCE_LIMIT:
        raise InvalidMapping(f"FROM has {len(source)} characters; at most {SOURCE_LIMIT}")
    if kind is MappingKind.TXN_TYPE:
        value = target.strip().lower()
        if value not in TXN_TYPES:
            raise InvalidMapping(
                f"a txn-type mapping names {', '.join(TXN_TYPES)}, not {target.strip()!r}"
            )
        return MappingRule(kind, source, value)
    what, limit = _TARGETS[kind]
    folded = fit_line(target, 10 * limit)
    if not folded:
        raise InvalidMapping(f"a {kind.value} mapping needs a non-empty TO (the {what})")
    if len(folded) > limit:
        raise InvalidMapping(
            f"QuickBooks' {what} has at most {limit} characters; {folded!r} has {len(folded)}"
        )
    return MappingRule(kind, source, folded)


@dataclass(frozen=True, slots=True)
class Mappings:
    """A company's mappings, looked up by kind and FROM (see source_key)."""

    rules: Mapping[tuple[MappingKind, str], MappingRule] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Iterable[MappingRule]) -> Mappings:
        return cls({(rule.kind, source_key(rule.source)): rule for rule in rules})

    def __bool__(self) -> bool:
        return bool(self.rules)

    def target(self, kind: MappingKind, source: str) -> str | None:
        """The mapped name, or None when ``source`` has no mapping of that kind."""
        if not self.rules or not source.strip():
            return None
        rule = self.rules.get((kind, source_key(source)))
        return rule.target if rule is not None else None

    def sources_of(self, kind: MappingKind, target: str) -> list[str]:
        """The FROMs mapped to ``target`` (compared without case)."""
        wanted = target.strip().casefold()
        return [
            rule.source
            for (rule_kind, _), rule in self.rules.items()
            if rule_kind is kind and rule.target.casefold() == wanted
        ]

    def item(self, sku: str) -> str:
        """The QuickBooks item of a line: the mapped FullName, else the SKU itself."""
        return self.target(MappingKind.SKU, sku) or fit(sku, FIELD_LIMITS["FullName"])

    def payment_method(self, card_name: str) -> str:
        """The PaymentMethod: the mapped one, else the card name itself."""
        mapped = self.target(MappingKind.PAYMENT_METHOD, card_name)
        return mapped or fit_line(card_name, FIELD_LIMITS["PaymentMethod"])

    def ship_method(self, shipping_method: str) -> str:
        """The ShipMethodRef: only a mapped one ("" sends none: an unknown ship method
        would fail the whole transaction)."""
        return self.target(MappingKind.SHIPPING_METHOD, shipping_method) or ""

    def class_name(self, channel: str) -> str:
        """The ClassRef of a channel's transactions: only a mapped one ("" sends none)."""
        return self.target(MappingKind.CLASS, channel) or ""

    def txn_type(self, channel: str) -> str | None:
        """What the channel's web orders become, when mapped (else the company's txn_type)."""
        return self.target(MappingKind.TXN_TYPE, channel)


NO_MAPPINGS = Mappings()


class Lazy(Generic[T]):
    """A value read on first use and then kept (a callback reads it only when a step
    needs it: most messages need no mappings)."""

    __slots__ = ("_load", "_value")

    def __init__(self, load: Callable[[], T]) -> None:
        self._load: Callable[[], T] | None = load
        self._value: T | None = None

    @classmethod
    def of(cls, value: T) -> Lazy[T]:
        lazy: Lazy[T] = cls(lambda: value)
        return lazy

    def get(self) -> T:
        if self._load is not None:
            self._value, self._load = self._load(), None
        return self._value  # type: ignore[return-value]


# --- CSV import --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvProblem:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def read_mapping_csv(text: str) -> tuple[list[MappingRule], list[CsvProblem]]:
    """The mappings of a CSV file with the columns kind, from, to (a header row of those
    names is optional), and every problem by its line number. One FROM twice for a kind
    is a problem: the file would say two things."""
    rules: list[MappingRule] = []
    problems: list[CsvProblem] = []
    seen: dict[tuple[MappingKind, str], int] = {}
    reader = csv.reader(io.StringIO(text))
    first = True
    for row in reader:
        line = reader.line_num
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if first and [cell.lower() for cell in cells] == list(CSV_COLUMNS):
            first = False
            continue
        first = False
        if len(cells) != len(CSV_COLUMNS):
            problems.append(CsvProblem(line, f"{len(cells)} columns; a row has 3: kind, from, to"))
            continue
        try:
            rule = make_rule(*cells)
        except InvalidMapping as error:
            problems.append(CsvProblem(line, error.message))
            continue
        key = (rule.kind, source_key(rule.source))
        if key in seen:
            problems.append(
                CsvProblem(
                    line, f"{rule.kind.value} {rule.source!r} is mapped already on line {seen[key]}"
                )
            )
            continue
        seen[key] = line
        rules.append(rule)
    return rules, problems


# --- items the bridge may create -------------------------------------------------------------


def item_name_problem(name: str) -> str | None:
    """Why ``name`` (an unknown SKU) cannot become a QuickBooks item's Name, or None."""
    if len(name) > ITEM_NAME_LIMIT:
        return (
            f"it has {len(name)} characters and a QuickBooks item name has at most "
            f"{ITEM_NAME_LIMIT}"
        )
    if ":" in name:
        return "a colon in an item name makes it a sub-item of another item"
    return None
