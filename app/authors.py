"""Authors data access, shared by the HTTP routes and the WebSocket packages.

Every statement is timed into ``db_query_duration_seconds{operation}`` by the
library's ``time_queries(engine)``, which ``app.main`` applies to the engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import authors


class DuplicateAuthor(Exception):
    pass


def _row(row: sa.Row[Any]) -> dict[str, Any]:
    data = {str(key): value for key, value in row._mapping.items()}  # keys are quoted_name, a str subclass
    created = data.get("created_at")
    if isinstance(created, datetime):
        data["created_at"] = _utc(created).isoformat()
    return data


def _utc(moment: datetime) -> datetime:
    """SQLite hands ``CURRENT_TIMESTAMP`` (UTC) back naive; PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def list_authors(engine: AsyncEngine, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    async with engine.begin() as conn:
        result = await conn.execute(sa.select(authors).order_by(authors.c.id).limit(limit).offset(offset))
        return [_row(r) for r in result]


async def get_author(engine: AsyncEngine, author_id: int) -> dict[str, Any] | None:
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(authors).where(authors.c.id == author_id))).first()
        return _row(row) if row else None


async def create_author(engine: AsyncEngine, name: str, bio: str | None) -> dict[str, Any]:
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.insert(authors).values(name=name, bio=bio).returning(*authors.c))
            return _row(result.one())
    except IntegrityError as exc:
        raise DuplicateAuthor(name) from exc


async def delete_author(engine: AsyncEngine, author_id: int) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(sa.delete(authors).where(authors.c.id == author_id))
        return bool(result.rowcount)
