"""The audit spool: rows the database could not take by shutdown, kept on disk until a start
connected to *that* database commits them.

Format: JSON Lines, each append fsynced. Each append begins with a header line
naming the database its rows are meant for, ``{"spool_target": {...}}`` (see
``target.py``), followed by one ``user_actions`` row per line, without ``id``
and the hash-chain columns, which the database and the chain assign when the
row is finally committed. A header and its rows are a *segment*. Lines before
any header come from before spools named their target: they are *unbound*
(``{"spool_target": null}`` once copied on) and never replayed automatically.

A writer replays only the segments bound to its own database. It *sets aside*
every other one, header and all, in ``<spool>.foreign-<target key>`` beside
the spool: never replayed automatically, reported at each start (``foreign``),
and moved on purpose, after a reviewer's decision, by
``fastapi-lookout-audit replay --spool FILE --database-url URL``.

Several processes may share one spool path (``uvicorn --workers N`` with one
settings file), so:

- ``append`` and ``set_aside`` run under an exclusive ``flock`` of the spool's
  directory: lines of two workers stopping together never interleave, and a
  torn last line left by a crash is closed before new lines follow it;
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
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from fastapi_lookout.audit.chain import CHAIN_COLUMNS
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.target import UNBOUND, Target, location_of

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


_HEADER_PREFIX: Final = b'{"spool_target":'


def header_line(target: Target | None) -> bytes:
    return orjson.dumps({"spool_target": None if target is None else target.as_json()}) + b"\n"


def parse_header(line: bytes) -> tuple[bool, Target | None]:
    """(True, the segment's target; None: unbound) for a header line; (False, None) for any other line."""
    if not line.startswith(_HEADER_PREFIX):
        return False, None
    try:
        named = orjson.loads(line)["spool_target"]
        return True, None if named is None else Target.from_json(named)
    except (ValueError, TypeError, KeyError):  # a torn header: a malformed line like any other
        return False, None


def _terminated(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive row lines of one segment, as read: not decoded, so a foreign chunk is set aside verbatim."""

    target: Target | None
    """The database these rows are bound to; None: unbound (written before spools named one)."""
    lines: list[bytes]
    end: int
    """File offset after these lines."""

    def rows(self) -> tuple[list[Row], int]:
        """The decoded rows and the number of malformed lines."""
        rows: list[Row] = []
        bad = 0
        for line in self.lines:
            try:
                rows.append(decode_row(line))
            except (ValueError, TypeError, KeyError):
                bad += 1
        return rows, bad


@dataclass(frozen=True, slots=True)
class Segments:
    """What one spool file holds: rows per target, in the order the targets first appear."""

    path: Path
    rows: list[tuple[Target | None, int]]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.rows)


def survey(path: Path) -> Segments:
    """Count the rows of ``path`` per target (one pass, nothing decoded but the headers)."""
    counts: dict[str, tuple[Target | None, int]] = {}
    target: Target | None = None
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            is_header, named = parse_header(line)
            if is_header:
                target = named
                continue
            key = UNBOUND if target is None else target.key
            counts[key] = (target, counts.get(key, (target, 0))[1] + 1)
    return Segments(path, list(counts.values()))


def default_spool_path(directory: str | Path, service: str, database_url: str) -> Path:
    """``<directory>/audit-spool-<service>-<hash of the database's location>.jsonl``.

    Two services, or one service pointed at two databases, never share a spool
    by default; the workers of one service (same name, same database) do, as they should.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", service).strip("-.") or "service"
    return Path(directory) / f"audit-spool-{name}-{Target(location_of(database_url)).key[:12]}.jsonl"


class SpoolFile:
    """A claimed spool file: locked by this process, read a chunk at a time."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.handle = handle
        self.offset = 0
        """Bytes consumed: rows before it are in memory, committed or set aside; ``advance`` moves it."""
        self.target: Target | None = None
        """The target of the segment at ``offset`` (None before any header: unbound)."""
        self._io = threading.Lock()

    def read(self, limit: int) -> Chunk:
        """Up to ``limit`` row lines from ``offset``, all of one segment; empty only at the end of the file.

        Does not move ``offset``: the caller does (``advance``) once the rows are
        safely in its hands, so a read abandoned half-way loses nothing.
        """
        lines: list[bytes] = []
        with self._io:
            self.handle.seek(self.offset)
            target, end = self.target, self.offset
            while len(lines) < limit:
                line = self.handle.readline()
                if not line:
                    break
                if line.strip():
                    is_header, named = parse_header(line)
                    if is_header and lines:  # the next segment: this chunk ends before its header
                        break
                    if is_header:
                        target = named
                    else:
                        lines.append(line)
                end = self.handle.tell()
            return Chunk(target, lines, end)

    def advance(self, chunk: Chunk) -> None:
        self.offset, self.target = chunk.end, chunk.target

    def copy_rest(self, out: BinaryIO) -> int:
        """Append the unconsumed lines to ``out``, headed by their segment's target; returns how many rows."""
        count = 0
        headed = False  # the rest starts mid-segment unless its first line is a header
        with self._io:
            self.handle.seek(self.offset)
            for line in self.handle:
                if not line.strip():
                    continue
                if parse_header(line)[0]:
                    headed = True
                elif not headed:
                    out.write(header_line(self.target))
                    headed = True
                    count += 1
                else:
                    count += 1
                out.write(_terminated(line))
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

    @staticmethod
    def _close_torn_line(out: BinaryIO) -> None:
        if out.tell() > 0:
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":  # a writer died mid-line: do not glue our first line to it
                out.write(b"\n")

    def append(self, rows: Sequence[Row], target: Target, tails: Sequence[SpoolFile] = ()) -> int:
        """Append ``rows`` bound to ``target`` and the unconsumed rest of ``tails``, fsync, then delete the tails.

        Returns the number of rows now in the spool because of this call.
        """
        with self._directory_locked() as dir_fd, open(self.path, "ab+") as out:
            self._close_torn_line(out)
            if rows:
                out.write(header_line(target) + b"".join(encode_row(r) for r in rows))
            count = len(rows) + sum(t.copy_rest(out) for t in tails)
            out.flush()
            os.fsync(out.fileno())
            for tail in tails:
                tail.path.unlink(missing_ok=True)
                tail.close()
            os.fsync(dir_fd)
        return count

    def foreign_path(self, target: Target | None) -> Path:
        return self.path.with_name(f"{self.path.name}.foreign-{UNBOUND if target is None else target.key}")

    def set_aside(self, chunk: Chunk) -> Path:
        """Keep a chunk bound to another database (or unbound) in its ``.foreign-<key>`` file, fsynced."""
        path = self.foreign_path(chunk.target)
        with self._directory_locked() as dir_fd, open(path, "ab+") as out:
            self._close_torn_line(out)
            out.write(header_line(chunk.target) + b"".join(_terminated(line) for line in chunk.lines))
            out.flush()
            os.fsync(out.fileno())
            os.fsync(dir_fd)
        return path

    def foreign(self) -> list[Segments]:
        """The set-aside files beside this spool, surveyed; also one a reviewer's replay has claimed
        (``.foreign-<key>.replay-<random>``): if that replay died, it is where the rows now wait."""
        if not self.path.parent.is_dir():
            return []
        found = []
        for path in sorted(self.path.parent.glob(f"{self.path.name}.foreign-*")):
            try:
                found.append(survey(path))
            except FileNotFoundError:  # replayed by a reviewer meanwhile
                continue
        return found

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
