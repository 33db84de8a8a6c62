"""the admin console: admin_users (its logins) and admin_sessions (hashed session
tokens, each with its CSRF token), and the indexes of the console's order pages

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_users_name")),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("admin_user_id", Id, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_user_id"],
            ["admin_users.id"],
            name=op.f("fk_admin_sessions_admin_user_id_admin_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index("ix_admin_sessions_user", "admin_sessions", ["admin_user_id"])
    op.create_index("ix_admin_sessions_expires", "admin_sessions", ["expires_at"])
    # The console's pages of one company's orders, newest first, and its search by
    # customer (plain CREATE INDEX: no batch rebuild of orders on SQLite).
    op.create_index("ix_orders_company", "orders", ["company_id", "id"])
    op.create_index("ix_orders_customer", "orders", ["company_id", "customer_name"])


def downgrade() -> None:
    op.drop_index("ix_orders_customer", table_name="orders")
    op.drop_index("ix_orders_company", table_name="orders")
    op.drop_index("ix_admin_sessions_expires", table_name="admin_sessions")
    op.drop_index("ix_admin_sessions_user", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
