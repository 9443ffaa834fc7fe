"""The ``user_actions`` audit table.

Revision ID: audit_0001
Revises:
Create Date: 2025-01-01

Hand-written to match ``fastapi_lookout/audit/schema.py`` exactly
(``tests/test_migrations.py`` compares the two on SQLite and PostgreSQL).
Types are spelled out, not imported, so later edits to the schema module
cannot silently rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "audit_0001"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_USER_ACTIONS_INDEXED = ("timestamp", "user_id", "username", "action_type", "outcome", "request_id")


def upgrade() -> None:
    op.create_table(
        "user_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("user_roles", sa.Text, nullable=True, comment="comma-separated realm roles"),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("request_data", _JSON, nullable=True),
        sa.Column("response_status", sa.Integer, nullable=False),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.CheckConstraint("outcome IN ('success', 'error', 'permission_denied')", name="ck_user_actions_outcome"),
    )
    for column in _USER_ACTIONS_INDEXED:
        op.create_index(f"ix_user_actions_{column}", "user_actions", [column])


def downgrade() -> None:
    for column in _USER_ACTIONS_INDEXED:
        op.drop_index(f"ix_user_actions_{column}", table_name="user_actions")
    op.drop_table("user_actions")
