"""The audit writer on a healthy database: rows, batches, flushes, redaction and caps.

Runs on SQLite and on a real PostgreSQL, schema built by the migrations.
Counts come from the metrics registry as before/after deltas and are exact.
Failure modes (outage, overflow, spool, bad rows) are in test_audit_faults.py,
which reuses the helpers defined here.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrations import upgrade_async
from fastapi_lookout.audit import rows as rows_module
from fastapi_lookout.audit import store
from fastapi_lookout.audit import writer as audit
from fastapi_lookout.audit.chain import GENESIS
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.event import OUTCOME_DENIED, OUTCOME_ERROR, OUTCOME_SUCCESS, AuditEvent, outcome_for_status
from fastapi_lookout.audit.rows import encode_request_data
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.writer import AuditWriter
from fastapi_lookout.redaction import REDACTED
from tests.test_migrations import database_url, postgres_url, sqlite_url  # noqa: F401 - fixtures

# --- helpers shared with test_audit_faults.py ------------------------------------
SAMPLES = {
    "enqueued": ("audit_events_enqueued_total", {}),
    "written": ("audit_events_written_total", {}),
    "dropped": ("audit_events_dropped_total", {}),
    "spooled": ("audit_events_spooled_total", {}),
    "failures": ("audit_write_failures_total", {}),
    "batches": ("audit_batch_duration_seconds_count", {}),
    "db_inserts": ("db_query_duration_seconds_count", {"operation": "audit_insert"}),
}


class Metrics:
    """Audit counters read now; ``delta()`` is what happened since."""

    def __init__(self) -> None:
        self.before = self._read()

    @staticmethod
    def _read() -> dict[str, float]:
        return {key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in SAMPLES.items()}

    def delta(self) -> dict[str, float]:
        after = self._read()
        return {key: after[key] - self.before[key] for key in SAMPLES}


def queue_gauge() -> float | None:
    return REGISTRY.get_sample_value("audit_queue_size")


def event(n: int = 0, **overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "timestamp": datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC) + timedelta(seconds=n),
        "action_type": "get_author",
        "resource": f"/api/authors/{n}",
        "outcome": OUTCOME_SUCCESS,
        "response_status": 200,
        "duration_ms": 12.5 + n,
        "request_id": f"req-{n}-{uuid.uuid4().hex[:8]}",
    }
    fields.update(overrides)
    return AuditEvent(**fields)


TEST_WRITER_OPTIONS: dict[str, Any] = {
    "queue_max_size": 1000,
    "batch_size": 100,
    "batch_timeout_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "shutdown_timeout_seconds": 2.0,
    "spool_path": None,
}
"""Test-sized timeouts, for the in-loop writer and the writer process alike."""


def writer_for(engine: AsyncEngine, **overrides: Any) -> AuditWriter:
    return AuditWriter(engine, **{**TEST_WRITER_OPTIONS, **overrides})


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def fetch_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(user_actions).order_by(user_actions.c.id))
        return [dict(r._mapping) for r in result]


@contextmanager
def inserts_counted(engine: AsyncEngine) -> Iterator[list[int]]:
    """Yields a list that receives the row count of every INSERT (or COPY) into user_actions sent."""
    seen: list[int] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USER_ACTIONS"):
            seen.append(len(params) if executemany else 1)

    copy_rows = audit.insert_rows

    async def record_copy(conn: Any, rows: Any, params: Any) -> None:
        if conn.dialect.name == "postgresql":  # one binary COPY, invisible to SQLAlchemy's events
            seen.append(len(rows))
        await copy_rows(conn, rows, params)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    audit.insert_rows = record_copy
    try:
        yield seen
    finally:
        audit.insert_rows = copy_rows
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(sqlite_url)
    eng = create_engine(sqlite_url)
    yield eng
    await eng.dispose()


# --- tests ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, OUTCOME_SUCCESS),
        (204, OUTCOME_SUCCESS),
        (302, OUTCOME_SUCCESS),
        (399, OUTCOME_SUCCESS),
        (401, OUTCOME_DENIED),
        (403, OUTCOME_DENIED),
        (400, OUTCOME_ERROR),
        (404, OUTCOME_ERROR),
        (413, OUTCOME_ERROR),
        (429, OUTCOME_ERROR),
        (500, OUTCOME_ERROR),
        (503, OUTCOME_ERROR),
    ],
)
def test_outcome_for_status(status: int, outcome: str) -> None:
    assert outcome_for_status(status) == outcome


async def test_every_column_round_trips(engine: AsyncEngine) -> None:
    full = event(
        1,
        outcome=OUTCOME_DENIED,
        response_status=403,
        user_id="0b9c-user",
        username="alice",
        user_roles="reader,writer",
        ip_address="2001:db8::1",
        user_agent="pytest/1.0",
        request_data={"name": "Ada", "tags": ["a", "b"], "n": 3, "ok": True, "nested": {"x": None}},
        error_message="missing role writer",
    )
    naive = event(2, timestamp=datetime(2025, 1, 2, 3, 4, 5))  # naive: taken as UTC
    minimal = event(3)
    metrics, gauge_before = Metrics(), queue_gauge()
    writer = writer_for(engine)
    assert gauge_before is not None
    assert [writer.enqueue(e) for e in (full, naive, minimal)] == [True, True, True]
    assert writer.pending == 3 and queue_gauge() == 3
    started = time.time()
    await writer.start()
    await writer.stop()

    rows = await fetch_rows(engine)
    assert len(rows) == 3
    prev_hash = GENESIS
    for seq, (row, sent) in enumerate(zip(rows, (full, naive, minimal), strict=True), start=1):
        assert (row.pop("seq"), row.pop("prev_hash")) == (seq, prev_hash)  # the chain, in commit order
        prev_hash = row.pop("row_hash")
        ts = row.pop("timestamp")
        assert (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) == (
            sent.timestamp if sent.timestamp.tzinfo else sent.timestamp.replace(tzinfo=UTC)
        )
        assert isinstance(row.pop("id"), int)
        expected = {k: getattr(sent, k) for k in row}
        assert row == expected
    async with engine.connect() as conn:
        nulls = (await conn.execute(sa.select(user_actions.c.request_data.is_(None)).order_by("id"))).scalars().all()
    assert nulls == [False, True, True]  # None is stored as SQL NULL, not JSON 'null'

    assert metrics.delta() == {
        "enqueued": 3,
        "written": 3,
        "dropped": 0,
        "spooled": 0,
        "failures": 0,
        "batches": 1,
        "db_inserts": 1,
    }
    assert writer.pending == 0 and queue_gauge() == 0
    last_write = REGISTRY.get_sample_value("audit_last_write_timestamp_seconds")
    assert last_write is not None and started <= last_write <= time.time()


async def test_an_epoch_seconds_timestamp_is_stored_as_that_instant(engine: AsyncEngine) -> None:
    """The middleware passes ``time.time()``; a number that is no instant is refused and counted."""
    instant = datetime(2026, 11, 22, 5, 6, 7, 891234, tzinfo=UTC)
    metrics = Metrics()
    writer = writer_for(engine)
    sent = [event(1, timestamp=instant.timestamp()), event(2, timestamp=1_700_000_000)]
    assert [writer.enqueue(e) for e in sent] == [True, True]
    assert not writer.enqueue(event(3, timestamp=1e300))  # beyond datetime's range
    await writer.start()
    await writer.stop()
    stored = [r["timestamp"] for r in await fetch_rows(engine)]
    assert [ts if ts.tzinfo else ts.replace(tzinfo=UTC) for ts in stored] == [
        instant, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)]
    assert metrics.delta()["dropped"] == 1


async def test_n_rows_are_written_in_ceil_n_over_batch_size_inserts(engine: AsyncEngine) -> None:
    writer = writer_for(engine, batch_size=10, batch_timeout_seconds=0.2)
    sent = [event(i) for i in range(25)]
    assert all(writer.enqueue(e) for e in sent)
    metrics = Metrics()
    with inserts_counted(engine) as inserts:
        await writer.start()
        await wait_until(lambda: writer.pending == 0, what="all rows written")
        await writer.stop()
    assert inserts == [10, 10, 5]
    assert metrics.delta() == {
        "enqueued": 0,
        "written": 25,
        "dropped": 0,
        "spooled": 0,
        "failures": 0,
        "batches": 3,
        "db_inserts": 3,
    }
    assert [r["request_id"] for r in await fetch_rows(engine)] == [e.request_id for e in sent]


async def test_a_large_batch_hands_the_loop_back_between_chunks_and_stays_one_chain(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 rows, one batch: encoded and hashed 100 rows at a time with the loop handed back in between
    (and on PostgreSQL sent as three COPYs), still one transaction and one gap-free chain."""
    yields: list[str] = []
    real_sleep = asyncio.sleep

    async def counting_sleep(delay: float, *args: Any) -> Any:
        caller = sys._getframe(1).f_code
        if delay == 0 and caller.co_filename in (audit.__file__, store.__file__):
            yields.append(caller.co_name)
        return await real_sleep(delay, *args)

    n = 600
    writer = writer_for(engine, batch_size=n, queue_max_size=n)
    sent = [event(i) for i in range(n)]
    assert all(writer.enqueue(e) for e in sent)
    metrics = Metrics()
    monkeypatch.setattr(asyncio, "sleep", counting_sleep)
    with inserts_counted(engine) as inserts:
        await writer.start()
        await wait_until(lambda: writer.pending == 0, what="all rows written")
        await writer.stop()
    assert inserts == [n] and metrics.delta()["batches"] == 1
    per_chunk = n // audit.YIELD_EVERY_ROWS - 1
    copies = -(-n // store.COPY_ROWS) - 1 if engine.dialect.name == "postgresql" else 0
    assert yields == ["_insert"] * (2 * per_chunk) + ["insert_rows"] * copies
    rows = await fetch_rows(engine)
    assert [r["request_id"] for r in rows] == [e.request_id for e in sent]
    assert [r["seq"] for r in rows] == list(range(1, n + 1))
    assert [r["prev_hash"] for r in rows] == [GENESIS] + [r["row_hash"] for r in rows[:-1]]


async def test_partial_batch_is_written_when_the_timeout_expires(sqlite_engine: AsyncEngine) -> None:
    writer = writer_for(sqlite_engine, batch_size=100, batch_timeout_seconds=0.4)
    await writer.start()
    metrics = Metrics()
    enqueued_at = time.monotonic()
    for i in range(3):
        writer.enqueue(event(i))
    await asyncio.sleep(0.1)
    assert writer.pending == 3 and metrics.delta()["written"] == 0  # still waiting for more rows
    await wait_until(lambda: writer.pending == 0, timeout=5, what="the partial batch")
    assert time.monotonic() - enqueued_at >= 0.4
    assert metrics.delta()["batches"] == 1 and metrics.delta()["written"] == 3
    await writer.stop()
    assert len(await fetch_rows(sqlite_engine)) == 3


async def test_stop_flushes_every_queued_row_without_waiting_out_the_batch_timeout(engine: AsyncEngine) -> None:
    writer = writer_for(engine, batch_size=10, batch_timeout_seconds=30.0)
    await writer.start()
    metrics = Metrics()
    for i in range(25):
        writer.enqueue(event(i))
    began = time.monotonic()
    await writer.stop()
    assert time.monotonic() - began < 5.0
    assert writer.pending == 0
    assert len(await fetch_rows(engine)) == 25
    assert metrics.delta() == {
        "enqueued": 25,
        "written": 25,
        "dropped": 0,
        "spooled": 0,
        "failures": 0,
        "batches": 3,
        "db_inserts": 3,
    }


async def test_stop_without_start_still_writes_the_queue(sqlite_engine: AsyncEngine) -> None:
    writer = writer_for(sqlite_engine)
    for i in range(4):
        writer.enqueue(event(i))
    await writer.stop()
    assert len(await fetch_rows(sqlite_engine)) == 4


async def test_enqueue_after_stop_is_refused_and_counted(sqlite_engine: AsyncEngine) -> None:
    writer = writer_for(sqlite_engine)
    await writer.start()
    await writer.stop()
    metrics = Metrics()
    assert writer.enqueue(event()) is False
    assert metrics.delta()["dropped"] == 1 and metrics.delta()["enqueued"] == 0
    with pytest.raises(RuntimeError):
        await writer.start()


async def test_request_data_is_redacted_before_it_is_stored(engine: AsyncEngine) -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    data = {
        "name": "Ada",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abc.def", "X-Api-Key": "k"},
        "items": [{"refresh_token": "r"}, "see " + jwt],
    }
    writer = writer_for(engine)
    writer.enqueue(event(request_data=data, error_message=f"bad token {jwt}"))
    await writer.start()
    await writer.stop()
    [row] = await fetch_rows(engine)
    assert row["request_data"] == {
        "name": "Ada",
        "password": REDACTED,
        "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED},
        "items": [{"refresh_token": REDACTED}, f"see {REDACTED}"],
    }
    assert row["error_message"] == f"bad token {REDACTED}"
    assert "hunter2" not in repr(row)


async def test_request_data_over_the_cap_is_replaced_by_its_size(engine: AsyncEngine) -> None:
    cap = 64
    at_cap = {"v": "x" * (cap - len(b'{"v":""}'))}
    over = {"v": "x" * cap}
    assert len(orjson.dumps(at_cap)) == cap
    writer = writer_for(engine, request_data_max_bytes=cap)
    writer.enqueue(event(1, request_data=at_cap))
    writer.enqueue(event(2, request_data=over))
    await writer.start()
    await writer.stop()
    rows = await fetch_rows(engine)
    assert [r["request_data"] for r in rows] == [at_cap, {"truncated": True, "size": len(orjson.dumps(over))}]


def test_request_data_cap_applies_after_redaction() -> None:
    """A long secret is replaced first, so the redacted body fits."""
    encoded = encode_request_data({"password": "p" * 1000}, max_bytes=64)
    assert encoded is not None and orjson.loads(encoded) == {"password": REDACTED}
    assert encode_request_data(None, 64) is None
    assert orjson.loads(encode_request_data({1: {2, 3}}, 64) or b"") == {"1": "{2, 3}"}  # any value stays storable


FULL_ROW = {  # every string column set, each within its length, ASCII: the fast path keeps them as they are
    "user_id": "u-1", "username": "alice", "user_roles": "get-authors,admin", "action_type": "get_author",
    "resource": "GET /api/authors/1", "outcome": OUTCOME_SUCCESS, "ip_address": "10.0.0.1",
    "user_agent": "curl/8", "request_id": "req-1", "error_message": "HTTP 404",
}


@pytest.mark.parametrize("column", sorted(rows_module.STRING_CAPS))
@pytest.mark.parametrize("problem", ["over_cap", "at_cap", "nul", "surrogate", "non_ascii", "not_str"])
def test_each_string_column_is_normalised_whatever_the_other_columns_hold(column: str, problem: str) -> None:
    """The row check proves all ten columns at once; one bad column among nine good ones must still be caught."""
    cap = rows_module.STRING_CAPS[column]
    value: Any = {
        "over_cap": "x" * (cap + 1), "at_cap": "x" * cap, "nul": "a\x00b", "surrogate": "a\ud800b",
        "non_ascii": "é" * (cap + 1), "not_str": 12345,
    }[problem]
    expected = {
        "over_cap": "x" * cap, "at_cap": "x" * cap, "nul": "a\ufffdb", "surrogate": "a?b",
        "non_ascii": "é" * cap, "not_str": "12345"[:cap],
    }[problem]
    fields = {**FULL_ROW, column: value}
    row = rows_module.normalise_row(
        event(**{k: v for k, v in fields.items() if k != "resource"}, resource=fields["resource"]), 4096)
    assert row[column] == expected
    assert {k: row[k] for k in FULL_ROW if k != column} == {k: v for k, v in FULL_ROW.items() if k != column}
    assert all(v is None or (type(v) is str and len(v) <= rows_module.STRING_CAPS[k]) for k, v in row.items()
               if k in rows_module.STRING_CAPS)


async def test_oversized_strings_and_nul_characters_do_not_cost_the_row(engine: AsyncEngine) -> None:
    """Column lengths and PostgreSQL's refusal of NUL are handled on the way in, not by dropping rows."""
    metrics = Metrics()
    writer = writer_for(engine)
    writer.enqueue(
        event(
            request_id="r" * 100,
            user_agent="evil\x00agent" + "a" * 1000,
            resource="/api/" + "p" * 1000,
            request_data={"k\x00": "v\x00"},
            error_message="e" * 5000,
        )
    )
    await writer.start()
    await writer.stop()
    [row] = await fetch_rows(engine)
    assert row["request_id"] == "r" * 64
    assert row["user_agent"].startswith("evil\ufffdagent") and len(row["user_agent"]) == 512
    assert len(row["resource"]) == 512
    assert row["request_data"] == {"k\ufffd": "v\ufffd"}
    assert len(row["error_message"]) == 1024
    assert metrics.delta()["dropped"] == 0 and metrics.delta()["written"] == 1
