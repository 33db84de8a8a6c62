"""Inventory levels read from QuickBooks, as product_updates rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ItemDetails:
    """What QuickBooks says of an item besides its quantities, None where it sent nothing:
    Name, SalesDesc, SalesPrice, AverageCost, PurchaseCost."""

    name: str | None = None
    description: str | None = None
    sales_price: Decimal | None = None
    average_cost: Decimal | None = None
    purchase_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StockLevel:
    """One item as QuickBooks reported it (SKU = the item's FullName)."""

    sku: str
    quantity_on_hand: Decimal | None
    quantity_on_order: Decimal | None
    quantity_on_sales_order: Decimal | None
    qb_list_id: str = ""
    qb_time_modified: str = ""
    details: ItemDetails = ItemDetails()


@dataclass(frozen=True, slots=True)
class ProductUpdate:
    """A product_updates row; ``cursor`` grows with every change, per company."""

    sku: str
    quantity_on_hand: Decimal | None
    quantity_on_order: Decimal | None
    quantity_on_sales_order: Decimal | None
    qb_list_id: str
    qb_time_modified: str
    updated_at: datetime
    cursor: int

    def as_json(self) -> dict[str, object]:
        def number(value: Decimal | None) -> str | None:
            return None if value is None else format(value.normalize(), "f")

        return {
            "sku": self.sku,
            "quantity_on_hand": number(self.quantity_on_hand),
            "quantity_on_order": number(self.quantity_on_order),
            "quantity_on_sales_order": number(self.quantity_on_sales_order),
            "qb_list_id": self.qb_list_id,
            "qb_time_modified": self.qb_time_modified,
            "updated_at": self.updated_at.isoformat(),
            "cursor": self.cursor,
        }
