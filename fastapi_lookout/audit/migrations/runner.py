"""Alembic migrations run programmatically, for the audit trail and for any service's own tables.

``Migrations(script_location, version_table)`` is one history: ``upgrade_async``
is what a service's lifespan awaits, ``upgrade`` the same for scripts and
tests. Both take the service's async URL (``sqlite+aiosqlite://`` or
``postgresql+asyncpg://``; plain ``sqlite://`` and ``postgresql://`` are mapped
to those drivers), so the runtime needs no sync driver. Each history keeps its
own version table, so the audit trail's migrations live beside a service's
own Alembic history in one database without touching it.

Upgrading a database already at the target revision is a no-op, and
concurrent upgrades (several workers starting at once) are serialised: on
PostgreSQL by an advisory lock taken in ``run_env``, on a SQLite file by an
exclusive ``flock`` on ``<file>.migrate-lock`` next to it (SQLite would let
two workers both read "no tables yet" and both create them).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["Migrations", "async_url", "run_env"]

# Any constant works; it only has to be the same in every process running migrations.
ADVISORY_LOCK_KEY = 0x617564_6974  # "audit"

# Alembic's ``context``/``op`` are process-global proxies: one migration run per
# process at a time. (Across processes, the advisory lock takes over.)
_RUN_LOCK = threading.Lock()

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}

Adopt = Callable[[sa.Connection], str | None]
"""Given a database without this history's version table, the revision its tables already match (or None)."""


def async_url(database_url: str) -> sa.URL:
    """The URL with an async driver, so one code path serves every caller."""
    url = sa.make_url(database_url)
    return url.set(drivername=_ASYNC_DRIVERS.get(url.drivername, url.drivername))


@contextlib.asynccontextmanager
async def _sqlite_file_lock(url: sa.URL) -> AsyncIterator[None]:
    """Other processes migrating the same SQLite file wait here (polled: the loop stays free)."""
    database = url.database or ""
    if not url.drivername.startswith("sqlite") or database in ("", ":memory:") or database.startswith("file:"):
        yield
        return
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True, slots=True)
class Migrations:
    """One Alembic history: its scripts and the table that records where a database stands in it."""

    script_location: Path
    version_table: str
    adopt: Adopt | None = None

    def config(self, connection: sa.Connection | None = None) -> Config:
        config = Config()
        # ConfigParser interpolates '%': escape it in the path.
        config.set_main_option("script_location", str(self.script_location).replace("%", "%%"))
        config.attributes["migrations"] = self
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    def head(self) -> str:
        head = self.script().get_current_head()
        assert head is not None, f"{self.script_location} has no revisions"
        return head

    async def upgrade_async(self, database_url: str, revision: str = "head") -> None:
        """Bring the database to ``revision``; awaitable from a service's lifespan."""
        # Polled, not blocking: a second upgrade on the same loop must wait without
        # freezing the loop the first one runs on, and cancellation must not leak the lock.
        while not _RUN_LOCK.acquire(blocking=False):
            await asyncio.sleep(0.05)
        url = async_url(database_url)
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with _sqlite_file_lock(url), engine.connect() as conn:
                await conn.run_sync(lambda sync_conn: command.upgrade(self.config(sync_conn), revision))
        finally:
            _RUN_LOCK.release()
            await engine.dispose()

    def upgrade(self, database_url: str, revision: str = "head") -> None:
        """Synchronous ``upgrade_async``; from inside a running event loop it runs on a private one."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.upgrade_async(database_url, revision))
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrations") as pool:
            pool.submit(lambda: asyncio.run(self.upgrade_async(database_url, revision))).result()

    async def current_async(self, database_url: str) -> str | None:
        """The revision the database is at in this history (None: never migrated)."""
        engine = create_async_engine(async_url(database_url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(self._current)
        finally:
            await engine.dispose()

    def _current(self, conn: sa.Connection) -> str | None:
        from alembic.migration import MigrationContext

        ctx = MigrationContext.configure(conn, opts={"version_table": self.version_table})
        return ctx.get_current_revision()


def _run_on(connection: sa.Connection, migrations: Migrations) -> None:
    context.configure(connection=connection, target_metadata=None, version_table=migrations.version_table)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Workers starting together queue here; the later ones then find the
            # version table at head and do nothing. Released at commit.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        if migrations.adopt is not None and not sa.inspect(connection).has_table(migrations.version_table):
            adopted = migrations.adopt(connection)
            if adopted is not None:
                ctx = context.get_context()
                ctx.stamp(migrations.script(), adopted)
                if not ctx.impl.transactional_ddl and connection.in_transaction():
                    connection.commit()  # SQLite: Alembic runs each step in its own transaction; so does this one
        context.run_migrations()


async def _run_with_own_engine(url: str, migrations: Migrations) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(lambda sync_conn: _run_on(sync_conn, migrations))
    finally:
        await engine.dispose()


def run_env(default: Migrations) -> None:
    """The body of a history's ``env.py``.

    Called through ``Migrations.upgrade``/``upgrade_async``, the connection is in
    ``config.attributes["connection"]``. Run by the ``alembic`` CLI instead (with a
    config naming ``script_location`` and ``sqlalchemy.url``), it connects itself
    through the async driver, or renders SQL in offline mode (``--sql``).
    """
    config = context.config
    migrations: Migrations = config.attributes.get("migrations", default)
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection, migrations)
    elif context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                          version_table=migrations.version_table)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_with_own_engine(config.get_main_option("sqlalchemy.url") or "", migrations))
