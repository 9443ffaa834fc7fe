"""The audit writer: one background task moves audit rows from a bounded queue into ``user_actions``.

The request path only calls ``enqueue``, which never blocks or awaits; the
database is written in batches by one task per process (the design this
replaces ran four workers with four queues and lost a batch on any error).
The service runs this writer in a child process of its own by default
(``audit_process.AuditProcessWriter``), which keeps every guarantee below.

Guarantees
    A row ``enqueue`` accepted (returned True) is committed once; if the
    database is still down when ``stop()``'s shutdown timeout runs out, it is
    appended to the spool file instead, bound to that database, and the next
    ``start()`` connected to the same database commits it and only then deletes
    the file. A start connected to another database sets such rows aside and
    reports them (see *Spool*). The exceptions, each counted in
    ``audit_events_dropped_total`` and logged:

    - a row the database refuses for its own content is isolated and dropped
      (see *Bad rows*), with its ``request_id`` in the log;
    - with ``spool_path=None``, rows still unwritten at the shutdown timeout;
    - a row that cannot even be normalised (e.g. a timestamp that is neither a datetime nor a number).

    Not covered: a hard crash (SIGKILL, power loss) loses the rows in memory;
    an insert still in flight when ``stop()`` gives up is cancelled, and as it
    may have committed its rows are spooled too (they may appear twice, never
    zero times); a crash in the middle of a replay replays the file again.
    Several processes may share one spool path (see ``audit_spool``).

Spool
    With a spool, the writer first reads which database it writes into
    (``target.read_target``; retried like a batch while the database is down)
    and only then replays: segments bound to this database (or, if their writer
    never reached its database, to this location) are committed; any other is
    set aside beside the spool, never replayed here, and reported: one
    ``audit_spool_foreign`` warning per set-aside file, ``audit_spool_foreign_rows``
    and ``foreign_spool_rows``. ``replay_foreign=True`` (the reviewer's
    ``fastapi-lookout-audit replay``) commits every segment whatever its target.

Hash chain
    Every row gets ``seq``, ``prev_hash`` and ``row_hash`` (``fastapi_lookout/audit/chain.py``)
    inside the transaction that inserts it: the batch locks the one-row
    ``audit_chain_head`` (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the
    transaction's first statement is a write, which takes the database's write
    lock at once, as ``BEGIN IMMEDIATE`` would), numbers and hashes its rows
    after the head, inserts them, moves the head and commits. Writers in other
    processes queue on that lock, so seq is gap-free and commits in seq order;
    a failed attempt rolls back its numbers with its rows. A retried, bisected
    or replayed batch is simply numbered again when it finally commits.
    A conflict on ``seq`` (someone inserted a row at the head's next seq) is
    the database's state, not the rows': retried, never dropped, and loud.

Refusals
    ``enqueue`` refuses (returns False) when the queue is full or the writer
    is stopped: ``audit_events_dropped_total`` +1 per refused row, and a warning
    on ``app.audit`` at most every ``DROP_WARNING_INTERVAL_SECONDS`` carrying the
    count since the previous one (the rest is flushed by ``stop()``).
    A request never waits for the audit trail: ``enqueue`` is a few
    microseconds whether the row is taken or refused, the database up or down.
    The service test floods a full queue during an outage and requires every
    request to finish within 0.5 s (measured: 15 ms at worst, 2 ms median).

Bounds
    Memory: at most ``queue_max_size`` queued rows plus one batch being
    written (the spool is replayed one batch at a time). Each row is capped on
    the way in: ``request_data`` is redacted, and if its JSON exceeds
    ``request_data_max_bytes`` it becomes ``{"truncated": true, "size": n}``
    (kept as encoded bytes, so the cap is real); strings are cut to their
    column's length and TEXT columns to ``TEXT_MAX_CHARS``: 3,632 characters
    in all. Max memory = queue size x row cap, the row cap being
    ``request_data_max_bytes`` + 3,632 characters (1 byte each for Latin-1
    text, up to 4 for emoji) + ~1.7 KiB of object overhead: 9.4 KB measured
    with the defaults and ASCII text, so 10,000 rows take at most ~95 MB
    (~200 MB if every string is 4-byte text); typical rows are under 1 KiB.
    Time: ``stop()`` returns within ``shutdown_timeout_seconds`` + 2 x
    ``CANCEL_GRACE_SECONDS`` + the time to fsync the spool.
    Retries: backoff from ``RETRY_BASE_SECONDS`` doubling per failure, jittered
    down by up to half, capped at ``retry_max_seconds``; while running, retried
    for ever (an outage fills the queue; the excess is refused and counted).

Bad rows
    A failure is blamed on the batch's content, not the database's state, only
    when it is an integrity or data error (SQLAlchemy ``IntegrityError`` /
    ``DataError``, SQLSTATE class 22 or 23, a value the driver cannot encode).
    A row the chain cannot hash counts as such an error too.
    Such an error is deterministic, so retrying the same batch cannot succeed:
    the batch is bisected at once, halves that commit are done, and a single
    row that still fails is dropped (``audit_row_rejected``, logged with its
    ``request_id``, no contents). Any other error (connection refused,
    timeout, missing table, permission denied) is the database's state: the
    batch is retried whole and never split, so neither an outage nor a schema
    problem drops rows. NUL characters, which PostgreSQL refuses, are replaced
    on the way in so that a client cannot get its own audit row dropped.
    The price of this policy: a schema that refuses every row on an integrity
    check would drop rows one by one (each logged); the migration drift test
    (tests/test_migrations.py) is what keeps the schema module and the database equal.

Call ``enqueue`` from the event loop's thread (the wake-up ``asyncio.Event`` is
not thread-safe). ``audit_queue_size`` reports ``pending`` of the writer that last
accepted a row or moved its backlog: one writer per process.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from fastapi_lookout.audit.chain import Hasher, canonical_fields
from fastapi_lookout.audit.db_errors import (
    UnhashableRow,
    describe_error,
    is_row_error,
    is_seq_conflict,
)
from fastapi_lookout.audit.defaults import (
    BATCH_SIZE,
    BATCH_TIMEOUT_SECONDS,
    QUEUE_MAX_SIZE,
    RETRY_MAX_SECONDS,
    SHUTDOWN_TIMEOUT_SECONDS,
)
from fastapi_lookout.audit.event import AuditEvent
from fastapi_lookout.audit.rows import normalise_row
from fastapi_lookout.audit.schema import audit_chain_head
from fastapi_lookout.audit.spool import Chunk, Row, Spool, SpoolFile
from fastapi_lookout.audit.store import insert_rows, lock_head
from fastapi_lookout.audit.target import Target, location_of, read_target
from fastapi_lookout.metrics import (
    AUDIT_BATCH_DURATION,
    AUDIT_CHAIN_HEAD_SEQ,
    AUDIT_EVENTS_DROPPED,
    AUDIT_EVENTS_SPOOLED,
    AUDIT_EVENTS_WRITTEN,
    AUDIT_LAST_WRITE,
    AUDIT_QUEUE,
    AUDIT_SPOOL_FOREIGN_ROWS,
    AUDIT_WRITE_FAILURES,
    DB_QUERY_DURATION,
)

__all__ = ["AuditWriter", "DropWarnings", "WriterMetrics", "log_task_crash", "note_head_seq", "save_rows"]

DROP_WARNING_INTERVAL_SECONDS: Final = 5.0
RETRY_BASE_SECONDS: Final = 0.1
CANCEL_GRACE_SECONDS: Final = 0.5
"""How long ``stop()`` lets an insert begun before the deadline finish before cancelling it."""
YIELD_EVERY_ROWS: Final = 100
"""The writer hands the event loop back to requests after this many rows of canonical encoding or
hashing (~0.3 ms of CPU), instead of holding it for a whole batch's."""

log = structlog.get_logger("app.audit")


class _ShutdownExpired(Exception):
    """The shutdown deadline passed while the database was still failing."""


class WriterMetrics:
    """What the writer reports about the rows it handles: here, this process's metrics.

    The writer process (``audit_process``) records these calls instead and
    replays them in the app's process, whose ``/metrics`` is the one scraped.
    """

    spool_target: Target | None = None
    """The database the writer found it writes into (what its spooled rows are bound to)."""
    foreign_spool_rows = 0

    def written(self, rows: int, seconds: float, head_seq: int, at: float) -> None:
        note_head_seq(head_seq)
        AUDIT_BATCH_DURATION.observe(seconds)
        DB_QUERY_DURATION.labels("audit_insert").observe(seconds)
        AUDIT_EVENTS_WRITTEN.inc(rows)
        AUDIT_LAST_WRITE.set(at)

    def write_failed(self) -> None:
        AUDIT_WRITE_FAILURES.inc()

    def dropped(self, rows: int) -> None:
        AUDIT_EVENTS_DROPPED.inc(rows)

    def spooled(self, rows: int) -> None:
        AUDIT_EVENTS_SPOOLED.inc(rows)

    def spool_bound(self, target: Target) -> None:
        self.spool_target = target

    def spool_foreign(self, rows: int) -> None:
        """Rows in set-aside spool files (bound to other databases), as found at start."""
        self.foreign_spool_rows = rows
        AUDIT_SPOOL_FOREIGN_ROWS.set(rows)

    def settled(self, rows: int) -> None:
        """``rows`` taken from the queue are done with (committed or rejected), in the order they were queued."""


class DropWarnings:
    """Refused rows: each counted at once, logged at most one warning per interval with the count since the last."""

    def __init__(self, metrics: WriterMetrics, queue_max_size: int) -> None:
        self._metrics = metrics
        self._queue_max = queue_max_size
        self._unreported: dict[str, int] = {}  # reason -> rows refused since the last warning
        self._last = -math.inf

    def refuse(self, reason: str, pending: int) -> None:
        self._metrics.dropped(1)
        self._unreported[reason] = self._unreported.get(reason, 0) + 1
        self.warn(pending)

    def warn(self, pending: int, force: bool = False) -> None:
        """Floods stay one line per interval; ``force`` (at shutdown) flushes the rest."""
        if not self._unreported:
            return
        now = time.monotonic()
        if force or now - self._last >= DROP_WARNING_INTERVAL_SECONDS:
            log.warning(
                "audit_events_dropped",
                dropped=sum(self._unreported.values()),
                reasons=dict(self._unreported),
                queue_max_size=self._queue_max,
                pending=pending,
            )
            self._unreported.clear()
            self._last = now


class AuditWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        spool_path: str | Path | None,
        queue_max_size: int = QUEUE_MAX_SIZE,
        batch_size: int = BATCH_SIZE,
        batch_timeout_seconds: float = BATCH_TIMEOUT_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
        shutdown_timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS,
        request_data_max_bytes: int = 4096,
        hmac_key: str | bytes | None = None,
        metrics: WriterMetrics | None = None,
        replay_foreign: bool = False,
    ) -> None:
        if queue_max_size < 1 or batch_size < 1:
            raise ValueError("queue_max_size and batch_size must be at least 1")
        self._engine = engine
        self._metrics = metrics or WriterMetrics()
        self._drops = DropWarnings(self._metrics, queue_max_size)
        self._queue: deque[Row] = deque()
        self._queue_max = queue_max_size
        self._wakeup = asyncio.Event()
        """Set by ``enqueue`` when the writer waits for a first row or a batch is full, and by ``stop()``."""
        self._waiting_for_first = False
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout_seconds
        self._retry_max = retry_max_seconds
        self._shutdown_timeout = shutdown_timeout_seconds
        self._request_data_max_bytes = request_data_max_bytes
        self._spool = Spool(spool_path) if spool_path else None
        self._target = Target(location_of(engine.url))  # the location only, until the database is reached
        self._replay_foreign = replay_foreign
        self._hasher = Hasher(hmac_key)

        # The batch being committed, possibly bisected; rows leave only once committed or rejected.
        self._parts: deque[list[Row]] = deque()
        self._in_flight = 0
        self._replaying: list[SpoolFile] = []
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        self._deadline: float | None = None  # loop time; set by stop()
        self._stopping: asyncio.Future[None] | None = None
        self._closed = False
        self._replayed = False  # rows settle in queue order only once the spool's rows are through

    # --- public interface ---------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows accepted but not yet committed: queued plus the batch being written."""
        return len(self._queue) + self._in_flight

    @property
    def foreign_spool_rows(self) -> int:
        """Rows spooled for other databases, kept beside the spool for a reviewer (as found at start)."""
        return self._metrics.foreign_spool_rows

    def enqueue(self, event: AuditEvent) -> bool:
        """Queue one row for writing; False (counted, never raised) when it is refused."""
        queue = self._queue
        if self._closed or len(queue) >= self._queue_max:
            self._drops.refuse("writer_stopped" if self._closed else "queue_full", self.pending)
            return False
        try:
            row = normalise_row(event, self._request_data_max_bytes)
        except Exception as exc:  # the request must not fail because its audit row is malformed
            self._metrics.dropped(1)
            log.error("audit_event_invalid", request_id=event.request_id, error_type=type(exc).__name__)
            return False
        queue.append(row)
        if self._waiting_for_first or len(queue) >= self._batch_size:
            self._wakeup.set()
        AUDIT_QUEUE.accepted(self)
        return True

    async def start(self) -> None:
        """Claim the spool for replay, then start the batching task (which replays it first)."""
        if self._closed or self._stop_requested.is_set():
            raise RuntimeError("an AuditWriter cannot be restarted; create a new one")
        if self._task is not None:
            return
        if self._spool is not None:
            try:
                self._replaying = await asyncio.to_thread(self._spool.claim)
            except OSError as exc:  # the service still starts; the spool stays on disk for the next start
                log.error("audit_spool_unreadable", path=str(self._spool.path), error=str(exc))
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        self._task.add_done_callback(log_task_crash)

    async def stop(self) -> None:
        """Write everything accepted; past the shutdown timeout, spool what the database would not take."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    # --- the batching task ----------------------------------------------------
    async def _run(self) -> None:
        try:
            if self._spool is not None:
                await self._identify()
                await self._replay()
            self._replayed = True
            while await self._collect():
                await self._commit_parts()
                self._drops.warn(self.pending)
        except _ShutdownExpired:
            pass

    async def _collect(self) -> bool:
        """Start the next batch: up to batch_size rows, or what arrived within batch_timeout of the first.

        The writer sleeps until a first row arrives, then until the batch is full or
        batch_timeout has passed: a few wake-ups per batch, never one per row.
        Returns False when stop() was called and nothing is left to write.
        """
        batch: list[Row] = []
        self._parts.append(batch)  # rows count as in flight as soon as they leave the queue
        if not self._queue:
            await self._wait(first=True, timeout=None)
        if self._queue and len(self._queue) < self._batch_size:
            await self._wait(first=False, timeout=self._batch_timeout)
        # No await from here on: a cancellation cannot catch rows between the queue and the batch.
        take = min(len(self._queue), self._batch_size)
        batch.extend(self._queue.popleft() for _ in range(take))
        self._in_flight += take
        if not batch:
            self._parts.pop()
        return bool(batch)

    async def _wait(self, *, first: bool, timeout: float | None) -> None:
        """Until ``enqueue`` or ``stop()`` sets the wake-up (first row / full batch / stop), or ``timeout``."""
        if self._stop_requested.is_set():
            return
        self._wakeup.clear()
        self._waiting_for_first = first
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            pass
        finally:
            self._waiting_for_first = False

    async def _commit_parts(self) -> None:
        """Commit ``_parts``: transient errors retried with backoff, row errors bisected."""
        failures = 0
        while self._parts:
            part = self._parts[0]
            try:
                await self._insert(part)
            except Exception as exc:
                self._metrics.write_failed()
                failures += 1
                row_error = is_row_error(exc)
                # Bisection fails ~2*log2(n) times per bad row: only its first failure is an error line.
                level = log.error if failures == 1 or not row_error else log.debug
                level(
                    "audit_chain_conflict" if is_seq_conflict(exc) else "audit_write_failed",
                    error_type=type(exc).__name__,
                    error=describe_error(exc),
                    rows=len(part),
                    attempt=failures,
                    pending=self.pending,
                    action="isolate" if row_error else "retry",
                )
                if row_error:
                    self._isolate_bad_rows(exc)
                else:
                    self._drops.warn(self.pending)
                    await self._backoff(failures)
            else:
                self._parts.popleft()
                self._in_flight -= len(part)
                AUDIT_QUEUE.report(self)
                if self._replayed:
                    self._metrics.settled(len(part))

    async def _insert(self, rows: list[Row]) -> None:
        """Lock the chain head, number and hash the rows after it, insert them, move the head: one transaction.

        Hashing and encoding hand the loop back every ``YIELD_EVERY_ROWS`` rows, so requests
        are not held up behind a whole batch's CPU work."""
        started = time.perf_counter()
        encoded: list[bytes] = []
        for chunk in range(0, len(rows), YIELD_EVERY_ROWS):  # the costly part of the hash, before the lock
            if chunk:
                await asyncio.sleep(0)  # let requests run between chunks: a batch never holds the loop for long
            try:
                encoded.extend([canonical_fields(row) for row in rows[chunk:chunk + YIELD_EVERY_ROWS]])
            except (TypeError, ValueError) as exc:  # JSON or text the canonical encoding refuses
                raise UnhashableRow(type(exc).__name__) from exc
        async with self._engine.begin() as conn:
            seq, prev_hash = await lock_head(conn)
            chain: list[tuple[int, str, str]] = []
            chain_hash = self._hasher.chain_hash
            for i, fields in enumerate(encoded):
                if i and not i % YIELD_EVERY_ROWS:
                    await asyncio.sleep(0)
                seq += 1
                row_hash = chain_hash(fields, seq, prev_hash)
                chain.append((seq, prev_hash, row_hash))
                prev_hash = row_hash
            await insert_rows(conn, rows, chain)
            await conn.execute(
                audit_chain_head.update().where(audit_chain_head.c.id == 1).values(seq=seq, row_hash=prev_hash)
            )
        self._metrics.written(len(rows), time.perf_counter() - started, seq, time.time())

    def _isolate_bad_rows(self, exc: BaseException) -> None:
        """Split the failing part in two, or drop it if it is a single row."""
        part = self._parts.popleft()
        if len(part) > 1:
            middle = len(part) // 2
            self._parts.extendleft((part[middle:], part[:middle]))
            return
        self._in_flight -= 1
        self._metrics.dropped(1)
        AUDIT_QUEUE.report(self)
        if self._replayed:
            self._metrics.settled(1)
        log.error(
            "audit_row_rejected",
            request_id=part[0].get("request_id"),
            error_type=type(exc).__name__,
            error=describe_error(exc),
        )

    async def _backoff(self, failures: int) -> None:
        delay = min(self._retry_max, RETRY_BASE_SECONDS * 2 ** min(failures - 1, 32))
        delay *= random.uniform(0.5, 1.0)
        if self._deadline is None:
            # Woken early by stop(): shutdown should not sit out a long backoff.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)
            return
        loop = asyncio.get_running_loop()
        remaining = self._deadline - loop.time()
        if remaining <= 0:
            raise _ShutdownExpired
        await asyncio.sleep(min(delay, remaining))
        if self._deadline - loop.time() <= 0:
            raise _ShutdownExpired

    async def _identify(self) -> None:
        """Read which database this is (what spooled rows are bound to); retried while the database is down."""
        failures = 0
        while True:
            try:
                self._target = await read_target(self._engine)
            except Exception as exc:
                self._metrics.write_failed()
                failures += 1
                log.error("audit_write_failed", error_type=type(exc).__name__, error=describe_error(exc), rows=0,
                          attempt=failures, pending=self.pending, action="retry", step="identify_database")
                await self._backoff(failures)
            else:
                self._metrics.spool_bound(self._target)
                return

    async def _replay(self) -> None:
        """Commit the claimed files' rows bound to this database; set the others aside; report what is aside.

        Each file is deleted only once all of its rows are committed or set aside."""
        assert self._spool is not None  # files are only claimed with a spool
        own = {self._target.key, self._target.located().key}
        for spool_file in list(self._replaying):
            if await self._replay_file(spool_file, own):
                await asyncio.to_thread(self._spool.finish, spool_file)
            else:  # unreadable: left on disk for a later start
                self._spool.release(spool_file)
            self._replaying.remove(spool_file)
        if not self._replay_foreign:
            await self._report_foreign()

    async def _replay_file(self, spool_file: SpoolFile, own: set[str]) -> bool:
        """Feed one file's own rows through the normal commit path a chunk at a time; False if it became unreadable."""
        assert self._spool is not None
        replayed = set_aside = 0
        while True:
            try:
                chunk = await asyncio.to_thread(spool_file.read, self._batch_size)
            except OSError as exc:
                log.error("audit_spool_unreadable", path=str(spool_file.path), error=str(exc))
                return False
            if not chunk.lines:  # read() only comes back empty at the end of the file
                break
            if self._replay_foreign or (chunk.target is not None and chunk.target.key in own):
                replayed += await self._commit_chunk(spool_file, chunk)
                continue
            try:
                await asyncio.to_thread(self._spool.set_aside, chunk)
            except OSError as exc:
                log.error("audit_spool_unwritable", path=str(self._spool.foreign_path(chunk.target)), error=str(exc))
                return False
            spool_file.advance(chunk)
            set_aside += len(chunk.lines)
        log.info("audit_spool_replayed", path=str(spool_file.path), rows=replayed, set_aside=set_aside)
        return True

    async def _commit_chunk(self, spool_file: SpoolFile, chunk: Chunk) -> int:
        rows, bad = chunk.rows()
        spool_file.advance(chunk)  # these rows are ours now: in _parts below, or counted as bad
        if bad:
            self._metrics.dropped(bad)
            log.error("audit_spool_lines_malformed", path=str(spool_file.path), lines=bad)
        if rows:
            self._parts.append(rows)
            self._in_flight += len(rows)
            AUDIT_QUEUE.report(self)
            await self._commit_parts()
        return len(rows)

    async def _report_foreign(self) -> None:
        """Every set-aside file beside the spool: a warning each, and their rows in one gauge."""
        assert self._spool is not None
        try:
            found = await asyncio.to_thread(self._spool.foreign)
        except OSError as exc:
            log.error("audit_spool_unreadable", path=str(self._spool.path.parent), error=str(exc))
            return
        for segments in found:
            log.warning(
                "audit_spool_foreign", path=str(segments.path), rows=segments.total,
                spooled_for="; ".join("unbound (spooled before spools named their database)" if t is None
                                      else t.describe() for t, _ in segments.rows),
                database=self._target.describe(),
                action="kept, not replayed here: after review, fastapi-lookout-audit replay --spool "
                       f"{segments.path} --database-url <its database>",
            )
        self._metrics.spool_foreign(sum(segments.total for segments in found))

    # --- shutdown ---------------------------------------------------------------
    async def _stop(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._shutdown_timeout
        self._stop_requested.set()
        self._wakeup.set()
        if self._task is None:  # never started: drain all the same (no spool was claimed)
            self._task = asyncio.create_task(self._run(), name="audit-writer-drain")
        task = self._task
        done, _ = await asyncio.wait({task}, timeout=self._shutdown_timeout + CANCEL_GRACE_SECONDS)
        if not done:
            log.warning("audit_write_cancelled_at_shutdown", rows=self._in_flight)
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
        self._closed = True  # from here on enqueue refuses: nothing can slip in after the leftovers are taken
        leftovers = [row for part in self._parts for row in part]
        leftovers.extend(self._queue)
        self._queue.clear()
        self._parts.clear()
        self._in_flight = 0
        tails, self._replaying = self._replaying, []
        if leftovers or tails:
            await save_rows(self._spool, leftovers, self._target, self._metrics, tails=tails,
                            reason_without_spool="database unavailable and no spool_path")
        AUDIT_QUEUE.report(self)
        self._drops.warn(self.pending, force=True)


async def save_rows(
    spool: Spool | None, rows: list[Row], target: Target, metrics: WriterMetrics, *,
    tails: Sequence[SpoolFile] = (), reason_without_spool: str,
) -> None:
    """Rows the database could not take by shutdown: into the spool, bound to ``target`` (with ``tails``,
    the unreplayed rest of claimed files), or, with no spool or a failed write, counted as dropped and logged."""
    if spool is None:
        metrics.dropped(len(rows))
        log.error("audit_rows_lost", rows=len(rows), reason=reason_without_spool)
        return
    try:
        count = await asyncio.to_thread(spool.append, rows, target, tails)
    except OSError as exc:
        metrics.dropped(len(rows))
        log.error("audit_rows_lost", rows=len(rows), reason="spool write failed", error=str(exc))
        for tail in tails:  # still on disk, unlocked: a later start adopts them
            tail.close()
        return
    metrics.spooled(count)
    log.warning("audit_rows_spooled", rows=count, path=str(spool.path), database=target.describe())


_head_seen = 0


def note_head_seq(seq: int) -> None:
    """``audit_chain_head_seq`` only moves forward: the writer and the verifier both report what they saw."""
    global _head_seen
    if seq > _head_seen:
        _head_seen = seq
        AUDIT_CHAIN_HEAD_SEQ.set(seq)


def log_task_crash(task: asyncio.Task[None]) -> None:
    """The task is not meant to die before stop(); if it does, say so (stop() still spools the rows)."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("audit_writer_crashed", error_type=type(exc).__name__, error=str(exc))
