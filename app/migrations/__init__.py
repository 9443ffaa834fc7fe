"""Alembic migrations, run programmatically: no ``alembic.ini`` at the repository root.

``upgrade_async`` is what the app's lifespan awaits; ``upgrade`` is the same
thing for scripts and tests. Both take the app's own async URL
(``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``) so the runtime needs no
sync driver; plain ``sqlite://`` and ``postgresql://`` URLs are mapped to those
async drivers. Upgrading a database that is already at the target revision is a
no-op, and concurrent upgrades (several workers starting at once) are
serialised: on PostgreSQL by an advisory lock taken in ``env.py``, on a SQLite
file by an exclusive ``flock`` on ``<file>.migrate-lock`` next to it (SQLite
would let two workers both read "no tables yet" and both create them).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["async_url", "upgrade", "upgrade_async"]

SCRIPT_LOCATION = Path(__file__).resolve().parent

# Alembic's ``context``/``op`` are process-global proxies: one migration run per
# process at a time. (Across processes, env.py's advisory lock takes over.)
_RUN_LOCK = threading.Lock()

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def async_url(database_url: str) -> sa.URL:
    """The URL with an async driver, so one code path serves every caller."""
    url = sa.make_url(database_url)
    return url.set(drivername=_ASYNC_DRIVERS.get(url.drivername, url.drivername))


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates '%': escape it in the path.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


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


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; awaitable from the app's lifespan."""
    # Polled, not blocking: a second upgrade on the same loop must wait without
    # freezing the loop the first one runs on, and cancellation must not leak the lock.
    while not _RUN_LOCK.acquire(blocking=False):
        await asyncio.sleep(0.05)
    url = async_url(database_url)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with _sqlite_file_lock(url), engine.connect() as conn:
            await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), revision))
    finally:
        _RUN_LOCK.release()
        await engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Synchronous ``upgrade_async``; from inside a running event loop it runs on a private one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_async(database_url, revision))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrations") as pool:
        pool.submit(lambda: asyncio.run(upgrade_async(database_url, revision))).result()
