"""Alembic environment: migrations run on the connection ``app.migrations`` hands over.

Called through ``app.migrations.upgrade``/``upgrade_async`` the connection is in
``config.attributes["connection"]``. Run by the ``alembic`` CLI instead (with a
config naming ``script_location`` and ``sqlalchemy.url``), it connects itself
through the async driver, or renders SQL in offline mode (``--sql``).
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.migrations import async_url

# Any constant works; it only has to be the same in every process running migrations.
ADVISORY_LOCK_KEY = 0x617564_6974  # "audit"


def run_on(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Workers starting together queue here; the later ones then find the
            # version table at head and do nothing. Released at commit.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
    elif context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_with_own_engine(context.config.get_main_option("sqlalchemy.url") or ""))


main()
