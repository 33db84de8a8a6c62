"""the Connex-compatible REST API: api_users (with their download cursors), api_tokens
(hashed bearer tokens), and the channel each order came in through

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of orders on SQLite would cascade its deletes.
    op.add_column("orders", sa.Column("user_connection_id", Id, nullable=True))
    op.create_index("ix_orders_connection", "orders", ["company_id", "user_connection_id"])
    op.create_table(
        "api_users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("download_cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_api_users_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_users")),
        sa.UniqueConstraint("name", name=op.f("uq_api_users_name")),
    )
    op.create_index("ix_api_users_company", "api_users", ["company_id"])
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("api_user_id", Id, nullable=False),
        sa.Column("company_id", Id, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_user_id"],
            ["api_users.id"],
            name=op.f("fk_api_tokens_api_user_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_api_tokens_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_tokens")),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["api_user_id"])
    op.create_index("ix_api_tokens_expires", "api_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_expires", table_name="api_tokens")
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_api_users_company", table_name="api_users")
    op.drop_table("api_users")
    op.drop_index("ix_orders_connection", table_name="orders")
    op.drop_column("orders", "user_connection_id")
