"""outbox_events (order outcomes and stock changes, written with the change itself),
deliveries (a channel's delivery in flight), and channels' push state; every custom store
gets its push task

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of channels on SQLite would cascade to its tasks.
    op.add_column("channels", sa.Column("events", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "channels", sa.Column("push_cursor", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("channels", sa.Column("last_delivery_at", Timestamp, nullable=True))
    op.add_column("channels", sa.Column("push_error", sa.Text(), nullable=True))
    op.create_table(
        "outbox_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("from_cursor", sa.BigInteger(), nullable=True),
        sa.Column("to_cursor", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_outbox_events_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index("ix_outbox_events_company", "outbox_events", ["company_id", "id"])
    op.create_table(
        "deliveries",
        sa.Column("channel_id", Id, nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("to_cursor", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", Timestamp, nullable=True),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_deliveries_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_deliveries")),
    )
    op.execute(
        "INSERT INTO tasks (channel_id, kind, due_at) "
        "SELECT id, 'push', created_at FROM channels WHERE kind = 'custom-store'"
    )


def downgrade() -> None:
    op.execute("DELETE FROM tasks WHERE kind = 'push'")
    op.drop_table("deliveries")
    op.drop_index("ix_outbox_events_company", table_name="outbox_events")
    op.drop_table("outbox_events")
    for name in ("push_error", "last_delivery_at", "push_cursor", "events"):
        op.drop_column("channels", name)
