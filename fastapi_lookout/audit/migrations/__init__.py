"""The audit trail's own Alembic history: ``user_actions``, its chain head and checkpoints.

Kept in the version table ``fastapi_lookout_audit_version``, so it lives in a
service's database beside that service's own Alembic history (its
``alembic_version``) without either touching the other. From a shell:
``fastapi-lookout-audit migrate --database-url URL``; from code, ``upgrade``
or ``upgrade_async`` (what a service's lifespan awaits).

Databases migrated before the audit trail had a history of its own (one
``alembic_version`` for the service and the audit tables together) are
adopted: their audit tables are recognised and stamped at the matching
revision, then upgraded from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa

from fastapi_lookout.audit.migrations.runner import Migrations, async_url

__all__ = ["AUDIT", "VERSION_TABLE", "async_url", "upgrade", "upgrade_async"]

VERSION_TABLE: Final = "fastapi_lookout_audit_version"


def _adopt(conn: sa.Connection) -> str | None:
    tables = set(sa.inspect(conn).get_table_names())
    if "audit_chain_head" in tables:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("audit_chain_head")}
        return "audit_0003" if "chain_id" in columns else "audit_0002"
    if "user_actions" in tables:
        return "audit_0001"
    return None


AUDIT: Final = Migrations(Path(__file__).resolve().parent, VERSION_TABLE, adopt=_adopt)
upgrade = AUDIT.upgrade
upgrade_async = AUDIT.upgrade_async
