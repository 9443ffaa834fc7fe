"""The audit spool: rows the database could not take by shutdown, kept on disk until a later start commits them.

Format: JSON Lines, one ``user_actions`` row per line, each append fsynced;
without ``id`` and the hash-chain columns, which the database and the chain
assign when the row is finally committed. Several processes may share one spool path (``uvicorn
--workers N`` with one settings file), so:

- ``append`` runs under an exclusive ``flock`` of the spool's directory: lines
  of two workers stopping together never interleave, and a torn last line left
  by a crash is closed before new lines follow it;
- ``claim`` renames the spool to ``<name>.replay-<random>`` under the same lock
  and keeps that file ``flock``-ed while replaying it, so no two processes
  replay the same rows. A claimed file whose lock is free belongs to a process
  that died mid-replay; the next ``claim`` adopts it.

Blocking file I/O throughout: the writer calls these through
``asyncio.to_thread``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from fastapi_lookout.audit.chain import CHAIN_COLUMNS
from fastapi_lookout.audit.schema import user_actions

Row = dict[str, Any]
"""One ``user_actions`` row minus ``id`` and chain columns; ``request_data`` is its JSON encoding (bytes) or None."""

COLUMNS: Final = tuple(  # plain str: orjson keys
    str(c.name) for c in user_actions.columns if c.name != "id" and c.name not in CHAIN_COLUMNS
)


def encode_row(row: Row) -> bytes:
    data = row.get("request_data")
    return orjson.dumps({**row, "request_data": None if data is None else orjson.Fragment(data)}) + b"\n"


def decode_row(line: bytes) -> Row:
    """Inverse of ``encode_row``; raises ValueError/TypeError on a line that is not a row."""
    raw = orjson.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("spool line is not a JSON object")
    row: Row = {name: raw.get(name) for name in COLUMNS}
    row["timestamp"] = datetime.fromisoformat(raw["timestamp"])
    data = raw.get("request_data")
    row["request_data"] = None if data is None else orjson.dumps(data)
    return row


class SpoolFile:
    """A claimed spool file: locked by this process, read a batch at a time."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.handle = handle
        self.offset = 0
        """Bytes consumed: rows before it are in memory or committed; the writer advances it."""
        self._io = threading.Lock()

    def read(self, limit: int) -> tuple[list[Row], int, int]:
        """Up to ``limit`` rows from ``offset``: (rows, malformed line count, offset after them).

        Does not move ``offset``: the caller does once the rows are safely in
        its hands, so a read abandoned half-way loses nothing.
        """
        rows: list[Row] = []
        bad = 0
        with self._io:
            self.handle.seek(self.offset)
            while len(rows) < limit:
                line = self.handle.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    rows.append(decode_row(line))
                except (ValueError, TypeError, KeyError):
                    bad += 1
            return rows, bad, self.handle.tell()

    def copy_rest(self, out: BinaryIO) -> int:
        """Append the unconsumed lines to ``out``; returns how many."""
        count = 0
        with self._io:
            self.handle.seek(self.offset)
            for line in self.handle:
                if line.strip():
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    count += 1
        return count

    def close(self) -> None:
        self.handle.close()  # releases the flock


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _directory_locked(self) -> Iterator[int]:
        """Exclusive lock of the spool's directory; yields its fd (also used to fsync renames)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def append(self, rows: Sequence[Row], tails: Sequence[SpoolFile] = ()) -> int:
        """Append ``rows`` and the unconsumed rest of ``tails``, fsync, then delete the tails.

        Returns the number of rows now in the spool because of this call.
        """
        with self._directory_locked() as dir_fd, open(self.path, "ab+") as out:
            if out.tell() > 0:
                out.seek(-1, os.SEEK_END)
                if out.read(1) != b"\n":  # a writer died mid-line: do not glue our first row to it
                    out.write(b"\n")
            out.write(b"".join(encode_row(r) for r in rows))
            count = len(rows) + sum(t.copy_rest(out) for t in tails)
            out.flush()
            os.fsync(out.fileno())
            for tail in tails:
                tail.path.unlink(missing_ok=True)
                tail.close()
            os.fsync(dir_fd)
        return count

    def claim(self) -> list[SpoolFile]:
        """Take the spool (and any replay abandoned by a dead process) for this process to replay."""
        if not self.path.parent.is_dir():
            return []
        claimed: list[SpoolFile] = []
        with self._directory_locked() as dir_fd:
            if self.path.exists():
                target = self.path.with_name(f"{self.path.name}.replay-{uuid.uuid4().hex[:12]}")
                os.rename(self.path, target)
                os.fsync(dir_fd)
            for candidate in sorted(self.path.parent.glob(f"{self.path.name}.replay-*")):
                handle = self._lock_if_free(candidate)
                if handle is not None:
                    claimed.append(SpoolFile(candidate, handle))
        return claimed

    @staticmethod
    def _lock_if_free(path: Path) -> BinaryIO | None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - held open (and locked) for the whole replay
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another live process is replaying it
            handle.close()
            return None
        return handle

    def finish(self, spool_file: SpoolFile) -> None:
        """Every row of ``spool_file`` is committed: delete it (under the lock, so no one adopts it meanwhile)."""
        with self._directory_locked() as dir_fd:
            spool_file.path.unlink(missing_ok=True)
            spool_file.close()
            os.fsync(dir_fd)

    def release(self, spool_file: SpoolFile) -> None:
        """Give a claimed file up unfinished (e.g. unreadable): it stays on disk for a later claim."""
        spool_file.close()
