"""The audit trail's tables: ``user_actions``, its chain head and retention checkpoints.

The library's Alembic migrations (``fastapi_lookout/audit/migrations``) create
exactly these tables; a test compares the two so they cannot drift. The audit
SQL panels are checked against a PostgreSQL built by those migrations.

The hash chain of ``user_actions`` (``seq``, ``prev_hash``, ``row_hash``; see
``chain.py``) is assigned by the audit writer inside each batch's
transaction, under the one-row ``audit_chain_head`` lock; that row also keeps
the chain's random ``chain_id``, which binds spooled rows to it (``target.py``). The chain columns
are nullable on purpose: a row inserted by anything but the writer is stored,
and then reported by ``verify`` as unchained, instead of being refused where
nobody would see it. ``audit_checkpoints`` records what retention pruned,
signed, so the rest of the chain still verifies.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from fastapi_lookout.audit.event import OUTCOMES

__all__ = ["OUTCOMES", "RETENTION_ROLE", "audit_chain_head", "audit_checkpoints", "metadata", "user_actions"]

RETENTION_ROLE = "audit_retention"
"""The only role the append-only trigger lets delete (retention pruning SETs ROLE to it); created by the
migrations or, where they may not create roles, by the PostgreSQL init of the stack."""

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")

user_actions = sa.Table(
    "user_actions",
    metadata,
    sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
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
    sa.Column("request_data", JSONType, nullable=True),
    sa.Column("response_status", sa.Integer, nullable=False),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("seq", _BIGINT, nullable=True, comment="position in the audit hash chain, gap-free from 1"),
    sa.Column("prev_hash", sa.String(64), nullable=True, comment="row_hash of seq - 1 (zeros for seq 1)"),
    sa.Column("row_hash", sa.String(64), nullable=True, comment="SHA-256 or HMAC-SHA-256, see app/audit_chain.py"),
    sa.CheckConstraint("outcome IN ('success', 'error', 'permission_denied')", name="ck_user_actions_outcome"),
    sa.Index("ix_user_actions_timestamp", "timestamp"),
    sa.Index("ix_user_actions_user_id", "user_id"),
    sa.Index("ix_user_actions_username", "username"),
    sa.Index("ix_user_actions_action_type", "action_type"),
    sa.Index("ix_user_actions_outcome", "outcome"),
    sa.Index("ix_user_actions_request_id", "request_id"),
    sa.Index("ix_user_actions_seq", "seq", unique=True),
)

audit_chain_head = sa.Table(
    "audit_chain_head",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", _BIGINT, nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("chain_id", sa.String(32), nullable=False,
              comment="random id of this chain, drawn by the migration: spools replay only into the chain they name"),
    sa.CheckConstraint("id = 1", name="ck_audit_chain_head_one_row"),
    comment="the last seq and row_hash written; writers lock this row to extend the chain",
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
    sa.Column("seq", _BIGINT, nullable=False, comment="last pruned seq"),
    sa.Column("row_hash", sa.String(64), nullable=False, comment="row_hash of that seq"),
    sa.Column("pruned_count", _BIGINT, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("prev_signature", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Index("ix_audit_checkpoints_seq", "seq", unique=True),
)
