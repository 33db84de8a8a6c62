"""payments: settle those of finished orders that are not invoices

Only invoices take ReceivePayments. Before this release a payment on a sales receipt, a
sales order or a credit memo stayed "pending" for good; the engine now settles them when
the order finishes. This gives rows left by earlier releases the same outcome: a sales
receipt's payments take its status and TxnID (the receipt records the money), other
kinds' payments become errors saying to record them by hand. Data only: no schema change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FINISHED = "('synced', 'duplicate')"
_ORDER = "(SELECT {column} FROM orders WHERE orders.id = payments.order_id)"


def upgrade() -> None:
    op.execute(
        f"""
        UPDATE payments
        SET status = {_ORDER.format(column="orders.status")},
            qb_txn_id = {_ORDER.format(column="orders.qb_txn_id")},
            stage = 'done'
        WHERE status = 'pending' AND order_id IN (
            SELECT id FROM orders WHERE txn_kind = 'SalesReceipt' AND status IN {_FINISHED}
        )
        """
    )
    op.execute(
        sa.text(
            f"""
            UPDATE payments
            SET status = 'error', stage = 'done',
                error = 'This order became a ' || {_ORDER.format(column="orders.txn_kind")}
                    || :rest
            WHERE status = 'pending' AND order_id IN (
                SELECT id FROM orders
                WHERE txn_kind IN ('SalesOrder', 'CreditMemo') AND status IN {_FINISHED}
            )
            """
        ).bindparams(
            rest=", and QuickBooks applies payments to invoices only: "
            "record this payment in QuickBooks by hand."
        )
    )


def downgrade() -> None:
    """Back to what earlier releases showed: these payments pending."""
    op.execute(
        """
        UPDATE payments
        SET status = 'pending', stage = 'check', qb_txn_id = NULL, error = NULL
        WHERE order_id IN (SELECT id FROM orders WHERE txn_kind <> 'Invoice')
        """
    )
