"""The stand-in QuickBooks company used by `demo`, `simulate` and `bench`: a small shop's items."""

from __future__ import annotations

from decimal import Decimal

from qbwc_bridge.simulator.quickbooks import FakeQuickBooks, ItemStock, LatencyModel

PRODUCTS = {
    "WIDGET-RED": 140, "WIDGET-BLUE": 75, "GADGET-PRO": 12, "GIZMO-XL": 30,
    "TSHIRT-M": 64, "TSHIRT-L": 58, "MUG-CLASSIC": 210, "BOOK-QB101": 17,
    "Apparel:HOODIE-GREY": 22, "Apparel:HOODIE-NAVY": 0,
}  # fmt: skip
ASSEMBLIES = {"GIFT-BOX": 9}
CHARGES = {
    "Shipping": "ItemOtherCharge",
    "Sales Tax": "ItemOtherCharge",
    "Discount": "ItemDiscount",
}


def demo_quickbooks(
    *, missing: tuple[str, ...] = (), latency: LatencyModel | None = None, **options: object
) -> FakeQuickBooks:
    """A stand-in QuickBooks holding the demo shop's items, less the ``missing`` SKUs."""
    fake = FakeQuickBooks(latency=latency, **options)  # type: ignore[arg-type]
    for name, on_hand in PRODUCTS.items():
        if name not in missing:
            fake.set_item(
                ItemStock(
                    full_name=name,
                    quantity_on_hand=Decimal(on_hand),
                    quantity_on_order=Decimal(on_hand // 4),
                )
            )
    for name, on_hand in ASSEMBLIES.items():
        fake.set_item(
            ItemStock(
                full_name=name, quantity_on_hand=Decimal(on_hand), kind="ItemInventoryAssembly"
            )
        )
    for name, kind in CHARGES.items():
        fake.set_item(ItemStock(full_name=name, kind=kind))  # type: ignore[arg-type]
    return fake
