"""ItemInventoryQuery and ItemInventoryAssemblyQuery: the items and their quantities."""

from __future__ import annotations

from lxml import etree

from qbwc_bridge.simulator.quickbooks.elements import (
    _NOT_IN_LIST,
    _Answer,
    _bool,
    _ordered,
    _price,
    _quantity,
    _ref,
    _stamp,
    _Status,
    _tags,
    _texts,
    _to_cp1252,
    _Value,
)
from qbwc_bridge.simulator.quickbooks.queries import Queries, _list_filters
from qbwc_bridge.simulator.quickbooks.records import Aggregate, ItemKind, ItemRecord

_INVENTORY_ASSET = _ref("8000001A-1400000000", "Inventory Asset")
_COGS = _ref("8000001B-1400000000", "Cost of Goods Sold")
_SALES_INCOME = _ref("8000001C-1400000000", "Sales")
_ITEM_INVENTORY_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
    "SalesDesc SalesPrice IncomeAccountRef PurchaseCost COGSAccountRef AssetAccountRef "
    "QuantityOnHand AverageCost QuantityOnOrder QuantityOnSalesOrder"
)
_ITEM_ASSEMBLY_RET = _tags(
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ParentRef Sublevel "
    "SalesDesc SalesPrice IncomeAccountRef PurchaseCost COGSAccountRef AssetAccountRef "
    "QuantityOnHand AverageCost QuantityOnOrder QuantityOnSalesOrder"
)


class ItemRequests(Queries):
    """How QuickBooks answers the item queries."""

    def _item_query(self, request: etree._Element, kind: ItemKind) -> _Answer:
        list_ids, names = _texts(request, "ListID"), _texts(request, "FullName")
        if list_ids or names:
            return self._named_items(kind, list_ids, names)
        keep = _list_filters(request, self._clock())

        def matching() -> list[str]:
            return [
                key
                for key in self._item_order
                if self._items[key].stock.kind == kind
                and keep(
                    self._items[key].full_name,
                    self._items[key].stock.is_active,
                    self._items[key].time_modified,
                )
            ]

        return self._run_query(request, matching, self._item_by_key)

    def _named_items(self, kind: ItemKind, list_ids: list[str], names: list[str]) -> _Answer:
        missing_id = next(
            (lid for lid in list_ids if self._item_kind(self._item_ids.get(lid)) != kind), None
        )
        if missing_id is not None:
            raise _Status(
                3120,
                "Error",
                f'Object "{missing_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
            )
        keys = [self._item_ids[lid] for lid in list_ids]
        keys += [n.lower() for n in names if self._item_kind(n.lower()) == kind]
        rets = [self._item_ret(self._items[key]) for key in keys]
        missing = next((n for n in names if self._item_kind(n.lower()) != kind), None)
        if missing is not None:
            return _Answer(
                rets,
                500,
                "Warn",
                "The query request has not been fully completed. There was a required element "
                f'("{missing}") that could not be found in QuickBooks.',
            )
        return _Answer(rets)

    def _item_kind(self, key: str | None) -> ItemKind | None:
        record = self._items.get(key or "")
        return record.stock.kind if record else None

    def _item_by_key(self, key: str) -> etree._Element | None:
        record = self._items.get(key)
        return self._item_ret(record) if record else None

    def _item_ret(self, record: ItemRecord) -> etree._Element:
        stock = record.stock
        pairs: list[tuple[str, _Value]] = [
            ("ListID", record.list_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("Name", _to_cp1252(record.name)),
            ("FullName", _to_cp1252(record.full_name)),
            ("IsActive", _bool(stock.is_active)),
            ("Sublevel", str(record.sublevel)),
            ("SalesPrice", _price(stock.sales_price)),
            ("IncomeAccountRef", _SALES_INCOME),
            ("PurchaseCost", _price(stock.purchase_cost)),
            ("COGSAccountRef", _COGS),
            ("AssetAccountRef", _INVENTORY_ASSET),
            ("QuantityOnHand", _quantity(stock.quantity_on_hand)),
            ("AverageCost", _price(stock.average_cost)),
            ("QuantityOnOrder", _quantity(stock.quantity_on_order)),
            ("QuantityOnSalesOrder", _quantity(stock.quantity_on_sales_order)),
        ]
        if stock.sales_desc is not None:
            pairs.append(("SalesDesc", _to_cp1252(stock.sales_desc)))
        if record.sublevel:
            parent_name = record.full_name.rsplit(":", 1)[0]
            parent = self._items.get(parent_name.lower())
            parent_ref: Aggregate = (
                _ref(parent.list_id, parent.full_name) if parent else (("FullName", parent_name),)
            )
            pairs.append(("ParentRef", parent_ref))
        if stock.kind == "ItemInventoryAssembly":
            return _ordered("ItemInventoryAssemblyRet", _ITEM_ASSEMBLY_RET, pairs)
        return _ordered("ItemInventoryRet", _ITEM_INVENTORY_RET, pairs)
