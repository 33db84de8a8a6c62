"""orders: the lease index also holds the status

A run asks for the orders it still works on: its waiting count at every
receiveResponseXML, its next page at every sendRequestXML (lease_run_id = ? AND status =
'in_progress', by id). With (lease_run_id, id) both walked every order the run had already
finished, each a look at the table row for its status: up to batch_max rows (250 by
default) per callback. With (lease_run_id, status, id) they read only the orders in
progress, still in id order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_lease")
        batch_op.create_index("ix_orders_lease", ["lease_run_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_lease")
        batch_op.create_index("ix_orders_lease", ["lease_run_id", "id"], unique=False)
