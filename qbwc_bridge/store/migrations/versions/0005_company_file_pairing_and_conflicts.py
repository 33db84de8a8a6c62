"""companies: the paired company file and the Web Connector's version; orders: a
person's resolution of a RefNumber conflict; client_versions

A company is paired with one company file at its first run (the FileID data extension the
Web Connector stamps, the company name, the path); a run against another file adds
nothing. An order whose RefNumber QuickBooks already has on someone else's transaction
waits for `qbwc-bridge resolve`, whose answer is kept in orders.resolution. clientVersion
arrives before any login, so its version is kept by address until the login that follows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COMPANY_COLUMNS = (
    ("paired_file_id", sa.String(38)),
    ("paired_company_name", sa.String(200)),
    ("paired_file_path", sa.String(500)),
    ("paired_at", sa.DateTime(timezone=True)),
    ("seen_file_id", sa.String(38)),
    ("seen_company_name", sa.String(200)),
    ("web_connector_version", sa.String(40)),
)


# Plain ADD/DROP COLUMN (SQLite has both since 3.35), not batch mode: rebuilding
# companies on SQLite would cascade-delete its orders through their foreign key.
def upgrade() -> None:
    for name, kind in _COMPANY_COLUMNS:
        op.add_column("companies", sa.Column(name, kind, nullable=True))
    op.add_column("orders", sa.Column("resolution", sa.String(16), nullable=True))
    op.create_table(
        "client_versions",
        sa.Column("address", sa.String(100), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_client_versions")),
    )


def downgrade() -> None:
    op.drop_table("client_versions")
    op.drop_column("orders", "resolution")
    for name, _kind in reversed(_COMPANY_COLUMNS):
        op.drop_column("companies", name)
