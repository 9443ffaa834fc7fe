"""The audit writer in a process of its own: a request pays for handing its row over, nothing more.

``AuditProcessWriter`` has ``AuditWriter``'s interface (``enqueue``, ``start``,
``stop``, ``pending``) and its guarantees, but the work behind ``enqueue`` —
normalising and redacting the row, the hash chain, COPY, transactions,
retries, the spool — runs in a child process (``audit_process_child``) that
runs an ``AuditWriter``. On a machine with a core to spare the app's
event loop no longer pays for it (``benchmarks/instructions.py`` counts both
processes).

The request path
    ``enqueue`` takes the event's fields as one tuple (one C call), plus the
    ``request_data`` JSON if there is one (encoded and capped here, so that
    only bytes cross over), and appends it to a list. Once per event-loop
    iteration the list is pickled and written to a socket pair as one frame:
    about 0.2 µs per row with the middleware's epoch-seconds timestamp (a
    ``datetime`` takes 1 µs to pickle). Measured under callgrind on 32
    connections: +18k instructions per audited request in the app's process,
    where the writer in the app's loop cost +98k (``benchmarks/results/latest.md``).

Acknowledgements
    The child reports, after every commit, how many of the rows it was sent
    are settled (committed, rejected as bad rows, or refused and counted):
    every row before that index, in the order they were sent. The app keeps
    each frame until all its rows are settled, so ``pending`` is what the
    child has not settled plus the rows not yet sent, and ``enqueue`` refuses
    (counted, logged) once that reaches ``queue_max_size``, exactly like the
    in-process writer. The child's metric updates (rows written, batch
    durations, failures, drops, spooled rows, the chain head) travel with its
    acknowledgements and are applied to this process's metrics, the ones
    ``/metrics`` serves; its log lines go to the same stdout.

When the child dies
    The app logs ``audit_writer_process_exited`` and starts another child
    (backoff from ``RESTART_BASE_SECONDS``, doubling, capped at
    ``retry_max_seconds``), which is sent every unsettled row again. A row the
    dead child committed without acknowledging it is written twice: at least
    once, never zero times, as with the in-process writer's spool. If the app
    dies, the child sees its socket close and writes (or spools) everything it
    was sent before exiting: a hard crash of the app loses at most the rows
    of its last event-loop iteration, where the in-process writer lost its
    whole queue.

Memory
    The app holds each unsettled row once, pickled (a few hundred bytes
    plus its ``request_data`` JSON); the child holds it normalised, within
    ``AuditWriter``'s per-row cap. Both are bounded by ``queue_max_size``.

Shutdown
    ``stop()`` sends the buffered rows and a stop frame; the child's
    ``AuditWriter.stop()`` commits or spools everything within its shutdown
    timeout and the child exits. If the child cannot finish (it died, or hung
    past ``shutdown_timeout_seconds`` + ``STOP_MARGIN_SECONDS``), it is killed
    and the app spools the unsettled rows itself (with ``spool_path=None``
    they are counted as dropped and logged), bound to the database the child
    found (``spool_bound``, sent with its acknowledgements), else to the URL's
    location. Once ``stop()`` has begun no child is started again: a child
    that dies during shutdown leaves its unsettled rows to be spooled here.

    The child cannot be killed by SIGINT or SIGTERM, from its first instruction
    on (``process_spawn``): a Ctrl-C or a systemd stop that signals every process
    of the service stops the app, which stops the child in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import structlog

from fastapi_lookout.audit.defaults import (
    BATCH_SIZE,
    BATCH_TIMEOUT_SECONDS,
    QUEUE_MAX_SIZE,
    RETRY_MAX_SECONDS,
    SHUTDOWN_TIMEOUT_SECONDS,
)
from fastapi_lookout.audit.event import FIELD_NAMES, AuditEvent, event_from_values, event_values
from fastapi_lookout.audit.process_spawn import spawn_shielded, wait_exit
from fastapi_lookout.audit.rows import EncodedJSON, encode_request_data, normalise_row
from fastapi_lookout.audit.spool import Spool
from fastapi_lookout.audit.target import Target, location_of
from fastapi_lookout.audit.writer import CANCEL_GRACE_SECONDS, DropWarnings, WriterMetrics, log_task_crash, save_rows
from fastapi_lookout.metrics import AUDIT_QUEUE

__all__ = ["AuditProcessWriter"]

RESTART_BASE_SECONDS: Final = 0.5
STOP_MARGIN_SECONDS: Final = 5.0
"""Beyond the child's own bound (shutdown timeout + 2 x cancel grace), time for it to fsync the spool and exit."""

CONFIG, ROWS, STOP, ACK = b"C", b"R", b"S", b"A"
_HEADER: Final = struct.Struct("!Ic")

_REQUEST_DATA, _REQUEST_ID = FIELD_NAMES.index("request_data"), FIELD_NAMES.index("request_id")
_APP_ROOT: Final = str(Path(__file__).resolve().parents[2])

log = structlog.get_logger("app.audit")


_AS_IS: Final = frozenset({tuple, list, dict, bytes, datetime, timezone, timedelta, EncodedJSON})
_CLASSES: Final = frozenset({str, int, float, bool, bytes, datetime, timezone, timedelta, EncodedJSON})


class _RowPickler(pickle.Pickler):
    """Pickles rows so that the writer process can always load them: builtin values, ``datetime`` and
    ``EncodedJSON`` as they are (the C pickler does not even ask about str, int, float, None and bool);
    a subclass of str/int/float as its plain value, a datetime subclass as epoch seconds, and anything
    else (an object that would not pickle, or would need a class the child cannot import) as its
    ``str()``, which is what the writer stores for a text column anyway."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _AS_IS or (kind is type and obj in _CLASSES):
            return NotImplemented
        if isinstance(obj, str):
            return str, (str.__str__(obj),)
        if isinstance(obj, int) and not isinstance(obj, bool):
            return int, (int.__index__(obj),)
        if isinstance(obj, float):
            return float, (float.__float__(obj),)
        if isinstance(obj, datetime):
            return float, ((obj if obj.tzinfo else obj.replace(tzinfo=UTC)).timestamp(),)
        return str, (str(obj),)


class RowDumper:
    """One pickler, reused: making one costs more than pickling a row (1.4 µs against 0.2)."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = _RowPickler(self._buffer, protocol=5)

    def __call__(self, rows: list[tuple[Any, ...]]) -> bytes:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._pickler.clear_memo()
        self._pickler.dump(rows)
        return buffer.getvalue()


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return _HEADER.pack(len(payload), kind) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next frame; ``asyncio.IncompleteReadError`` when the other side has gone."""
    size, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return kind, await reader.readexactly(size)


class AuditProcessWriter:
    def __init__(
        self,
        database_url: str,
        *,
        spool_path: str | Path | None,
        queue_max_size: int = QUEUE_MAX_SIZE,
        batch_size: int = BATCH_SIZE,
        batch_timeout_seconds: float = BATCH_TIMEOUT_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
        shutdown_timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS,
        request_data_max_bytes: int = 4096,
        hmac_key: str | None = None,
        log_settings: dict[str, Any] | None = None,
    ) -> None:
        if queue_max_size < 1 or batch_size < 1:
            raise ValueError("queue_max_size and batch_size must be at least 1")
        self._config: dict[str, Any] = {  # the child's first frame: over the socket, never in argv or env
            "database_url": database_url,
            "writer": {
                "queue_max_size": queue_max_size, "batch_size": batch_size,
                "batch_timeout_seconds": batch_timeout_seconds, "retry_max_seconds": retry_max_seconds,
                "shutdown_timeout_seconds": shutdown_timeout_seconds,
                "spool_path": str(spool_path) if spool_path else None,
                "request_data_max_bytes": request_data_max_bytes, "hmac_key": hmac_key,
            },
            "logging": log_settings or {},
        }
        self._queue_max = queue_max_size
        self._request_data_max_bytes = request_data_max_bytes
        self._retry_max = retry_max_seconds
        self._shutdown_timeout = shutdown_timeout_seconds
        self._spool = Spool(spool_path) if spool_path else None
        self._location = Target(location_of(database_url))
        self._metrics = WriterMetrics()
        self._drops = DropWarnings(self._metrics, queue_max_size)

        self._buffer: list[tuple[Any, ...]] = []  # this loop iteration's rows
        self._dump = RowDumper()
        self._frames: deque[tuple[int, int, bytes]] = deque()  # (first row index, rows, pickled rows), unsettled
        self._total = 0  # rows moved from the buffer into frames: indices 0 .. _total - 1
        self._settled = 0  # every row before this index is settled
        self._flush_scheduled = False
        self._closed = False
        self._stream: asyncio.StreamWriter | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._stop_requested = False
        self._stop_event = asyncio.Event()  # wakes the supervisor from a restart backoff
        self.restarts = 0
        """Children started after the first (each one logged)."""

    # --- public interface ---------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows accepted but not yet settled by the writer process (committed, rejected or spooled)."""
        return len(self._buffer) + self._total - self._settled

    @property
    def foreign_spool_rows(self) -> int:
        """Rows spooled for other databases, kept beside the spool for a reviewer (as the child found at start)."""
        return self._metrics.foreign_spool_rows

    def enqueue(self, event: AuditEvent) -> bool:
        """Hand one row to the writer process; False (counted, never raised) when it is refused."""
        if self._closed or len(self._buffer) + self._total - self._settled >= self._queue_max:
            self._drops.refuse("writer_stopped" if self._closed else "queue_full", self.pending)
            return False
        values = event_values(event)
        if values[_REQUEST_DATA] is not None:  # bytes cross over, not whatever objects a body decoded to
            try:
                encoded = encode_request_data(values[_REQUEST_DATA], self._request_data_max_bytes)
            except Exception as exc:
                self._metrics.dropped(1)
                log.error("audit_event_invalid", request_id=event.request_id, error_type=type(exc).__name__)
                return False
            values = (*values[:_REQUEST_DATA], EncodedJSON(encoded or b"null"), *values[_REQUEST_DATA + 1:])
        self._buffer.append(values)
        AUDIT_QUEUE.accepted(self)
        if not self._flush_scheduled:
            try:
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:  # no loop running (yet): start() or stop() sends it
                return True
            self._flush_scheduled = True
        return True

    async def start(self) -> None:
        """Start the writer process (it replays the spool first) and keep one running until ``stop()``."""
        if self._stopping is not None:
            raise RuntimeError("an AuditProcessWriter cannot be restarted; create a new one")
        if self._supervisor is None:
            self._start_supervisor()

    def _start_supervisor(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="audit-writer-process")
        self._supervisor.add_done_callback(log_task_crash)

    async def stop(self) -> None:
        """Settle everything accepted: written by the child, or spooled (by the child, or here if it cannot)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    # --- handing rows over ------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        try:
            payload = self._dump(rows)
        except Exception:  # an object whose str() raises: only its own row is lost
            rows = self._dumpable(rows)
            payload = self._dump(rows)
        self._frames.append((self._total, len(rows), payload))
        self._total += len(rows)
        if self._stream is not None:
            self._stream.write(frame(ROWS, payload))

    def _dumpable(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        kept = []
        for values in rows:
            try:
                self._dump([values])
            except Exception as exc:
                self._metrics.dropped(1)
                log.error("audit_event_invalid", request_id=str(values[_REQUEST_ID]), error_type=type(exc).__name__)
            else:
                kept.append(values)
        return kept

    def _settle(self, upto: int) -> None:
        """The child settled every row before ``upto``: frames wholly before it are done."""
        if upto <= self._settled:
            return
        self._settled = upto
        frames = self._frames
        while frames and frames[0][0] + frames[0][1] <= upto:
            frames.popleft()
        AUDIT_QUEUE.report(self)

    def _unsettled_payloads(self) -> list[bytes]:
        """Every unsettled row, as frames' payloads (the first cut where the child settled part of it)."""
        payloads = []
        for first, _count, payload in self._frames:
            if first < self._settled:
                payload = self._dump(pickle.loads(payload)[self._settled - first:])
            payloads.append(payload)
        return payloads

    # --- the child ----------------------------------------------------------------
    async def _supervise(self) -> None:
        """One child at a time: started, fed, and restarted with backoff if it dies before ``stop()``."""
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                reader = await self._spawn()
            except OSError as exc:
                log.error("audit_writer_process_failed_to_start", error=str(exc))
            else:
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    while True:
                        kind, payload = await read_frame(reader)
                        if kind == ACK:
                            self._acknowledge(payload)
                stream, self._stream = self._stream, None
                if stream is not None:
                    stream.close()
                assert self._process is not None
                code = await wait_exit(self._process)
                if self._stop_requested:  # shutting down: never a new child; stop() spools what is unsettled
                    if code != 0:
                        log.error("audit_writer_process_exited", exit_code=code, pending=self.pending, action="spool")
                    return
                log.error("audit_writer_process_exited", exit_code=code, pending=self.pending, action="restart")
            if self._stop_requested:
                return
            failures = 1 if loop.time() - began > 60 else failures + 1
            delay = min(self._retry_max, RESTART_BASE_SECONDS * 2 ** min(failures - 1, 16))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), delay)
            if self._stop_requested:  # leave the rows to stop(), which spools them
                return
            self.restarts += 1

    async def _spawn(self) -> asyncio.StreamReader:
        ours, theirs = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # its metrics travel here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_APP_ROOT, env.get("PYTHONPATH"))))
        try:
            self._process = spawn_shielded(
                (sys.executable, "-m", "fastapi_lookout.audit.process_child", str(theirs.fileno())),
                pass_fds=(theirs.fileno(),), env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, stream = await asyncio.open_unix_connection(sock=ours)
        self._flush()  # rows accepted before any loop ran
        stream.write(frame(CONFIG, pickle.dumps({**self._config, "base": self._settled}, protocol=5)))
        for payload in self._unsettled_payloads():  # a restarted child gets everything not yet settled
            stream.write(frame(ROWS, payload))
        if self._stop_requested:
            stream.write(frame(STOP))
        self._stream = stream
        return reader

    def _acknowledge(self, payload: bytes) -> None:
        upto, calls = pickle.loads(payload)
        metrics = self._metrics
        for name, args in calls:
            getattr(metrics, name)(*args)
        self._settle(upto)

    # --- shutdown ---------------------------------------------------------------
    async def _stop(self) -> None:
        if self._supervisor is None:  # never started: a child all the same, to write what was accepted
            self._start_supervisor()
        assert self._supervisor is not None
        self._flush()
        self._stop_requested = True
        self._stop_event.set()
        self._closed = True  # nothing is accepted after the stop frame
        if self._stream is not None:
            self._stream.write(frame(STOP))
        bound = self._shutdown_timeout + 2 * CANCEL_GRACE_SECONDS + STOP_MARGIN_SECONDS
        done, _ = await asyncio.wait({self._supervisor}, timeout=bound)
        if not done:
            log.error("audit_writer_process_unresponsive", pending=self.pending, action="kill")
            if self._process is not None and self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=CANCEL_GRACE_SECONDS)
        if self._stream is not None:
            self._stream.close()
        leftovers = [values for payload in self._unsettled_payloads() for values in pickle.loads(payload)]
        self._frames.clear()
        self._settled = self._total
        if leftovers:
            await self._save(leftovers)
        AUDIT_QUEUE.report(self)
        self._drops.warn(self.pending, force=True)

    async def _save(self, leftovers: Sequence[tuple[Any, ...]]) -> None:
        """The child could not settle these: spool them here, as its ``stop()`` would have."""
        rows = []
        for values in leftovers:
            try:
                rows.append(normalise_row(event_from_values(values), self._request_data_max_bytes))
            except Exception as exc:  # as the child's enqueue would have: counted, logged, not fatal
                self._metrics.dropped(1)
                log.error("audit_event_invalid", request_id=values[_REQUEST_ID], error_type=type(exc).__name__)
        await save_rows(self._spool, rows, self._metrics.spool_target or self._location, self._metrics,
                        reason_without_spool="writer process failed and no spool_path")
