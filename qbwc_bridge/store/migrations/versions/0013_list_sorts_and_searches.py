"""the Connex-compatible lists' sorts and searches: an index per products/list sort column,
on PostgreSQL trigram indexes (pg_trgm) for searchText on products and orders, and
sku_keys (each SKU key a company's orders named, once) for unknownSkusCount, and
order_tallies (how many orders each company's channels queued) for the list's total

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-18
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# As store/schema.py has them.
PRODUCT_SORT_COLUMNS = (
    "quantity_on_hand",
    "quantity_on_order",
    "quantity_on_sales_order",
    "sales_price",
    "average_cost",
    "purchase_cost",
    "updated_at",
)
TRIGRAM_INDEXES = (
    ("ix_product_updates_sku_trgm", "product_updates", "sku_key"),
    ("ix_orders_search_trgm", "orders", "search_text"),
)


def _trigrams_available(bind: sa.Connection) -> bool:
    """pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a role that may
    create objects in the database may add it. Where it cannot, the searches work without
    the indexes, only slower; docs/operations.md says how to add them later."""
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        return True
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning(
            "pg_trgm could not be added (%s): searchText works without its indexes, "
            "only slower. docs/operations.md says how to add them.",
            str(error.orig).strip().splitlines()[0],
        )
        return False
    return True


Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SKU_KEY_CHARS = 500  # as store/schema.py has it


def upgrade() -> None:
    op.create_table(
        "sku_keys",
        sa.Column("company_id", Id, nullable=False),
        sa.Column("sku_key", sa.String(SKU_KEY_CHARS), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_sku_keys_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "sku_key", name=op.f("pk_sku_keys")),
    )
    op.execute(
        "INSERT INTO sku_keys (company_id, sku_key) "
        "SELECT DISTINCT company_id, sku_key FROM order_skus"
    )
    op.create_table(
        "order_tallies",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_order_tallies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tallies")),
    )
    op.create_index("ix_order_tallies_company", "order_tallies", ["company_id"])
    # Daily summaries are the bridge's own orders, not counted.
    op.execute(
        "INSERT INTO order_tallies (company_id, orders) "
        "SELECT company_id, count(*) FROM orders WHERE summary_memo IS NULL GROUP BY company_id"
    )
    for name in PRODUCT_SORT_COLUMNS:
        op.create_index(f"ix_product_updates_by_{name}", "product_updates", ["company_id", name])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _trigrams_available(bind):
        for index, table, column in TRIGRAM_INDEXES:
            op.create_index(
                index,
                table,
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for index, table, _column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {index}")
    for name in PRODUCT_SORT_COLUMNS:
        op.drop_index(f"ix_product_updates_by_{name}", table_name="product_updates")
    op.drop_index("ix_order_tallies_company", table_name="order_tallies")
    op.drop_table("order_tallies")
    op.drop_table("sku_keys")
