"""channels (stores paired with a company, their sync window and last pull) and tasks
(what the worker does for each channel, leased like a run)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("every_minutes", sa.Integer(), nullable=False),
        sa.Column("order_statuses", sa.JSON(), nullable=False),
        sa.Column("store_names", sa.JSON(), nullable=False),
        sa.Column("window_start", Timestamp, nullable=False),
        sa.Column("window_end", Timestamp, nullable=False),
        sa.Column("last_pull", sa.JSON(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_channels_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_channels_name")),
    )
    op.create_index("ix_channels_company", "channels", ["company_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("channel_id", Id, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("due_at", Timestamp, nullable=False),
        sa.Column("requested_at", Timestamp, nullable=True),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", Timestamp, nullable=True),
        sa.Column("last_started_at", Timestamp, nullable=True),
        sa.Column("last_finished_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_tasks_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "kind", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_due", "tasks", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_channels_company", table_name="channels")
    op.drop_table("channels")
