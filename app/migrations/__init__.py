"""The reference service's database: the library's audit history, then the service's own.

The audit trail's tables come from ``fastapi_lookout.audit.migrations`` (its own
version table); this package's Alembic history holds only what the service
owns (``authors``), in the usual ``alembic_version`` table. ``upgrade_async``
is what the lifespan awaits; ``upgrade`` is the same for scripts and tests.
Both run the shared runner (``fastapi_lookout.audit.migrations.runner``):
async URLs, locks against concurrent upgrades, a no-op at head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi_lookout.audit import migrations as audit_migrations
from fastapi_lookout.audit.migrations.runner import Migrations, async_url

__all__ = ["SERVICE", "async_url", "upgrade", "upgrade_async"]

SERVICE: Final = Migrations(Path(__file__).resolve().parent, "alembic_version")


async def upgrade_async(database_url: str) -> None:
    await audit_migrations.upgrade_async(database_url)
    await SERVICE.upgrade_async(database_url)


def upgrade(database_url: str) -> None:
    audit_migrations.upgrade(database_url)
    SERVICE.upgrade(database_url)
