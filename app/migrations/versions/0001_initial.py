"""The service's own table: ``authors``.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written to match ``app/db.py`` exactly (``tests/test_migrations.py``
compares the two on SQLite and PostgreSQL). Types are spelled out, not
imported, so later edits to ``app/db.py`` cannot silently rewrite history.
The audit tables this revision once created belong to the library's own
history now (``fastapi_lookout.audit.migrations``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("bio", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("authors")
