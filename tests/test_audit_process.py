"""The audit writer process: real child processes writing into SQLite and PostgreSQL.

Each test starts ``AuditProcessWriter`` (which starts ``python -m
fastapi_lookout.audit.process_child``) and checks what reaches the table,
the spool and this process's metrics, including when the child is killed,
frozen, or outlives its app.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from app.migrations import upgrade_async
from fastapi_lookout.audit import process as audit_process
from fastapi_lookout.audit.chain import ChainWalk, Hasher
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.process import AuditProcessWriter
from fastapi_lookout.audit.process_child import Acknowledgements
from fastapi_lookout.audit.spool import survey
from fastapi_lookout.audit.target import read_target
from fastapi_lookout.redaction import REDACTED
from tests.test_audit_faults import DownDatabase, down_db, rename_table, spooled_request_ids  # noqa: F401 - fixture
from tests.test_audit_writer import (  # noqa: F401 - the URL fixtures and `engine` are fixtures
    TEST_WRITER_OPTIONS,
    Metrics,
    database_url,
    engine,
    event,
    fetch_rows,
    postgres_url,
    queue_gauge,
    sqlite_engine,
    sqlite_url,
    wait_until,
    writer_for,
)

ROOT = Path(__file__).resolve().parents[1]
KEY = "process-writer-test-key"


_started: list[AuditProcessWriter] = []


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test() -> Iterator[None]:
    """A failed test can leave its writer unstopped: its child must not retry on into the next test."""
    yield
    while _started:
        process = _started.pop()._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


def process_writer(url: str, **overrides: Any) -> AuditProcessWriter:
    writer = AuditProcessWriter(url, **{**TEST_WRITER_OPTIONS, **overrides})
    _started.append(writer)
    return writer


def child_pid(writer: AuditProcessWriter) -> int:
    assert writer._process is not None
    return writer._process.pid


def varied_events(n: int) -> list[Any]:
    """Rows that exercise every path of the normalisation the child does."""
    events = []
    for i in range(n):
        fields: dict[str, Any] = {}
        if i % 5 == 0:
            fields["request_data"] = {"name": f"n{i}", "password": "hunter2", "nested": [1, 2.0, None]}
        if i % 7 == 0:
            fields["user_agent"] = "x\x00y" + "z" * 600  # NUL replaced, cut to the column's 512
        if i % 11 == 0:
            fields["error_message"] = f"failed with token Bearer abc.def.ghi{i}"
        if i % 13 == 0:
            fields["username"] = "Zoë \ud800"  # non-ASCII and a lone surrogate
        events.append(event(i, user_id=f"u{i % 4}", user_roles="reader,writer", **fields))
    return events


CONTENT = ("timestamp", "user_id", "username", "user_roles", "action_type", "resource", "outcome", "ip_address",
           "user_agent", "request_id", "request_data", "response_status", "error_message", "duration_ms")


# --- the protocol's bookkeeping, without processes ----------------------------------
def test_acknowledgements_count_a_refused_row_as_settled_only_after_the_rows_before_it() -> None:
    sent: list[tuple[int, list[Any]]] = []

    class Stream:
        def write(self, data: bytes) -> None:
            sent.append(pickle.loads(data[audit_process._HEADER.size:]))

    async def scenario() -> None:
        acks = Acknowledgements(Stream(), base=40)  # type: ignore[arg-type]
        for queued in (True, False, True, False):  # rows 40..43; 41 and 43 refused by the writer
            acks.received(queued)
        assert acks.upto == 40  # 41 is settled, but 40 is not
        acks.dropped(2)
        acks.settled(1)
        assert acks.upto == 42
        acks.settled(1)
        assert acks.upto == 44
        await asyncio.sleep(0)
        acks.send(everything=True)

    asyncio.run(scenario())
    # One acknowledgement per loop iteration (with the metric calls made meanwhile), then the final one.
    assert sent == [(44, [("dropped", (2,))]), (44, [])]


async def test_a_partly_settled_frame_is_resent_from_its_first_unsettled_row() -> None:
    writer = process_writer("sqlite+aiosqlite:///unused.db")
    events = [event(i) for i in range(5)]
    for e in events[:3]:
        assert writer.enqueue(e)
    writer._flush()
    for e in events[3:]:
        assert writer.enqueue(e)
    writer._flush()
    assert writer.pending == 5
    writer._settle(2)  # the child settled rows 0 and 1 of the first frame
    assert writer.pending == 3
    resent = [values for payload in writer._unsettled_payloads() for values in pickle.loads(payload)]
    assert [v[audit_process._REQUEST_ID] for v in resent] == [e.request_id for e in events[2:]]
    writer._settle(3)
    assert len(writer._frames) == 1  # the first frame is done with
    writer._settle(1)  # an older acknowledgement arriving late changes nothing
    assert writer.pending == 2


# --- through a real child ----------------------------------------------------------
async def test_rows_are_stored_as_the_in_process_writer_stores_them(engine: AsyncEngine, database_url: str) -> None:
    """The same events through both writers into one table: every stored column equal, one chain."""
    events = varied_events(150)
    reference = writer_for(engine, hmac_key=KEY)
    await reference.start()
    assert all(reference.enqueue(e) for e in events)
    await reference.stop()

    metrics = Metrics()
    writer = process_writer(database_url, hmac_key=KEY, batch_size=40)
    await writer.start()
    for i, e in enumerate(events):
        assert writer.enqueue(e)
        if i % 10 == 9:
            await asyncio.sleep(0)  # ten rows per loop iteration, as under load
    await wait_until(lambda: writer.pending == 0, what="the child to commit every row")
    assert queue_gauge() == 0
    await writer.stop()

    stored = await fetch_rows(engine)
    assert len(stored) == 2 * len(events)
    expected, through_child = stored[:len(events)], stored[len(events):]
    assert [{k: r[k] for k in CONTENT} for r in through_child] == [{k: r[k] for k in CONTENT} for r in expected]
    walk = ChainWalk(Hasher(KEY))
    assert all(walk.feed(r) is None for r in stored) and walk.count == len(stored)
    assert all("hunter2" not in str(r["request_data"]) for r in stored)
    assert through_child[0]["request_data"]["password"] == REDACTED
    delta = metrics.delta()  # the child's metric updates, applied here
    assert delta["enqueued"] == delta["written"] == len(events)
    assert delta["dropped"] == delta["failures"] == 0
    assert delta["batches"] == delta["db_inserts"] >= len(events) / 40


async def test_a_row_the_child_cannot_normalise_is_counted_and_does_not_hold_the_others(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    metrics = Metrics()
    writer = process_writer(sqlite_url, batch_size=100, batch_timeout_seconds=2.0)
    await writer.start()
    good = [event(1), event(3)]
    sent = [good[0], event(2, timestamp="not a timestamp"), good[1]]
    assert all(writer.enqueue(e) for e in sent)  # the app does not look: the child refuses it
    await wait_until(lambda: metrics.delta()["dropped"] == 1, what="the child to refuse row 1")
    assert writer.pending == 3  # row 1 is settled, but row 0 before it is still in the batch window
    await wait_until(lambda: writer.pending == 0, what="the batch")
    await writer.stop()
    assert [r["request_id"] for r in await fetch_rows(sqlite_engine)] == [e.request_id for e in good]
    delta = metrics.delta()
    assert (delta["enqueued"], delta["written"], delta["dropped"]) == (3, 2, 1)


async def test_fields_of_any_type_reach_the_child_as_the_in_process_writer_would_store_them(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    """Objects that do not pickle, or whose class the child could not import, must not cost rows."""

    class LocalText(str):  # a class the child cannot import
        pass

    class Outcome(str, enum.Enum):  # noqa: UP042 - deliberately: its str() is "Outcome.SUCCESS"
        SUCCESS = "success"

    writer = process_writer(sqlite_url)
    await writer.start()
    lock = threading.Lock()
    sent = [
        event(1),
        event(2, user_agent=lock, user_id=LocalText("u-2"), outcome=Outcome.SUCCESS,
              response_status=HTTPStatus.CREATED, timestamp=LocalTime(2025, 3, 4, 5, 6, 7, 89)),
        event(3),
    ]
    assert all(writer.enqueue(e) for e in sent)
    await writer.stop()
    stored = await fetch_rows(sqlite_engine)
    assert [r["request_id"] for r in stored] == [e.request_id for e in sent]
    assert (stored[1]["user_agent"], stored[1]["user_id"], stored[1]["outcome"], stored[1]["response_status"]) == (
        str(lock), "u-2", "success", 201)
    assert stored[1]["timestamp"].replace(tzinfo=UTC) == datetime(2025, 3, 4, 5, 6, 7, 89, tzinfo=UTC)


async def test_a_field_that_cannot_even_be_shown_costs_only_its_own_row(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    metrics = Metrics()
    writer = process_writer(sqlite_url)
    await writer.start()
    sent = [event(1), event(2, username=Hostile()), event(3)]
    assert all(writer.enqueue(e) for e in sent)  # all in one frame
    await writer.stop()
    assert [r["request_id"] for r in await fetch_rows(sqlite_engine)] == [sent[0].request_id, sent[2].request_id]
    assert metrics.delta()["dropped"] == 1 and writer.pending == 0


class LocalTime(datetime):
    """A datetime subclass (as libraries make): sent as the instant it names."""


def test_rows_accepted_before_any_loop_runs_are_counted_and_written_by_stop(sqlite_url: str) -> None:
    asyncio.run(upgrade_async(sqlite_url))
    metrics = Metrics()
    writer = process_writer(sqlite_url)
    sent = [event(i) for i in range(3)]
    assert all(writer.enqueue(e) for e in sent)  # no event loop yet
    assert writer.pending == 3 and metrics.delta()["enqueued"] == 3

    async def stop_and_read() -> list[str]:
        await writer.stop()  # never started: a child all the same
        engine = create_engine(sqlite_url)
        try:
            return [r["request_id"] for r in await fetch_rows(engine)]
        finally:
            await engine.dispose()

    assert asyncio.run(stop_and_read()) == [e.request_id for e in sent]
    assert metrics.delta()["written"] == 3 and writer.pending == 0


async def test_the_queue_bound_counts_rows_the_child_has_not_settled(down_db: DownDatabase) -> None:
    metrics = Metrics()
    writer = process_writer(down_db.url, queue_max_size=5, retry_max_seconds=0.05)
    await writer.start()
    first = [event(i) for i in range(12)]
    assert [writer.enqueue(e) for e in first] == [True] * 5 + [False] * 7
    await wait_until(lambda: metrics.delta()["failures"] >= 3, what="the child's retries")
    assert writer.pending == 5 and queue_gauge() == 5  # nothing settles while the database is down
    assert metrics.delta()["dropped"] == 7
    await down_db.bring_up()
    await wait_until(lambda: writer.pending == 0, what="recovery")
    assert writer.enqueue(event(99))
    await writer.stop()
    assert len(await fetch_rows(down_db.engine)) == 6


async def test_a_killed_child_is_restarted_and_every_unsettled_row_is_written_once(down_db: DownDatabase) -> None:
    writer = process_writer(down_db.url, retry_max_seconds=0.05)
    with capture_logs() as logs:
        await writer.start()
        sent = [event(i) for i in range(30)]
        assert all(writer.enqueue(e) for e in sent[:20])
        await wait_until(lambda: writer._process is not None and Metrics._read()["failures"] > 0, what="a retry")
        first = child_pid(writer)
        os.kill(first, signal.SIGKILL)  # with 20 rows received, none written
        assert all(writer.enqueue(e) for e in sent[20:])  # accepted while no child runs
        await wait_until(lambda: writer.restarts == 1 and writer._stream is not None, what="a new child")
        assert child_pid(writer) != first and writer.pending == 30
        await down_db.bring_up()
        await wait_until(lambda: writer.pending == 0, what="the new child to write")
        await writer.stop()
    assert [r["request_id"] for r in await fetch_rows(down_db.engine)] == [e.request_id for e in sent]
    exits = [entry for entry in logs if entry["event"] == "audit_writer_process_exited"]
    assert len(exits) == 1 and exits[0]["exit_code"] == -signal.SIGKILL and exits[0]["pending"] == 30


async def test_stop_with_the_database_down_spools_in_the_child_and_a_new_writer_replays(
    down_db: DownDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    metrics = Metrics()
    writer = process_writer(down_db.url, spool_path=spool, shutdown_timeout_seconds=0.5, retry_max_seconds=0.05)
    await writer.start()
    sent = [event(i) for i in range(10)]
    assert all(writer.enqueue(e) for e in sent)
    await writer.stop()
    assert writer.pending == 0 and queue_gauge() == 0
    assert spooled_request_ids(spool) == [e.request_id for e in sent]
    assert metrics.delta()["spooled"] == 10 and metrics.delta()["dropped"] == 0
    assert not writer.enqueue(event(11))  # stopped: refused and counted

    await down_db.bring_up()
    again = process_writer(down_db.url, spool_path=spool)
    await again.start()
    await wait_until(lambda: metrics.delta()["written"] == 10, what="the replay")
    await again.stop()
    assert [r["request_id"] for r in await fetch_rows(down_db.engine)] == [e.request_id for e in sent]
    assert not spool.exists()


async def test_a_frozen_child_is_killed_at_the_stop_bound_and_the_app_spools_its_rows(
    down_db: DownDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_process, "STOP_MARGIN_SECONDS", 0.5)
    spool = tmp_path / "spool.jsonl"
    metrics = Metrics()
    writer = process_writer(down_db.url, spool_path=spool, shutdown_timeout_seconds=0.2)
    await writer.start()
    await wait_until(lambda: writer._stream is not None, what="the child")
    sent = [event(i) for i in range(8)]
    assert all(writer.enqueue(e) for e in sent)
    await asyncio.sleep(0.1)
    os.kill(child_pid(writer), signal.SIGSTOP)  # alive, never answering
    began = time.monotonic()
    with capture_logs() as logs:
        await writer.stop()
    assert time.monotonic() - began < 0.2 + 2 * audit_process.CANCEL_GRACE_SECONDS + 0.5 + 2
    assert any(entry["event"] == "audit_writer_process_unresponsive" for entry in logs)
    assert spooled_request_ids(spool) == [e.request_id for e in sent]
    assert metrics.delta()["spooled"] == 8 and writer.pending == 0


async def test_rows_the_app_spools_for_a_dead_child_are_bound_to_the_database_the_child_found(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child reads which database it writes into; the app, spooling for it, binds the rows to that."""
    monkeypatch.setattr(audit_process, "STOP_MARGIN_SECONDS", 0.5)
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        await rename_table(engine, "user_actions", "user_actions_away")  # reachable, but no insert succeeds
        spool = tmp_path / "spool.jsonl"
        metrics = Metrics()
        writer = process_writer(sqlite_url, spool_path=spool, shutdown_timeout_seconds=0.2)
        await writer.start()
        sent = [event(i) for i in range(4)]
        assert all(writer.enqueue(e) for e in sent)
        await wait_until(lambda: metrics.delta()["failures"] >= 1, what="an insert failing")
        os.kill(child_pid(writer), signal.SIGSTOP)
        await writer.stop()
        assert metrics.delta()["spooled"] == 4 and spooled_request_ids(spool) == [e.request_id for e in sent]
        assert survey(spool).rows == [(await read_target(engine), 4)]
    finally:
        await engine.dispose()


def test_a_child_whose_app_dies_writes_every_row_it_was_sent(sqlite_url: str, tmp_path: Path) -> None:
    """The app process is SIGKILLed with rows handed over but unwritten: the child writes them and exits."""
    asyncio.run(upgrade_async(sqlite_url))
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_audit_writer import event
        from tests.test_audit_process import process_writer

        async def main():
            writer = process_writer({sqlite_url!r}, batch_size=1000, batch_timeout_seconds=60)
            await writer.start()
            while writer._stream is None:
                await asyncio.sleep(0.01)
            for i in range(50):
                writer.enqueue(event(i, request_id=f"orphan-{{i}}"))
            await asyncio.sleep(0.2)  # frames sent; the child's batch waits for its 60 s timeout
            print(writer._process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
    """))
    app = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert app.returncode == -signal.SIGKILL, app.stderr
    orphan = int(app.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _alive(orphan):
        assert time.monotonic() < deadline, "the child did not exit after its app died"
        time.sleep(0.05)

    async def stored() -> list[str]:
        engine = create_engine(sqlite_url)
        try:
            return [r["request_id"] for r in await fetch_rows(engine)]
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == [f"orphan-{i}" for i in range(50)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent is gone, so init reaps it) counts as exited.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- signals to the whole process group --------------------------------------------------------
GROUP_STOP_APP = """
import asyncio, signal, sys, time
sys.path.insert(0, {root!r})
from fastapi_lookout.audit import AuditEvent
from fastapi_lookout.audit.process import AuditProcessWriter

async def main():
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # the app's own shutdown, as uvicorn's
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    writer = AuditProcessWriter({url!r}, queue_max_size=1000, batch_size=100, batch_timeout_seconds=0.05,
                                retry_max_seconds=0.2, shutdown_timeout_seconds=5.0, spool_path={spool!r})
    for i in range({rows}):
        writer.enqueue(AuditEvent(timestamp=time.time(), action_type="a", resource="/r", outcome="success",
                                  response_status=200, duration_ms=1.0, request_id=f"{prefix}-{{i}}"))
    await writer.start()
    while writer._process is None:
        await asyncio.sleep(0)
    print("child", writer._process.pid, flush=True)
    await stop.wait()
    await writer.stop()
    print("stopped restarts", writer.restarts, "pending", writer.pending, flush=True)

asyncio.run(main())
"""
_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _ignores_sigterm(pid: int) -> bool:
    """Whether the process has reached the point where it ignores SIGTERM itself (``process_child.main``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & _SIGTERM_BIT)
    raise AssertionError("no SigIgn line")


def test_a_signal_to_the_whole_group_while_the_writer_starts_loses_and_spools_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    """Ctrl-C or a systemd stop signals every process of the service, the writer included, at any point of
    its start-up: the app stops it in order and every row reaches the database, which is up all along."""
    asyncio.run(upgrade_async(postgres_url))
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    delays = [0.0, 0.0, 0.003, 0.03, *(rng.uniform(0.0, 1.2) for _ in range(3))]
    spool = tmp_path / "spool.jsonl"
    rows, landed_before_main = 40, 0
    for n, delay in enumerate(delays):
        signum = signal.SIGINT if n == 1 else signal.SIGTERM
        prefix = f"group-{n}"
        script = GROUP_STOP_APP.format(root=str(ROOT), url=postgres_url, spool=str(spool), rows=rows, prefix=prefix)
        with subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as app:
            try:
                assert app.stdout is not None
                first = app.stdout.readline()
                assert first.startswith("child "), first + app.stdout.read()
                time.sleep(delay)
                landed_before_main += not _ignores_sigterm(int(first.split()[1]))
                os.killpg(app.pid, signum)  # the app and its writer alike
                output = first + app.stdout.read()
                assert app.wait(60) == 0, output
            finally:
                if app.poll() is None:
                    os.killpg(app.pid, signal.SIGKILL)
        where = f"seed {seed}, run {n}, {signum.name} {delay * 1000:.0f} ms after the spawn:\n{output[-3000:]}"
        assert "stopped restarts 0 pending 0" in output, where
        assert "audit_writer_process_exited" not in output, where
        assert not spool.exists() and not list(tmp_path.iterdir()), where  # nothing spooled
        assert sorted(_stored_ids(postgres_url, prefix)) == sorted(f"{prefix}-{i}" for i in range(rows)), where
    assert landed_before_main >= 2, "no signal reached a writer still starting up: the test proved nothing"


def _stored_ids(url: str, prefix: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(url)
        try:
            return [r["request_id"] for r in await fetch_rows(engine) if r["request_id"].startswith(f"{prefix}-")]
        finally:
            await engine.dispose()

    return asyncio.run(read())


async def test_a_child_that_dies_once_stop_has_begun_is_not_restarted_and_the_app_spools_its_rows(
    down_db: DownDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    metrics = Metrics()
    writer = process_writer(down_db.url, spool_path=spool, shutdown_timeout_seconds=3.0, retry_max_seconds=0.05)
    await writer.start()
    sent = [event(i) for i in range(6)]
    assert all(writer.enqueue(e) for e in sent)
    await wait_until(lambda: writer._process is not None and metrics.delta()["failures"] >= 1, what="a retry")
    first = child_pid(writer)
    with capture_logs() as logs:
        stopping = asyncio.ensure_future(writer.stop())
        await asyncio.sleep(0.3)  # the child is retrying within its 3 s shutdown timeout
        os.kill(first, signal.SIGKILL)
        began = time.monotonic()
        await stopping
    assert time.monotonic() - began < 1.5  # spooled at once, not at the stop bound
    assert writer.restarts == 0 and child_pid(writer) == first
    exits = [entry for entry in logs if entry["event"] == "audit_writer_process_exited"]
    assert [(e["exit_code"], e["action"]) for e in exits] == [(-signal.SIGKILL, "spool")]
    assert spooled_request_ids(spool) == [e.request_id for e in sent]
    assert metrics.delta()["spooled"] == 6 and writer.pending == 0
