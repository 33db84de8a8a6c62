"""exported_transactions (QuickBooks' sales transactions read back out for the channels,
with a change cursor), the companies' export marks, the runs' export state, and an index
that finds the orders behind a page of TxnIDs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of companies on SQLite would cascade its deletes.
    op.add_column(
        "companies",
        sa.Column("export_cursor", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("companies", sa.Column("export_due_at", Timestamp, nullable=True))
    op.add_column("companies", sa.Column("exported_from", Timestamp, nullable=True))
    op.add_column(
        "runs",
        sa.Column("export_due", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("runs", sa.Column("export_state", sa.JSON(), nullable=True))
    op.create_index("ix_orders_qb_txn_id", "orders", ["company_id", "qb_txn_id"])
    op.create_table(
        "exported_transactions",
        sa.Column("company_id", Id, nullable=False),
        sa.Column("qb_txn_id", sa.String(40), nullable=False),
        sa.Column("txn_type", sa.String(20), nullable=False),
        sa.Column("qb_time_modified", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_by_bridge", sa.Boolean(), nullable=False),
        sa.Column("queued_order_number", sa.String(100), nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_exported_transactions_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "qb_txn_id", name=op.f("pk_exported_transactions")),
    )
    op.create_index(
        "ix_exported_transactions_cursor", "exported_transactions", ["company_id", "cursor"]
    )


def downgrade() -> None:
    op.drop_index("ix_exported_transactions_cursor", table_name="exported_transactions")
    op.drop_table("exported_transactions")
    op.drop_index("ix_orders_qb_txn_id", table_name="orders")
    for name in ("export_state", "export_due"):
        op.drop_column("runs", name)
    for name in ("exported_from", "export_due_at", "export_cursor"):
        op.drop_column("companies", name)
