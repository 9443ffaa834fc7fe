"""The writer process behind ``AuditProcessWriter``: ``python -m fastapi_lookout.audit.process_child FD``.

Reads frames from the socket ``FD`` (its config, then rows, then a stop),
feeds every row to an ``AuditWriter`` and acknowledges, after each change,
the index below which every row it was sent is settled, with the metric
updates made since the last acknowledgement. On the stop frame, or when the
app's end of the socket closes, it stops the writer (commit or spool all)
and exits. See ``audit_process`` for the protocol's guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import sys
from collections import deque
from typing import Any

import structlog

from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.event import event_from_values
from fastapi_lookout.audit.process import ACK, CONFIG, ROWS, STOP, frame, read_frame
from fastapi_lookout.audit.process_spawn import unshield
from fastapi_lookout.audit.target import Target
from fastapi_lookout.audit.writer import AuditWriter, WriterMetrics
from fastapi_lookout.logging import configure_logging
from fastapi_lookout.logging import flush as flush_logs

log = structlog.get_logger("app.audit")


class Acknowledgements(WriterMetrics):
    """Records the writer's metric calls and which rows are settled; sends both once per loop iteration."""

    def __init__(self, stream: asyncio.StreamWriter, base: int) -> None:
        self._stream = stream
        self._next = base  # index of the next row to arrive
        self._queued: deque[int] = deque()  # indices of the rows in the writer's queue, oldest first
        self._calls: list[tuple[str, tuple[Any, ...]]] = []
        self._scheduled = False

    @property
    def upto(self) -> int:
        """Every row before this index is settled (rows settle in queue order; refused rows at once)."""
        return self._queued[0] if self._queued else self._next

    def received(self, queued: bool) -> None:
        if queued:
            self._queued.append(self._next)
        self._next += 1
        if not queued:
            self._schedule()

    def settled(self, rows: int) -> None:
        popleft = self._queued.popleft
        for _ in range(rows):
            popleft()
        self._schedule()

    def written(self, rows: int, seconds: float, head_seq: int, at: float) -> None:
        self._record("written", rows, seconds, head_seq, at)

    def write_failed(self) -> None:
        self._record("write_failed")

    def dropped(self, rows: int) -> None:
        self._record("dropped", rows)

    def spooled(self, rows: int) -> None:
        self._record("spooled", rows)

    def spool_bound(self, target: Target) -> None:
        self._record("spool_bound", target)

    def spool_foreign(self, rows: int) -> None:
        self._record("spool_foreign", rows)

    def _record(self, name: str, *args: Any) -> None:
        self._calls.append((name, args))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.send)

    def send(self, *, everything: bool = False) -> None:
        """``everything``: after the writer's stop, all rows received are settled (committed or spooled)."""
        self._scheduled = False
        calls, self._calls = self._calls, []
        upto = self._next if everything else self.upto
        with contextlib.suppress(ConnectionError, RuntimeError):  # the app is gone: nobody to tell
            self._stream.write(frame(ACK, pickle.dumps((upto, calls), protocol=5)))


def _enqueue(writer: AuditWriter, metrics: WriterMetrics, values: tuple[Any, ...]) -> bool:
    try:
        event = event_from_values(values)
    except (TypeError, ValueError) as exc:  # not a row of this version's fields: counted, and the child lives on
        metrics.dropped(1)
        log.error("audit_event_invalid", error_type=type(exc).__name__, fields=len(values))
        return False
    return writer.enqueue(event)


async def run(fd: int) -> None:
    reader, stream = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    kind, payload = await read_frame(reader)
    if kind != CONFIG:
        raise SystemExit(f"expected the config frame, got {kind!r}")
    config = pickle.loads(payload)
    configure_logging(**config["logging"])
    acks = Acknowledgements(stream, config["base"])
    engine = create_engine(config["database_url"])
    writer = AuditWriter(engine, **config["writer"], metrics=acks)
    await writer.start()
    try:
        while True:
            try:
                kind, payload = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the app is gone: write what it sent, then exit
            if kind == STOP:
                break
            if kind == ROWS:
                for values in pickle.loads(payload):
                    acks.received(_enqueue(writer, acks, values))
    finally:
        await writer.stop()
        acks.send(everything=True)
        with contextlib.suppress(ConnectionError):
            await stream.drain()
        stream.close()
        await engine.dispose()
        flush_logs()


def main() -> None:
    # The app stops this process in order (a stop frame); a signal to the whole process group must not.
    # SIGINT and SIGTERM have been blocked since before exec (process_spawn): ignoring them now discards any
    # that arrived during start-up, so the imports above could take as long as they like.
    unshield()
    asyncio.run(run(int(sys.argv[1])))


if __name__ == "__main__":
    main()
