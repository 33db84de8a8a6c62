"""product_updates: the item details the inventory query brings (Name, SalesDesc,
SalesPrice, AverageCost, PurchaseCost), for the Connex-compatible products list; what the
Connex-compatible lists read fast: orders.search_text, the ix_orders_list index, order_skus
and product_updates.sku_key

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-04
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Price = sa.Numeric(18, 5)
COLUMNS = (
    ("name", sa.String(100)),
    ("description", sa.Text()),
    ("sales_price", Price),
    ("average_cost", Price),
    ("purchase_cost", Price),
)
# As store/schema.py has them.
SENT_CUSTOMER_CHARS = 200
SEARCH_TEXT_CHARS = 500
SKU_KEY_CHARS = 500
BATCH = 2_000

orders = sa.table(
    "orders",
    sa.column("id", Id),
    sa.column("company_id", Id),
    sa.column("order_number", sa.String(100)),
    sa.column("customer_name", sa.String(100)),
    sa.column("payload", sa.Text()),
    sa.column("summary_memo", sa.Text()),
    sa.column("search_text", sa.String(SEARCH_TEXT_CHARS)),
)
order_skus = sa.table(
    "order_skus",
    sa.column("order_id", Id),
    sa.column("sku_key", sa.String(SKU_KEY_CHARS)),
    sa.column("company_id", Id),
    sa.column("sku", sa.Text()),
)
product_updates = sa.table(
    "product_updates",
    sa.column("company_id", Id),
    sa.column("sku", sa.String(200)),
    sa.column("sku_key", sa.String(SKU_KEY_CHARS)),
)


def _sku_key(sku: str) -> str:
    """store.inventory.sku_key as this revision writes it."""
    return sku.casefold()[:SKU_KEY_CHARS]


def upgrade() -> None:
    # Plain ADD COLUMN, all nullable: existing rows keep their cursors until the next
    # inventory query fills the details in (a batch rebuild on SQLite is not needed, and one
    # of orders would cascade its deletes).
    for name, kind in COLUMNS:
        op.add_column("product_updates", sa.Column(name, kind, nullable=True))
    op.add_column("product_updates", sa.Column("sku_key", sa.String(SKU_KEY_CHARS), nullable=True))
    op.add_column("orders", sa.Column("search_text", sa.String(SEARCH_TEXT_CHARS), nullable=True))
    op.create_table(
        "order_skus",
        sa.Column("order_id", Id, nullable=False),
        sa.Column("sku_key", sa.String(SKU_KEY_CHARS), nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_skus_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "sku_key", name=op.f("pk_order_skus")),
    )
    _backfill(op.get_bind())
    # The indexes after the rows: built once, not updated row by row.
    op.create_index(
        "ix_orders_list",
        "orders",
        [
            "company_id",
            "order_date",
            "id",
            "summary_memo",
            "user_connection_id",
            "search_text",
        ],
    )
    op.create_index("ix_order_skus_key", "order_skus", ["company_id", "sku_key", "order_id"])
    op.create_index("ix_product_updates_key", "product_updates", ["company_id", "sku_key"])


def _backfill(bind: Any) -> None:
    """The search text and the SKUs of every order a channel sent (daily summaries have
    neither), its payload giving the sent CustomerName and the lines; the key of every
    inventory row."""
    last = 0
    while True:
        rows = bind.execute(
            sa.select(
                orders.c.id,
                orders.c.company_id,
                orders.c.order_number,
                orders.c.customer_name,
                orders.c.payload,
            )
            .where(orders.c.id > last, orders.c.summary_memo.is_(None))
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        texts, skus = [], []
        for row in rows:
            payload = json.loads(row.payload)
            sent = str(payload.get("customer_name") or "")[:SENT_CUSTOMER_CHARS]
            text = f"{row.order_number}\n{row.customer_name}\n{sent}".lower()
            texts.append({"b_id": row.id, "search_text": text[:SEARCH_TEXT_CHARS]})
            keys: dict[str, str] = {}
            for line in payload.get("lines") or ():
                sku = str(line["sku"])
                keys.setdefault(_sku_key(sku), sku)
            skus += [
                {"order_id": row.id, "sku_key": key, "company_id": row.company_id, "sku": sku}
                for key, sku in keys.items()
            ]
        bind.execute(
            orders.update()
            .where(orders.c.id == sa.bindparam("b_id"))
            .values(search_text=sa.bindparam("search_text")),
            texts,
        )
        if skus:
            bind.execute(order_skus.insert(), skus)
    keys = [
        {"b_company_id": row.company_id, "b_sku": row.sku, "sku_key": _sku_key(row.sku)}
        for row in bind.execute(sa.select(product_updates.c.company_id, product_updates.c.sku))
    ]
    for start in range(0, len(keys), BATCH):
        bind.execute(
            product_updates.update()
            .where(
                sa.and_(
                    product_updates.c.company_id == sa.bindparam("b_company_id"),
                    product_updates.c.sku == sa.bindparam("b_sku"),
                )
            )
            .values(sku_key=sa.bindparam("sku_key")),
            keys[start : start + BATCH],
        )


def downgrade() -> None:
    op.drop_index("ix_product_updates_key", table_name="product_updates")
    op.drop_index("ix_order_skus_key", table_name="order_skus")
    op.drop_index("ix_orders_list", table_name="orders")
    op.drop_table("order_skus")
    op.drop_column("orders", "search_text")
    op.drop_column("product_updates", "sku_key")
    for name, _ in reversed(COLUMNS):
        op.drop_column("product_updates", name)
