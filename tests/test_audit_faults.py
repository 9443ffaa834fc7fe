"""The audit writer when things go wrong: outages, a full queue, shutdown with the
database down, the spool, and rows the database refuses.

The PostgreSQL tests stop and restart the session-shared server, always in a
``finally``. Elsewhere a SQLite database whose directory does not exist yet
stands in for "down": it fails like a refused connection (a transient error)
and comes back when the directory and schema are created.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

import fastapi_lookout.audit.writer as audit
from app.migrations import upgrade_async
from fastapi_lookout.audit import db_errors
from fastapi_lookout.audit.db_errors import is_row_error
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.spool import COLUMNS, Row, Spool, decode_row, encode_row, header_line, parse_header
from fastapi_lookout.audit.target import Target
from fastapi_lookout.audit.writer import AuditWriter
from tests.support.postgres import PostgresServer
from tests.test_audit_writer import (  # noqa: F401 - the URL fixtures and `engine` are fixtures
    Metrics,
    database_url,
    engine,
    event,
    fetch_rows,
    postgres_url,
    queue_gauge,
    sqlite_url,
    wait_until,
    writer_for,
)


# --- helpers ----------------------------------------------------------------------
@contextmanager
def server_stopped(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()  # session-shared: always back up, whatever the test did


@dataclass
class DownDatabase:
    """A SQLite database that is down until ``bring_up()``."""

    url: str
    directory: Path
    engine: AsyncEngine

    async def bring_up(self) -> None:
        self.directory.mkdir()
        await upgrade_async(self.url)


@pytest.fixture
async def down_db(tmp_path: Path) -> AsyncIterator[DownDatabase]:
    directory = tmp_path / "db"
    url = f"sqlite+aiosqlite:///{directory / 'audit.db'}"
    eng = create_engine(url)
    yield DownDatabase(url, directory, eng)
    await eng.dispose()


async def rename_table(engine: AsyncEngine, name: str, to: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"ALTER TABLE {name} RENAME TO {to}"))


def spooled_request_ids(path: Path) -> list[str]:
    return [decode_row(line)["request_id"] for line in path.read_bytes().splitlines()
            if line.strip() and not parse_header(line)[0]]


def leftover_replay_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.replay-*"))


SOMEWHERE = Target("sqlite:///somewhere.db", {"path": "/somewhere.db", "inode": "1", "chain_id": "c" * 32})


def spool_row(request_id: str) -> Row:
    row: Row = dict.fromkeys(COLUMNS)
    row.update(
        timestamp=datetime(2025, 1, 1, tzinfo=UTC),
        action_type="a",
        resource="/r",
        outcome="success",
        response_status=200,
        duration_ms=1.0,
        request_id=request_id,
        request_data=b'{"k":1}',
    )
    return row


# --- PostgreSQL outage ----------------------------------------------------------
async def test_outage_keeps_rows_pending_then_writes_each_exactly_once(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    await upgrade_async(postgres_url)
    eng = create_engine(postgres_url)
    writer = writer_for(eng, batch_size=8, retry_max_seconds=0.2)
    try:
        await writer.start()
        warm = event(0)
        writer.enqueue(warm)
        await wait_until(lambda: writer.pending == 0, what="the warm-up row")
        metrics = Metrics()
        sent = [event(i) for i in range(1, 21)]
        with server_stopped(postgres_server):
            assert all(writer.enqueue(e) for e in sent)
            await wait_until(lambda: metrics.delta()["failures"] >= 3, what="failed attempts")
            assert writer.pending == 20 and queue_gauge() == 20
            assert metrics.delta()["written"] == 0
        await wait_until(lambda: writer.pending == 0, timeout=20, what="recovery")
        await writer.stop()
        ids = [r["request_id"] for r in await fetch_rows(eng)]
        assert sorted(ids) == sorted([warm.request_id] + [e.request_id for e in sent])  # no loss, no duplicate
        delta = metrics.delta()
        assert (delta["enqueued"], delta["written"], delta["dropped"], delta["spooled"]) == (20, 20, 0, 0)
        assert queue_gauge() == 0
    finally:
        await eng.dispose()


async def test_shutdown_during_outage_spools_and_the_next_start_replays_on_postgres(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    await upgrade_async(postgres_url)
    spool = tmp_path / "audit-spool.jsonl"
    eng = create_engine(postgres_url)
    try:
        metrics = Metrics()
        sent = [event(i) for i in range(6)]
        with server_stopped(postgres_server):
            writer = writer_for(eng, spool_path=spool, shutdown_timeout_seconds=0.5)
            await writer.start()
            for e in sent:
                writer.enqueue(e)
            await writer.stop()
            assert spooled_request_ids(spool) == [e.request_id for e in sent]
        replayer = writer_for(eng, spool_path=spool)
        await replayer.start()
        await wait_until(lambda: not spool.exists() and replayer.pending == 0, what="the replay")
        await replayer.stop()
        assert [r["request_id"] for r in await fetch_rows(eng)] == [e.request_id for e in sent]
        delta = metrics.delta()
        assert (delta["enqueued"], delta["spooled"], delta["written"], delta["dropped"]) == (6, 6, 6, 0)
        assert leftover_replay_files(spool) == []
    finally:
        await eng.dispose()


# --- a full queue -----------------------------------------------------------------
def test_full_queue_refuses_exactly_the_excess_without_blocking() -> None:
    """A plain (sync) test: no event loop runs, so enqueue cannot be awaiting anything."""
    assert not inspect.iscoroutinefunction(AuditWriter.enqueue)
    writer = AuditWriter(
        create_engine("sqlite+aiosqlite:///:memory:"),
        queue_max_size=5,
        batch_size=10,
        batch_timeout_seconds=1,
        retry_max_seconds=1,
        shutdown_timeout_seconds=1,
        spool_path=None,
    )
    metrics = Metrics()
    assert [writer.enqueue(event(i)) for i in range(12)] == [True] * 5 + [False] * 7
    delta = metrics.delta()
    assert (delta["enqueued"], delta["dropped"]) == (5, 7)
    assert writer.pending == 5 and queue_gauge() == 5

    flood, began = event(99), time.perf_counter()
    for _ in range(20_000):
        writer.enqueue(flood)
    assert time.perf_counter() - began < 1.0  # the refusal path stays cheap under a flood
    assert metrics.delta()["dropped"] == 7 + 20_000


async def test_drop_warnings_are_rate_limited_and_carry_the_count(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upgrade_async(sqlite_url)
    eng = create_engine(sqlite_url)
    writer = writer_for(eng, queue_max_size=1)
    monkeypatch.setattr(audit, "DROP_WARNING_INTERVAL_SECONDS", 0.2)
    metrics = Metrics()
    try:
        with capture_logs() as logs:
            results = [writer.enqueue(event(i)) for i in range(31)]
            await asyncio.sleep(0.25)
            results += [writer.enqueue(event(i)) for i in range(5)]
            await writer.stop()
    finally:
        await eng.dispose()
    assert results.count(True) == 1
    warnings = [e for e in logs if e["event"] == "audit_events_dropped"]
    # The first refusal is reported at once; the next 29 wait for the interval and are reported
    # with the first refusal after it (29 + 1); the last 4 by stop().
    assert [w["dropped"] for w in warnings] == [1, 30, 4]
    assert metrics.delta()["dropped"] == 35 and metrics.delta()["written"] == 1
    assert all(w["log_level"] == "warning" and w["reasons"] == {"queue_full": w["dropped"]} for w in warnings)


async def test_outage_fills_the_queue_to_its_bound_and_counts_the_excess(down_db: DownDatabase) -> None:
    writer = writer_for(down_db.engine, queue_max_size=5, batch_size=100, retry_max_seconds=0.05)
    metrics = Metrics()
    await writer.start()
    first = [event(i) for i in range(12)]
    assert [writer.enqueue(e) for e in first] == [True] * 5 + [False] * 7
    await wait_until(lambda: metrics.delta()["failures"] >= 1, what="a failed write")
    # The task holds the first five in its batch, so the queue has room for five more.
    second = [event(i) for i in range(12, 24)]
    assert [writer.enqueue(e) for e in second] == [True] * 5 + [False] * 7
    assert writer.pending == 10 and queue_gauge() == 10
    assert metrics.delta()["dropped"] == 14

    await down_db.bring_up()
    await wait_until(lambda: writer.pending == 0, what="recovery")
    await writer.stop()
    ids = [r["request_id"] for r in await fetch_rows(down_db.engine)]
    assert sorted(ids) == sorted(e.request_id for e in first[:5] + second[:5])
    delta = metrics.delta()
    assert (delta["enqueued"], delta["written"], delta["dropped"]) == (10, 10, 14)


# --- shutdown, spool and replay -------------------------------------------------------
async def test_stop_spools_after_the_timeout_and_a_new_writer_replays(down_db: DownDatabase, tmp_path: Path) -> None:
    spool = tmp_path / "var" / "audit-spool.jsonl"  # its directory is created on demand
    metrics = Metrics()
    writer = writer_for(down_db.engine, spool_path=spool, shutdown_timeout_seconds=0.5, retry_max_seconds=0.05)
    await writer.start()
    sent = [event(i, request_data={"i": i}) for i in range(7)]
    for e in sent:
        writer.enqueue(e)
    began = time.monotonic()
    await writer.stop()
    took = time.monotonic() - began
    assert 0.5 <= took < 0.5 + audit.CANCEL_GRACE_SECONDS + 1.0
    assert spooled_request_ids(spool) == [e.request_id for e in sent]
    delta = metrics.delta()
    assert (delta["spooled"], delta["written"], delta["dropped"]) == (7, 0, 0) and delta["failures"] >= 1
    assert writer.pending == 0 and queue_gauge() == 0

    await down_db.bring_up()
    metrics = Metrics()
    replayer = writer_for(down_db.engine, spool_path=spool)
    await replayer.start()
    await wait_until(lambda: not spool.exists() and replayer.pending == 0, what="the replay")
    await replayer.stop()
    rows = await fetch_rows(down_db.engine)
    assert [(r["request_id"], r["request_data"]) for r in rows] == [(e.request_id, e.request_data) for e in sent]
    assert rows[0]["timestamp"].replace(tzinfo=UTC) == sent[0].timestamp
    delta = metrics.delta()
    assert (delta["written"], delta["enqueued"], delta["spooled"], delta["dropped"]) == (7, 0, 0, 0)
    assert leftover_replay_files(spool) == []


async def test_stop_during_a_replay_keeps_every_unwritten_row_exactly_once(
    down_db: DownDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "audit-spool.jsonl"
    first = writer_for(down_db.engine, spool_path=spool, shutdown_timeout_seconds=0.2)
    old = [event(i) for i in range(10)]
    for e in old:
        first.enqueue(e)
    await first.stop()  # never started, database down: all ten spooled

    # The database answers (the writer identifies it) but its table is gone: every insert of the replay fails.
    await down_db.bring_up()
    await rename_table(down_db.engine, "user_actions", "user_actions_away")
    metrics = Metrics()
    second = writer_for(
        down_db.engine, spool_path=spool, batch_size=4, shutdown_timeout_seconds=0.3, retry_max_seconds=0.05
    )
    await second.start()
    await wait_until(lambda: metrics.delta()["failures"] >= 1, what="the replay failing")
    assert not spool.exists() and len(leftover_replay_files(spool)) == 1  # claimed
    new = [event(i) for i in range(10, 13)]
    for e in new:
        second.enqueue(e)
    await second.stop()
    assert sorted(spooled_request_ids(spool)) == sorted(e.request_id for e in old + new)
    assert leftover_replay_files(spool) == []
    assert metrics.delta()["spooled"] == 13  # 4 in flight + 6 never read + 3 queued

    await rename_table(down_db.engine, "user_actions_away", "user_actions")
    third = writer_for(down_db.engine, spool_path=spool)
    await third.start()
    await wait_until(lambda: not spool.exists() and third.pending == 0, what="the replay")
    await third.stop()
    ids = [r["request_id"] for r in await fetch_rows(down_db.engine)]
    assert sorted(ids) == sorted(e.request_id for e in old + new)


async def test_a_hung_insert_is_cancelled_at_the_deadline_and_its_rows_spooled(
    down_db: DownDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "audit-spool.jsonl"
    writer = writer_for(down_db.engine, spool_path=spool, shutdown_timeout_seconds=0.2)

    async def hang(_rows: list[Row]) -> None:
        await asyncio.Event().wait()

    writer._insert = hang  # type: ignore[method-assign] - a database that accepts but never answers
    sent = [event(i) for i in range(3)]
    for e in sent:
        writer.enqueue(e)
    await writer.start()
    await asyncio.sleep(0.1)
    began = time.monotonic()
    await writer.stop()
    assert time.monotonic() - began < 0.2 + audit.CANCEL_GRACE_SECONDS + 1.0
    assert spooled_request_ids(spool) == [e.request_id for e in sent]


def test_spool_claims_are_exclusive_and_abandoned_replays_are_adopted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.jsonl")
    assert spool.claim() == []
    spool.append([spool_row("a"), spool_row("b")], SOMEWHERE)
    [mine] = spool.claim()
    assert spool.claim() == []  # another process (or writer) finds it locked
    mine.close()  # the claimer died mid-replay: its lock is gone, the file is not
    [adopted] = spool.claim()
    assert adopted.path == mine.path
    chunk = adopted.read(10)
    rows, bad = chunk.rows()
    assert chunk.target == SOMEWHERE
    assert ([r["request_id"] for r in rows], bad) == (["a", "b"], 0)
    spool.finish(adopted)
    assert list(tmp_path.iterdir()) == []


def test_a_torn_last_line_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    torn = b'{"timestamp": "2025-01-'  # a writer died mid-line
    path.write_bytes(header_line(SOMEWHERE) + encode_row(spool_row("a")) + torn)
    spool = Spool(path)
    spool.append([spool_row("b")], SOMEWHERE)
    [claimed] = spool.claim()
    found, malformed = [], 0
    while (chunk := claimed.read(10)).lines:
        rows, bad = chunk.rows()
        found += [r["request_id"] for r in rows]
        malformed += bad
        claimed.advance(chunk)
    assert (found, malformed) == (["a", "b"], 1)
    claimed.close()


# --- rows the database refuses ------------------------------------------------------
async def test_a_bad_row_is_isolated_and_the_rest_of_its_batch_written(engine: AsyncEngine) -> None:
    sent = [event(i) for i in range(7)]
    sent[3] = event(3, outcome="bogus")  # violates ck_user_actions_outcome
    writer = writer_for(engine, batch_size=10)
    metrics = Metrics()
    with capture_logs() as logs:
        for e in sent:
            writer.enqueue(e)
        await writer.start()
        await wait_until(lambda: writer.pending == 0, what="the batch")
        later = event(7)
        writer.enqueue(later)  # the queue is not blocked behind the bad row
        await writer.stop()
    ids = [r["request_id"] for r in await fetch_rows(engine)]
    assert ids == [e.request_id for e in sent if e.outcome != "bogus"] + [later.request_id]
    delta = metrics.delta()
    # Bisection of 7 with the bad row at index 3: [0:7] [3:7] [3:5] [3:4] fail, the rest commit.
    assert (delta["dropped"], delta["failures"], delta["written"]) == (1, 4, 7)
    rejected = [e for e in logs if e["event"] == "audit_row_rejected"]
    assert [(r["request_id"], r["log_level"]) for r in rejected] == [(sent[3].request_id, "error")]
    assert "bogus" not in repr(logs)  # errors are logged without row contents


async def test_a_schema_problem_is_retried_never_blamed_on_the_rows(sqlite_url: str) -> None:
    eng = create_engine(sqlite_url)  # no migrations yet: "no such table"
    writer = writer_for(eng, retry_max_seconds=0.05)
    metrics = Metrics()
    try:
        sent = [event(i) for i in range(3)]
        for e in sent:
            writer.enqueue(e)
        await writer.start()
        await wait_until(lambda: metrics.delta()["failures"] >= 3, what="failed attempts")
        assert metrics.delta()["dropped"] == 0 and writer.pending == 3
        await upgrade_async(sqlite_url)
        await wait_until(lambda: writer.pending == 0, what="recovery")
        await writer.stop()
        assert [r["request_id"] for r in await fetch_rows(eng)] == [e.request_id for e in sent]
    finally:
        await eng.dispose()


@dataclass
class _Orig(Exception):
    sqlstate: str


def _asyncpg_client_error(cls: type[Exception]) -> sa.exc.DBAPIError:
    """An asyncpg client-side error as SQLAlchemy's asyncpg adapter raises it (InterfaceError, cause chained)."""
    cause = cls("invalid input for query argument $3: 99999999999 (value out of int32 range)")
    wrapped = sa.exc.InterfaceError("INSERT ...", {}, Exception("adapter"))
    wrapped.orig.__cause__ = cause  # type: ignore[union-attr]
    return wrapped


@pytest.mark.parametrize(
    ("exc", "blamed_on_rows"),
    [
        (sa.exc.IntegrityError("INSERT ...", {}, Exception("check")), True),
        (sa.exc.DataError("INSERT ...", {}, Exception("out of range")), True),
        (sa.exc.DBAPIError("INSERT ...", {}, _Orig("22021")), True),  # asyncpg: NUL in text, as generic Error
        (sa.exc.DBAPIError("INSERT ...", {}, _Orig("23514")), True),
        (sa.exc.StatementError("not JSON serialisable", "INSERT ...", {}, TypeError("x")), True),
        (_asyncpg_client_error(asyncpg.exceptions._base.DataError), True),
        (_asyncpg_client_error(asyncpg.exceptions._base.ClientConfigurationError), False),
        (sa.exc.OperationalError("INSERT ...", {}, ConnectionRefusedError()), False),
        (sa.exc.DBAPIError("INSERT ...", {}, _Orig("08006")), False),  # connection failure
        (sa.exc.ProgrammingError("INSERT ...", {}, _Orig("42P01")), False),  # undefined table
        (sa.exc.DBAPIError("INSERT ...", {}, _Orig("42501")), False),  # permission denied
        (OSError("network unreachable"), False),
        (TimeoutError(), False),
        (db_errors.UnhashableRow("JSONEncodeError"), True),
        (db_errors.ChainHeadMissing("no head"), False),  # not migrated: the database's state
        # Someone put a row at the head's next seq: the rows are fine, the chain is not. Never dropped.
        (sa.exc.IntegrityError("INSERT ...", {}, Exception('duplicate key value violates unique constraint '
                                                           '"ix_user_actions_seq"')), False),
        (sa.exc.IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: user_actions.seq")), False),
    ],
)
def test_only_content_errors_are_blamed_on_rows(exc: BaseException, blamed_on_rows: bool) -> None:
    assert is_row_error(exc) is blamed_on_rows


def test_error_descriptions_carry_no_row_contents() -> None:
    exc = _asyncpg_client_error(asyncpg.exceptions._base.DataError)
    exc.orig = exc.orig.__cause__  # type: ignore[assignment]
    described = db_errors.describe_error(exc)
    assert "99999999999" not in described and "query argument $3" in described
    stmt = sa.exc.IntegrityError("INSERT INTO user_actions ...", {"user_agent": "secret-ua"}, Exception("check"))
    assert db_errors.describe_error(stmt) == "check"


async def test_a_row_planted_at_the_next_seq_blocks_the_writer_loudly_but_loses_nothing(sqlite_url: str) -> None:
    """A seq conflict is the chain's state, not the rows': retried whole, never bisected and dropped."""
    await upgrade_async(sqlite_url)
    eng = create_engine(sqlite_url)
    writer = writer_for(eng, retry_max_seconds=0.05)
    try:
        writer.enqueue(event(0))
        await writer.start()
        await wait_until(lambda: writer.pending == 0, what="the first row")
        async with eng.begin() as conn:  # seq 2 taken behind the writer's back
            await conn.execute(user_actions.insert().values(
                timestamp=datetime.now(UTC), action_type="x", resource="/x", outcome="success",
                response_status=200, duration_ms=1.0, seq=2, prev_hash="0" * 64, row_hash="0" * 64))
        metrics = Metrics()
        sent = [event(i) for i in range(1, 4)]
        with capture_logs() as logs:
            for e in sent:
                writer.enqueue(e)
            await wait_until(lambda: metrics.delta()["failures"] >= 3, what="conflicting attempts")
        assert writer.pending == 3 and metrics.delta()["dropped"] == 0
        conflicts = [e for e in logs if e["event"] == "audit_chain_conflict"]
        assert conflicts and all(e["log_level"] == "error" and e["action"] == "retry" for e in conflicts)
        async with eng.begin() as conn:  # the operator removes the planted row
            await conn.execute(user_actions.delete().where(user_actions.c.request_id.is_(None)))
        await wait_until(lambda: writer.pending == 0, what="recovery")
        await writer.stop()
        rows = await fetch_rows(eng)
        assert [(r["seq"], r["request_id"]) for r in rows][1:] == [(i + 2, e.request_id) for i, e in enumerate(sent)]
    finally:
        await eng.dispose()
