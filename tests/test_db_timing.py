"""``time_queries(engine)``: every statement of any engine lands in db_query_duration_seconds{operation}."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from fastapi_lookout.db_timing import STATEMENT_OPERATIONS, operation_of, time_queries
from fastapi_lookout.metrics import DB_OPERATIONS


def count(operation: str) -> float:
    return REGISTRY.get_sample_value("db_query_duration_seconds_count", {"operation": operation}) or 0.0


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "select"),
        ("  \n(select 1) UNION (select 2)", "select"),
        ("insert into t values (1)", "insert"),
        ("UPDATE t SET a = 1", "update"),
        ("DELETE FROM t", "delete"),
        ("CREATE TABLE t (a int)", "other"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "other"),
        ("selectivity", "other"),
        ("", "other"),
    ],
)
def test_the_operation_is_the_first_keyword_from_a_bounded_set(statement: str, operation: str) -> None:
    assert operation_of(statement) == operation


def test_every_operation_it_can_report_is_a_catalog_label_value_initialised_to_zero() -> None:
    assert {*STATEMENT_OPERATIONS, "other"} <= set(DB_OPERATIONS)


async def test_an_async_engines_statements_are_observed_by_operation_failures_included(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'timed.db'}")
    time_queries(engine)
    time_queries(engine)  # idempotent: one observation per statement, not two
    before = {op: count(op) for op in (*STATEMENT_OPERATIONS, "other")}
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            await conn.execute(sa.text("UPDATE t SET a = 2"))
            await conn.execute(sa.text("SELECT a FROM t"))
            await conn.execute(sa.text("DELETE FROM t"))
        with pytest.raises(sa.exc.OperationalError):
            async with engine.begin() as conn:
                await conn.execute(sa.text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    delta = {op: count(op) - before[op] for op in before}
    assert delta == {"select": 2, "insert": 1, "update": 1, "delete": 1, "other": 1}


def test_a_sync_engine_is_timed_too(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    time_queries(engine)
    before = count("select")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert count("select") - before == 1
