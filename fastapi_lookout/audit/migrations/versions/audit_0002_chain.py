"""Tamper-evident audit trail: hash chain columns, chain head, retention checkpoints; append-only on PostgreSQL.

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2025-02-01

Rows written before this revision are chained here, in ``id`` order, with the
key in ``AUDIT_HMAC_KEY`` at migration time (the service runs migrations at
start with its own environment). The canonical encoding is imported from
``fastapi_lookout/audit/chain.py``: it is versioned (``ua1``), and a new
encoding would be a new version there, never an edit of this one.

PostgreSQL only (SQLite has no roles; it gets the same chain and tables):

- a statement trigger, ``ENABLE ALWAYS`` (so ``session_replication_role =
  replica`` does not switch it off), refuses UPDATE, DELETE and TRUNCATE of
  ``user_actions`` and ``audit_checkpoints`` for every role, superusers and
  the owner included, unless ``current_user`` is ``audit_retention``;
- ``audit_retention`` (NOLOGIN) may SELECT and DELETE ``user_actions`` and
  SELECT/INSERT ``audit_checkpoints``; the migrating role is made a member so
  the pruning job can ``SET ROLE`` to it;
- ``grafana_reader`` may SELECT ``user_actions``, nothing else.

Roles are cluster-wide: each is created only when absent, and only if the
migrating role may create roles (superuser or CREATEROLE). Otherwise a
WARNING names what is missing (the compose init, run as superuser, is where
they belong then) and the migration carries on. Downgrade leaves the roles.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from fastapi_lookout.audit.chain import FIELDS, GENESIS, Hasher

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None

RETENTION_ROLE = "audit_retention"
READER_ROLE = "grafana_reader"
BACKFILL_PAGE = 5000

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_APPEND_ONLY_TABLES = ("user_actions", "audit_checkpoints")

_TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF current_user = '{RETENTION_ROLE}' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION '% on % refused: the audit trail is append-only (only role {RETENTION_ROLE} may prune it)',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$fn$
"""

# One DO block, so a role that may not create roles still migrates (with warnings).
_ROLES = f"""
DO $roles$
DECLARE
  may_create boolean;
BEGIN
  SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RETENTION_ROLE}') THEN
    IF may_create THEN
      BEGIN
        CREATE ROLE {RETENTION_ROLE} NOLOGIN;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration won
      END;
    ELSE
      RAISE WARNING 'role {RETENTION_ROLE} does not exist and % may not create it: retention pruning '
        'cannot run until a superuser runs CREATE ROLE {RETENTION_ROLE} NOLOGIN; GRANT {RETENTION_ROLE} TO %',
        current_user, current_user;
    END IF;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
    IF may_create THEN
      BEGIN
        -- LOGIN without a password: password authentication refuses it until one is set.
        CREATE ROLE {READER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
      END;
    ELSE
      RAISE WARNING 'role {READER_ROLE} does not exist and % may not create it', current_user;
    END IF;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{RETENTION_ROLE}') THEN
    GRANT SELECT, DELETE ON user_actions TO {RETENTION_ROLE};
    GRANT SELECT, INSERT ON audit_checkpoints TO {RETENTION_ROLE};
    GRANT USAGE ON SEQUENCE audit_checkpoints_id_seq TO {RETENTION_ROLE};
    IF NOT pg_has_role(current_user, '{RETENTION_ROLE}', 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT {RETENTION_ROLE} TO %I', current_user);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING '% is not a member of {RETENTION_ROLE} and may not grant it: retention pruning '
          'cannot SET ROLE until a superuser runs GRANT {RETENTION_ROLE} TO %', current_user, current_user;
      END;
    END IF;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
    GRANT SELECT ON user_actions TO {READER_ROLE};
  END IF;
END
$roles$
"""


def _chain_existing_rows(bind: sa.Connection) -> tuple[int, str]:
    """Chain every row already present, in id order; returns the new head."""
    table = sa.table(
        "user_actions",
        sa.column("id", _BIGINT),
        sa.column("timestamp", sa.DateTime(timezone=True)),
        *(sa.column(name) for name in FIELDS if name not in ("timestamp", "request_data")),
        sa.column("request_data", _JSON),
        sa.column("seq", _BIGINT),
        sa.column("prev_hash", sa.String(64)),
        sa.column("row_hash", sa.String(64)),
    )
    hasher = Hasher(os.environ.get("AUDIT_HMAC_KEY") or None)
    update = (
        table.update()
        .where(table.c.id == sa.bindparam("b_id"))
        .values(seq=sa.bindparam("b_seq"), prev_hash=sa.bindparam("b_prev"), row_hash=sa.bindparam("b_hash"))
    )
    seq, last_hash, after = 0, GENESIS, None
    columns = [table.c.id, *(table.c[name] for name in FIELDS)]
    while True:
        query = sa.select(*columns).order_by(table.c.id).limit(BACKFILL_PAGE)
        if after is not None:
            query = query.where(table.c.id > after)
        rows = [dict(r._mapping) for r in bind.execute(query)]
        if not rows:
            return seq, last_hash
        params = []
        for row in rows:
            seq += 1
            row_hash = hasher.row_hash(row, seq, last_hash)
            params.append({"b_id": row["id"], "b_seq": seq, "b_prev": last_hash, "b_hash": row_hash})
            last_hash = row_hash
        bind.execute(update, params)
        after = rows[-1]["id"]


def upgrade() -> None:
    op.add_column("user_actions", sa.Column(
        "seq", _BIGINT, nullable=True, comment="position in the audit hash chain, gap-free from 1"))
    op.add_column("user_actions", sa.Column(
        "prev_hash", sa.String(64), nullable=True, comment="row_hash of seq - 1 (zeros for seq 1)"))
    op.add_column("user_actions", sa.Column(
        "row_hash", sa.String(64), nullable=True, comment="SHA-256 or HMAC-SHA-256, see app/audit_chain.py"))
    op.create_index("ix_user_actions_seq", "user_actions", ["seq"], unique=True)
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", _BIGINT, nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_one_row"),
        comment="the last seq and row_hash written; writers lock this row to extend the chain",
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("seq", _BIGINT, nullable=False, comment="last pruned seq"),
        sa.Column("row_hash", sa.String(64), nullable=False, comment="row_hash of that seq"),
        sa.Column("pruned_count", _BIGINT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_signature", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_seq", "audit_checkpoints", ["seq"], unique=True)

    bind = op.get_bind()
    seq, row_hash = _chain_existing_rows(bind)
    op.bulk_insert(head, [{"id": 1, "seq": seq, "row_hash": row_hash}])

    if bind.dialect.name != "postgresql":
        return
    op.execute(_TRIGGER_FUNCTION)
    for table in _APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_append_only")
    op.execute(_ROLES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
        op.execute(
            f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{RETENTION_ROLE}') THEN "
            f"REVOKE ALL ON user_actions FROM {RETENTION_ROLE}; END IF; END $$"
        )
    op.drop_index("ix_audit_checkpoints_seq", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chain_head")
    op.drop_index("ix_user_actions_seq", table_name="user_actions")
    for column in ("row_hash", "prev_hash", "seq"):
        if op.get_bind().dialect.name == "sqlite":
            # SQLite >= 3.35 drops a column in place; Alembic's batch copy would lose the CHECK constraint.
            op.execute(f"ALTER TABLE user_actions DROP COLUMN {column}")
        else:
            op.drop_column("user_actions", column)
