"""orders: the lease index also orders by id

A run reads its orders a page at a time (lease_run_id = ? AND id > ? ORDER BY id LIMIT n).
With (lease_run_id, id) that is one index range scan whatever the planner's statistics say;
with lease_run_id alone PostgreSQL could pick a scan of the primary key over the whole queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_lease")
        batch_op.create_index("ix_orders_lease", ["lease_run_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_lease")
        batch_op.create_index("ix_orders_lease", ["lease_run_id"], unique=False)
