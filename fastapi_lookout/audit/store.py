"""The two statements a batch needs: lock the chain head, insert the rows (COPY on PostgreSQL)."""

from __future__ import annotations

import asyncio
from operator import itemgetter
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fastapi_lookout.audit.chain import CHAIN_COLUMNS
from fastapi_lookout.audit.db_errors import ChainHeadMissing
from fastapi_lookout.audit.rows import insert_params
from fastapi_lookout.audit.schema import audit_chain_head, user_actions
from fastapi_lookout.audit.spool import Row

__all__ = ["COPY_ROWS", "insert_rows", "lock_head"]

_ROW_COLUMNS: Final = tuple(
    c.name for c in user_actions.columns if c.name not in ("id", "request_data", *CHAIN_COLUMNS)
)
_row_columns_of: Final = itemgetter(*_ROW_COLUMNS)
_COPY_COLUMNS: Final = (*_ROW_COLUMNS, "request_data", *CHAIN_COLUMNS)
COPY_ROWS: Final = 250
"""Rows per COPY inside a batch's transaction: asyncpg encodes a COPY's records without yielding, so a
batch is sent as a few COPYs (one round trip each) with the loop handed back in between."""


async def insert_rows(conn: AsyncConnection, rows: list[Row], chain: list[tuple[int, str, str]]) -> None:
    """PostgreSQL: binary COPY on the transaction's own connection (about twice the rows/s of a
    multi-row INSERT, and ``request_data`` goes in as the JSON text already encoded, not decoded
    and re-encoded). Elsewhere: one multi-row INSERT. ``chain`` is each row's (seq, prev_hash, row_hash)."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "asyncpg":
        params = [
            insert_params(row) | {"seq": seq, "prev_hash": prev, "row_hash": digest}
            for row, (seq, prev, digest) in zip(rows, chain, strict=True)
        ]
        await conn.execute(user_actions.insert(), params)
        return
    raw = (await conn.get_raw_connection()).driver_connection
    for chunk in range(0, len(rows), COPY_ROWS):  # asyncpg encodes a COPY's records in one go: a few, not one
        if chunk:
            await asyncio.sleep(0)
        records = [
            (*_row_columns_of(row), None if row["request_data"] is None else row["request_data"].decode(), *link)
            for row, link in zip(rows[chunk:chunk + COPY_ROWS], chain[chunk:chunk + COPY_ROWS], strict=True)
        ]
        await raw.copy_records_to_table("user_actions", columns=_COPY_COLUMNS, records=records)


async def lock_head(conn: AsyncConnection) -> tuple[int, str]:
    """The chain head, locked until this transaction ends: other writers queue here."""
    head = audit_chain_head
    if conn.dialect.name == "sqlite":
        # A write first: SQLite's write lock now, not at the INSERT (no read-then-upgrade deadlock).
        await conn.execute(head.update().where(head.c.id == 1).values(seq=head.c.seq))
        query = sa.select(head.c.seq, head.c.row_hash).where(head.c.id == 1)
    else:
        query = sa.select(head.c.seq, head.c.row_hash).where(head.c.id == 1).with_for_update()
    found = (await conn.execute(query)).first()
    if found is None:
        raise ChainHeadMissing("audit_chain_head has no row: run the migrations")
    return int(found.seq), str(found.row_hash)
