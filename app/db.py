"""The reference service's own table (``authors``) and its engine.

The audit trail's tables belong to the library (``fastapi_lookout.audit.schema``);
the service's migrations in ``app/migrations`` create exactly ``authors``, and a
test compares the two so they cannot drift.
"""

from __future__ import annotations

import sqlalchemy as sa

from fastapi_lookout.audit.engine import create_engine

__all__ = ["authors", "create_engine", "metadata"]

metadata = sa.MetaData()

authors = sa.Table(
    "authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("bio", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
