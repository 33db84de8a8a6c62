"""The company file every request family reads and writes, with the lookups they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _NOT_IN_LIST,
    _child,
    _children,
    _ref,
    _ref_parts,
    _Status,
)
from qbwc_bridge.simulator.quickbooks.records import (
    Aggregate,
    CustomerRecord,
    ItemRecord,
    PaymentRecord,
    TransactionRecord,
    TxnKind,
)


@dataclass
class _Iterator:
    request_tag: str
    keys: list[str]
    position: int
    last_used: datetime


class Books:
    """The state FakeQuickBooks sets up, as the request families see it."""

    max_version: str
    country: str
    product_name: str
    company_name: str
    data_extensions: dict[tuple[str, str], str]
    _clock: Callable[[], datetime]
    _payment_methods: dict[str, str] | None
    _known_payment_methods: dict[str, tuple[str, str]]
    _iterator_ttl: timedelta
    _next_list_id: int
    _next_txn_id: int
    _next_txn_number: int
    _next_ref_number: dict[TxnKind, int]
    _customers: dict[str, CustomerRecord]
    _customer_ids: dict[str, str]
    _items: dict[str, ItemRecord]
    _item_ids: dict[str, str]
    _item_order: list[str]
    _txns: dict[str, TransactionRecord]
    _payments: dict[str, PaymentRecord]
    _iterators: dict[str, _Iterator]
    _answer_version: tuple[int, int]
    # The Class, ShipMethod and Account lists, by lower-case name: (ListID, FullName).
    _classes: dict[str, tuple[str, str]]
    _ship_methods: dict[str, tuple[str, str]]
    _accounts: dict[str, tuple[str, str]]

    def _new_list_id(self, now: datetime) -> str:
        value, self._next_list_id = self._next_list_id, self._next_list_id + 1
        return f"{value:08X}-{int(now.timestamp())}"

    def _new_txn_id(self, now: datetime) -> str:
        value, self._next_txn_id = self._next_txn_id, self._next_txn_id + 1
        return f"{value:X}-{int(now.timestamp())}"

    def _take_txn_number(self) -> int:
        number, self._next_txn_number = self._next_txn_number, self._next_txn_number + 1
        return number

    def _take_ref_number(self, kind: TxnKind) -> str:
        number = self._next_ref_number[kind]
        self._next_ref_number[kind] = number + 1
        return str(number)

    def _store_customer(self, record: CustomerRecord) -> None:
        self._customers[record.full_name.lower()] = record
        self._customer_ids[record.list_id] = record.full_name.lower()

    def _change_balance(self, customer_list_id: str, delta: Decimal) -> None:
        key = self._customer_ids[customer_list_id]
        record = self._customers[key]
        self._customers[key] = replace(record, balance=record.balance + delta)

    def _payment_method_ref(self, name: str) -> Aggregate:
        key = name.lower()
        if key not in self._known_payment_methods:
            self._known_payment_methods[key] = (self._new_list_id(self._clock()), name)
        list_id, full_name = self._known_payment_methods[key]
        return _ref(list_id, full_name)

    def _find_customer(self, ref: etree._Element | None, label: str) -> CustomerRecord:
        list_id, full_name = _ref_parts(ref)
        key = self._customer_ids.get(list_id or "") or (full_name or "").lower()
        record = self._customers.get(key)
        if record is None:
            shown = full_name or list_id or ""
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks Customer "{shown}" in the {label}.'
                + _NOT_IN_LIST,
            )
        return record

    def _find_item(self, ref: etree._Element, label: str) -> ItemRecord:
        list_id, full_name = _ref_parts(ref)
        key = self._item_ids.get(list_id or "") or (full_name or "").lower()
        record = self._items.get(key)
        if record is None:
            shown = full_name or list_id or ""
            raise _Status(
                3140,
                "Error",
                f'There is an invalid reference to QuickBooks Item "{shown}" in the {label}.'
                + _NOT_IN_LIST,
            )
        return record

    def _list_entry(
        self,
        entries: dict[str, tuple[str, str]],
        ref: etree._Element | None,
        list_name: str,
        label: str,
    ) -> Aggregate | None:
        """The (ListID, FullName) a ClassRef / ShipMethodRef / AccountRef names; 3140 when
        the list has no such entry."""
        if ref is None:
            return None
        list_id, full_name = _ref_parts(ref)
        found = entries.get((full_name or "").lower()) or next(
            (entry for entry in entries.values() if list_id and entry[0] == list_id), None
        )
        if found is None:
            raise _Status(
                3140,
                "Error",
                f"There is an invalid reference to QuickBooks {list_name} "
                f'"{full_name or list_id}" in the {label}.' + _NOT_IN_LIST,
            )
        return _ref(*found)

    def _check_sale_refs(self, add: etree._Element, label: str) -> None:
        """A sale's ClassRef (on it and on its lines) and ShipMethodRef must name entries
        of those lists, as in QuickBooks."""
        self._list_entry(self._classes, _child(add, "ClassRef"), "Class", label)
        self._list_entry(self._ship_methods, _child(add, "ShipMethodRef"), "ShipMethod", label)
        for line in _children(add):
            if line.tag.endswith("LineAdd"):
                self._list_entry(self._classes, _child(line, "ClassRef"), "Class", label)

    def _check_payment_method(self, ref: etree._Element | None, label: str) -> Aggregate | None:
        if ref is None:
            return None
        list_id, full_name = _ref_parts(ref)
        name = full_name or ""
        if list_id and not full_name:
            name = next(
                (known[1] for known in self._known_payment_methods.values() if known[0] == list_id),
                "",
            )
        allowed = self._payment_methods
        if not name or (allowed is not None and name.lower() not in allowed):
            raise _Status(
                3140,
                "Error",
                "There is an invalid reference to QuickBooks PaymentMethod "
                f'"{full_name or list_id}" in the {label}.' + _NOT_IN_LIST,
            )
        return self._payment_method_ref(allowed[name.lower()] if allowed is not None else name)
