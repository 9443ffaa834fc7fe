"""A random ``chain_id`` per audit chain, so a spool replays only into the chain it was written for.

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2025-03-01

The id is drawn here, once per database: a database dropped and created
again under the same name, or a SQLite file deleted and re-created, gets
another one, while a dump restored elsewhere keeps it (see
``fastapi_lookout/audit/target.py``). SQLite cannot add a NOT NULL column
without a constant default, so there the one-row table is rebuilt, its CHECK
constraint included.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "audit_0003"
down_revision = "audit_0002"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_COMMENT = "random id of this chain, drawn by the migration: spools replay only into the chain they name"


def upgrade() -> None:
    chain_id = uuid.uuid4().hex
    if op.get_bind().dialect.name != "sqlite":
        op.add_column("audit_chain_head", sa.Column("chain_id", sa.String(32), nullable=True, comment=_COMMENT))
        op.execute(sa.text("UPDATE audit_chain_head SET chain_id = :chain_id").bindparams(chain_id=chain_id))
        op.alter_column("audit_chain_head", "chain_id", nullable=False, existing_type=sa.String(32),
                        existing_comment=_COMMENT)
        return
    op.create_table(
        "audit_chain_head_0003",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", _BIGINT, nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("chain_id", sa.String(32), nullable=False, comment=_COMMENT),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_one_row"),
    )
    op.execute(sa.text("INSERT INTO audit_chain_head_0003 (id, seq, row_hash, chain_id) "
                       "SELECT id, seq, row_hash, :chain_id FROM audit_chain_head").bindparams(chain_id=chain_id))
    op.drop_table("audit_chain_head")
    op.rename_table("audit_chain_head_0003", "audit_chain_head")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE audit_chain_head DROP COLUMN chain_id")  # SQLite >= 3.35, CHECK kept
    else:
        op.drop_column("audit_chain_head", "chain_id")
