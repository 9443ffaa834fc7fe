"""Authors data access, shared by the HTTP routes and the WebSocket packages.

Every statement is timed into ``db_query_duration_seconds{operation}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import authors
from fastapi_lookout.metrics import DB_QUERY_DURATION


class DuplicateAuthor(Exception):
    pass


@asynccontextmanager
async def _timed(engine: AsyncEngine, operation: str) -> AsyncIterator[AsyncConnection]:
    start = time.perf_counter()
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        DB_QUERY_DURATION.labels(operation).observe(time.perf_counter() - start)


def _row(row: sa.Row[Any]) -> dict[str, Any]:
    data = {str(key): value for key, value in row._mapping.items()}  # keys are quoted_name, a str subclass
    created = data.get("created_at")
    if created is not None and not isinstance(created, str):
        data["created_at"] = created.isoformat()
    return data


async def list_authors(engine: AsyncEngine, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    async with _timed(engine, "select") as conn:
        result = await conn.execute(sa.select(authors).order_by(authors.c.id).limit(limit).offset(offset))
        return [_row(r) for r in result]


async def get_author(engine: AsyncEngine, author_id: int) -> dict[str, Any] | None:
    async with _timed(engine, "select") as conn:
        row = (await conn.execute(sa.select(authors).where(authors.c.id == author_id))).first()
        return _row(row) if row else None


async def create_author(engine: AsyncEngine, name: str, bio: str | None) -> dict[str, Any]:
    try:
        async with _timed(engine, "insert") as conn:
            result = await conn.execute(sa.insert(authors).values(name=name, bio=bio).returning(*authors.c))
            return _row(result.one())
    except IntegrityError as exc:
        raise DuplicateAuthor(name) from exc


async def delete_author(engine: AsyncEngine, author_id: int) -> bool:
    async with _timed(engine, "delete") as conn:
        result = await conn.execute(sa.delete(authors).where(authors.c.id == author_id))
        return bool(result.rowcount)
