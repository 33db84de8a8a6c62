"""ItemQuery (every item type), ItemNonInventoryAdd, the Class / ShipMethod / Account lists
sales and items refer to, and TxnDel of sales and payments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from lxml import etree

from qbwc_bridge.simulator.quickbooks.edits import DeletedRecord
from qbwc_bridge.simulator.quickbooks.elements import (
    _NOT_IN_LIST,
    _Answer,
    _bool,
    _check_lengths,
    _child,
    _decimal,
    _edit_sequence,
    _ordered,
    _price,
    _ref,
    _required_child,
    _stamp,
    _Status,
    _tags,
    _text,
    _texts,
    _to_cp1252,
    _Value,
)
from qbwc_bridge.simulator.quickbooks.inventory import ItemRequests
from qbwc_bridge.simulator.quickbooks.queries import _list_filters
from qbwc_bridge.simulator.quickbooks.records import (
    ItemRecord,
    ItemStock,
    TransactionRecord,
    TxnKind,
)

# The accounts a new company file has that an item may sell to (more: add_account).
DEFAULT_ACCOUNTS = ("Sales", "Merchandise Sales", "Sales Income", "Services", "Other Income")

_RET_ORDER = {
    "ItemService": _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName BarCodeValue IsActive "
        "ClassRef ParentRef Sublevel UnitOfMeasureSetRef IsTaxIncluded SalesTaxCodeRef "
        "SalesOrPurchase SalesAndPurchase ExternalGUID DataExtRet"
    ),
    "ItemNonInventory": _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName BarCodeValue IsActive "
        "ClassRef ParentRef Sublevel ManufacturerPartNumber UnitOfMeasureSetRef IsTaxIncluded "
        "SalesTaxCodeRef SalesOrPurchase SalesAndPurchase ExternalGUID DataExtRet"
    ),
    "ItemOtherCharge": _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName BarCodeValue IsActive "
        "ClassRef ParentRef Sublevel IsTaxIncluded SalesTaxCodeRef SalesOrPurchase "
        "SalesAndPurchase SpecialItemType ExternalGUID DataExtRet"
    ),
    "ItemDiscount": _tags(
        "ListID TimeCreated TimeModified EditSequence Name FullName BarCodeValue IsActive "
        "ClassRef ParentRef Sublevel ItemDesc SalesTaxCodeRef DiscountRate DiscountRatePercent "
        "AccountRef ExternalGUID DataExtRet"
    ),
    "ItemSalesTax": _tags(
        "ListID TimeCreated TimeModified EditSequence Name BarCodeValue IsActive ClassRef "
        "ItemDesc TaxRate TaxVendorRef SalesTaxReturnLineRef ExternalGUID DataExtRet"
    ),
}
_SALES_OR_PURCHASE = _tags("Desc Price PricePercent AccountRef")
_ITEM_LIMITS = {"Name": 31, "Desc": 4095, "ManufacturerPartNumber": 31}
_TAX_NON_CODE = (("FullName", "Non"),)
_DEL_TYPES = ("Invoice", "SalesReceipt", "SalesOrder", "CreditMemo", "ReceivePayment")


def default_accounts() -> dict[str, tuple[str, str]]:
    """The income accounts of a new company file, with ListIDs of their own."""
    return {
        name.lower(): (f"800000{0x30 + index:02X}-1400000000", name)
        for index, name in enumerate(DEFAULT_ACCOUNTS)
    }


class ListRequests(ItemRequests):
    """How QuickBooks answers item queries of any type, item adds and transaction deletes,
    and the lists sales refer to."""

    _deleted_txns: list[DeletedRecord]
    set_item: Callable[[ItemStock], ItemRecord]

    # ----------------------------------------------------------------- seeding the lists

    def _named_entry(self, entries: dict[str, tuple[str, str]], name: str) -> tuple[str, str]:
        key = name.lower()
        if key not in entries:
            entries[key] = (self._new_list_id(self._clock()), _to_cp1252(name))
        return entries[key]

    def add_class(self, name: str) -> tuple[str, str]:
        """A class (Lists > Class List); returns (ListID, FullName)."""
        return self._named_entry(self._classes, name)

    def add_ship_method(self, name: str) -> tuple[str, str]:
        """A ship method (Lists > Customer & Vendor Profile Lists > Ship Via)."""
        return self._named_entry(self._ship_methods, name)

    def add_account(self, name: str) -> tuple[str, str]:
        """An account an item may sell to (Lists > Chart of Accounts)."""
        return self._named_entry(self._accounts, name)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for _, name in self._classes.values())

    @property
    def ship_methods(self) -> tuple[str, ...]:
        return tuple(name for _, name in self._ship_methods.values())

    # ----------------------------------------------------------------- ItemQuery

    def _any_item_query(self, request: etree._Element) -> _Answer:
        list_ids, names = _texts(request, "ListID"), _texts(request, "FullName")
        if list_ids or names:
            missing_id = next((lid for lid in list_ids if lid not in self._item_ids), None)
            if missing_id is not None:
                raise _Status(
                    3120,
                    "Error",
                    f'Object "{missing_id}" specified in the request cannot be found.'
                    + _NOT_IN_LIST,
                )
            keys = [self._item_ids[lid] for lid in list_ids]
            keys += [name.lower() for name in names if name.lower() in self._items]
            rets = [self._any_item_ret(self._items[key]) for key in keys]
            missing = next((name for name in names if name.lower() not in self._items), None)
            if missing is not None:
                return _Answer(
                    rets,
                    500,
                    "Warn",
                    "The query request has not been fully completed. There was a required "
                    f'element ("{missing}") that could not be found in QuickBooks.',
                )
            return _Answer(rets)
        keep = _list_filters(request, self._clock())

        def matching() -> list[str]:
            return [
                key
                for key in self._item_order
                if keep(
                    self._items[key].full_name,
                    self._items[key].stock.is_active,
                    self._items[key].time_modified,
                )
            ]

        def render(key: str) -> etree._Element | None:
            record = self._items.get(key)
            return self._any_item_ret(record) if record else None

        return self._run_query(request, matching, render)

    def _any_item_ret(self, record: ItemRecord) -> etree._Element:
        kind = record.stock.kind
        if kind in ("ItemInventory", "ItemInventoryAssembly"):
            return self._item_ret(record)
        stock = record.stock
        pairs: list[tuple[str, _Value]] = [
            ("ListID", record.list_id),
            ("TimeCreated", _stamp(record.time_created)),
            ("TimeModified", _stamp(record.time_modified)),
            ("EditSequence", record.edit_sequence),
            ("Name", _to_cp1252(record.name)),
            ("IsActive", _bool(stock.is_active)),
        ]
        if kind != "ItemSalesTax":
            pairs += [
                ("FullName", _to_cp1252(record.full_name)),
                ("Sublevel", str(record.sublevel)),
            ]
        if record.sublevel and kind != "ItemSalesTax":
            parent = self._items.get(record.full_name.rsplit(":", 1)[0].lower())
            if parent is not None:
                pairs.append(("ParentRef", _ref(parent.list_id, parent.full_name)))
        account = self._accounts.get((stock.account or "Sales").lower()) or (
            "8000001C-1400000000",
            stock.account or "Sales",
        )
        if kind in ("ItemService", "ItemNonInventory", "ItemOtherCharge"):
            pairs.append(("SalesTaxCodeRef", _TAX_NON_CODE))
            sales: list[tuple[str, _Value]] = [
                ("Price", _price(stock.sales_price)),
                ("AccountRef", _ref(*account)),
            ]
            if stock.sales_desc is not None:
                sales.append(("Desc", _to_cp1252(stock.sales_desc)))
            pairs.append(
                ("SalesOrPurchase", [_ordered("SalesOrPurchase", _SALES_OR_PURCHASE, sales)])
            )
        elif kind == "ItemDiscount":
            pairs += [("DiscountRate", _price(stock.sales_price)), ("AccountRef", _ref(*account))]
        elif kind == "ItemSalesTax":
            pairs.append(("TaxRate", "0.00"))
        return _ordered(f"{kind}Ret", _RET_ORDER[kind], pairs)

    # ----------------------------------------------------------------- ItemNonInventoryAdd

    def _item_non_inventory_add(self, request: etree._Element) -> _Answer:
        add = _required_child(request, "ItemNonInventoryAdd")
        _check_lengths(add, _ITEM_LIMITS)
        name = _text(add, "Name") or ""
        if not name:
            raise _Status(3000, "Error", 'The request has no "Name" element.')
        parent_ref = _child(add, "ParentRef")
        parent_name = ""
        if parent_ref is not None:
            parent_name = _text(parent_ref, "FullName") or ""
            if parent_name.lower() not in self._items:
                raise _Status(
                    3140,
                    "Error",
                    f'There is an invalid reference to QuickBooks Item "{parent_name}" in the '
                    "ItemNonInventory." + _NOT_IN_LIST,
                )
        full_name = f"{parent_name}:{name}" if parent_name else name
        if full_name.lower() in self._items:
            raise _Status(
                3100, "Error", f'The name "{name}" of the list element is already in use.'
            )
        sales = _child(add, "SalesOrPurchase")
        if sales is None:
            raise _Status(
                3000, "Error", 'The request has no "SalesOrPurchase" or "SalesAndPurchase".'
            )
        account = self._list_entry(
            self._accounts, _child(sales, "AccountRef"), "Account", "ItemNonInventory"
        )
        if account is None:
            raise _Status(3000, "Error", "An item that is sold needs an income account.")
        price = _decimal(_text(sales, "Price")) or Decimal(0)
        stock = ItemStock(
            full_name=full_name,
            kind="ItemNonInventory",
            sales_price=price,
            sales_desc=_text(sales, "Desc"),
            is_active=(_text(add, "IsActive") or "true").lower() in ("true", "1"),
            account=dict(account)["FullName"],
        )
        record = self.set_item(stock)
        return _Answer([self._any_item_ret(record)])

    # ----------------------------------------------------------------- TxnDel

    def _txn_del(self, request: etree._Element) -> _Answer:
        kind = _text(request, "TxnDelType") or ""
        txn_id = _text(request, "TxnID") or ""
        if kind not in _DEL_TYPES:
            raise _Status(1030, "Error", "This request is not supported by this implementation.")
        now = self._clock()
        if kind == "ReceivePayment":
            ref_number = self._delete_payment(txn_id)
        else:
            ref_number = self._delete_sale(kind, txn_id)
        answer: list[etree._Element] = []
        for tag, text in (
            ("TxnDelType", kind),
            ("TxnID", txn_id),
            ("TimeDeleted", _stamp(now)),
            ("RefNumber", ref_number),
        ):
            if text is not None:
                element = etree.Element(tag)
                element.text = text
                answer.append(element)
        return _Answer(answer)

    def _not_found(self, txn_id: str) -> _Status:
        return _Status(
            3120,
            "Error",
            f'Object "{txn_id}" specified in the request cannot be found.' + _NOT_IN_LIST,
        )

    def _delete_payment(self, txn_id: str) -> str | None:
        payment = self._payments.get(txn_id)
        if payment is None:
            raise self._not_found(txn_id)
        for part in payment.applied:
            invoice = self._txns.get(part.invoice_txn_id)
            if invoice is not None:
                kept = tuple(p for p in invoice.payments if p.payment_txn_id != txn_id)
                self._txns[invoice.txn_id] = replace(invoice, payments=kept)
        del self._payments[txn_id]
        self._change_balance(payment.customer_list_id, payment.total)
        return payment.ref_number

    def _delete_sale(self, kind: str, txn_id: str) -> str | None:
        record = self._txns.get(txn_id)
        if record is None or record.kind != kind:
            raise self._not_found(txn_id)
        if record.payments:
            raise _Status(
                3180,
                "Error",
                f"There was an error when deleting a {kind}.  QuickBooks error message: "
                "This transaction has payments applied to it.",
            )
        self._restore_stock(record.kind, record)
        del self._txns[txn_id]
        if record.kind == "Invoice":
            self._change_balance(record.customer_list_id, -record.total)
        elif record.kind == "CreditMemo":
            self._change_balance(record.customer_list_id, record.total)
        self._deleted_txns.append(
            DeletedRecord(
                record.kind, txn_id, record.ref_number, record.time_created, self._clock()
            )
        )
        return record.ref_number

    def _restore_stock(self, kind: TxnKind, record: TransactionRecord) -> None:
        """What the sale took from (or put back on) the shelves goes back."""
        for line in record.lines:
            item = self._items.get((line.item or "").lower())
            if item is None or item.stock.kind not in ("ItemInventory", "ItemInventoryAssembly"):
                continue
            quantity = line.quantity if line.quantity is not None else Decimal(1)
            stock = item.stock
            if kind in ("Invoice", "SalesReceipt"):
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand + quantity)
            elif kind == "CreditMemo":
                stock = replace(stock, quantity_on_hand=stock.quantity_on_hand - quantity)
            else:
                stock = replace(
                    stock, quantity_on_sales_order=stock.quantity_on_sales_order - quantity
                )
            self._items[stock.full_name.lower()] = replace(item, stock=stock)

    # ----------------------------------------------------------------- a bookkeeper's edits

    def modify_payment(self, txn_id: str, *, memo: str | None = None) -> None:
        """Change a payment and save it: TimeModified and EditSequence move on."""
        payment = self._payments[txn_id]
        now = self._clock()
        self._payments[txn_id] = replace(
            payment,
            memo=_to_cp1252(memo) if memo is not None else payment.memo,
            time_modified=now,
            edit_sequence=_edit_sequence(now),
        )
