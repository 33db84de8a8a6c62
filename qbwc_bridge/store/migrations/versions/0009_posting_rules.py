"""posting rules: mappings, the items a check found missing, undo marks and the state
the bridge's adds left, daily summaries and the orders' days

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(14, 2)

_ORDER_COLUMNS = (
    "summary_memo",
    "summary_id",
    "order_date",
    "qb_time_modified",
    "qb_edit_sequence",
    "unpost",
)


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of orders on SQLite would cascade its deletes.
    op.add_column(
        "orders", sa.Column("unpost", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("orders", sa.Column("qb_edit_sequence", sa.String(40), nullable=True))
    op.add_column("orders", sa.Column("qb_time_modified", sa.String(40), nullable=True))
    op.add_column("orders", sa.Column("order_date", sa.Date(), nullable=True))
    op.add_column("orders", sa.Column("summary_id", Id, nullable=True))
    op.add_column("orders", sa.Column("summary_memo", sa.Text(), nullable=True))
    op.create_index("ix_orders_summary", "orders", ["summary_id"])
    op.add_column("payments", sa.Column("qb_edit_sequence", sa.String(40), nullable=True))
    op.add_column("payments", sa.Column("qb_time_modified", sa.String(40), nullable=True))
    op.create_table(
        "posting_mappings",
        sa.Column("company_id", Id, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source_key", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_posting_mappings_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "company_id", "kind", "source_key", name=op.f("pk_posting_mappings")
        ),
    )
    op.create_table(
        "missing_items",
        sa.Column("company_id", Id, nullable=False),
        sa.Column("item_key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("noted_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_missing_items_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "item_key", name=op.f("pk_missing_items")),
    )
    op.create_table(
        "summaries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ref_number", sa.String(11), nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("total", Money, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_summaries_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summaries")),
        sa.UniqueConstraint(
            "company_id", "channel", "day", "kind", "seq", name="uq_summaries_company_day"
        ),
    )


def downgrade() -> None:
    op.drop_table("summaries")
    op.drop_table("missing_items")
    op.drop_table("posting_mappings")
    for name in ("qb_time_modified", "qb_edit_sequence"):
        op.drop_column("payments", name)
    op.drop_index("ix_orders_summary", table_name="orders")
    for name in _ORDER_COLUMNS:
        op.drop_column("orders", name)
