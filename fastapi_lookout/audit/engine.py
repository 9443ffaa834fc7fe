"""The async engine the audit writer and CLI use: bounded waits, so a hanging database fails statements."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    # A hanging database must fail statements (and so be retried or reported), not block for ever.
    return create_async_engine(
        url, pool_size=10, max_overflow=5, pool_pre_ping=True, connect_args={"command_timeout": 15, "timeout": 10}
    )
