"""The audit hash chain: one canonical encoding of a ``user_actions`` row and the hash linking it to the row before.

Pure code, no I/O. The writer (which assigns the chain), the migration that
chains rows written before it, the app's periodic verifier and the reviewer's
CLI all use this module, so they cannot disagree about a byte.

Row hash
    ``row_hash = H(canonical_row(row, seq, prev_hash))``, ``prev_hash`` being
    the previous row's ``row_hash`` (``GENESIS`` for seq 1). ``H`` is
    HMAC-SHA-256 under ``AUDIT_HMAC_KEY`` when one is set, else SHA-256.

Canonical encoding (version ``ua1``)
    The compact JSON array ``["ua1", seq, prev_hash, <FIELDS in order>]``,
    written by orjson with sorted object keys. Each value is normalised to
    what the database gives back, so the writer's hash (of what it sends) and
    the verifier's (of what it reads) agree on SQLite and PostgreSQL alike:

    - ``timestamp``: integer microseconds since the Unix epoch (naive = UTC);
    - ``request_data``: the JSON value (the writer's encoded bytes are decoded
      first); JSON numbers compare by value, the way JSONB stores them: an
      integral float becomes the integer its shortest repr spells (``100.0``
      -> ``100``, ``1e20`` -> ``100000000000000000000``), non-finite floats
      become null;
    - ``duration_ms``: a float; ``response_status``: an int; text as is.

Checkpoint signature (version ``uc1``)
    ``H(["uc1", seq, row_hash, pruned_count, created_at_us, prev_signature])``:
    each retention checkpoint signs the last pruned row's hash and chains to
    the previous checkpoint, so a forged or deleted checkpoint is detected
    (with a key; without one anybody can recompute it, see the README).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final

import orjson

__all__ = [
    "CHAIN_COLUMNS",
    "FIELDS",
    "GENESIS",
    "ChainWalk",
    "Finding",
    "Hasher",
    "canonical_checkpoint",
    "canonical_fields",
    "canonical_json",
    "canonical_row",
    "chain_message",
    "epoch_us",
]

ROW_VERSION: Final = "ua1"
CHECKPOINT_VERSION: Final = "uc1"
GENESIS: Final = "0" * 64
"""``prev_hash`` of seq 1, and of the first checkpoint."""

FIELDS: Final = (
    "timestamp",
    "user_id",
    "username",
    "user_roles",
    "action_type",
    "resource",
    "outcome",
    "ip_address",
    "user_agent",
    "request_id",
    "request_data",
    "response_status",
    "error_message",
    "duration_ms",
)
"""Every hashed column, in hash order. A test fails when ``user_actions`` gains a column missing here."""
CHAIN_COLUMNS: Final = ("seq", "prev_hash", "row_hash")

REORDER_WINDOW: Final = 64
"""How far from its position a broken row's hash is searched for, to tell "moved" from "edited"."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes natively


# --- canonical encoding ------------------------------------------------------------
def epoch_us(ts: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are UTC (SQLite gives them back naive)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _number(value: int) -> Any:
    return value if _INT_MIN <= value <= _INT_MAX else orjson.Fragment(str(value).encode())


def canonical_json(value: Any) -> Any:
    """``value`` with numbers normalised as JSONB and JSON text round trips leave them (see module doc)."""
    if isinstance(value, dict):
        return {k: canonical_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return _number(int(Decimal(repr(value))))
        return value
    if isinstance(value, int):
        return _number(value)
    return value


def _request_data(value: Any) -> Any:
    """The writer holds the encoded bytes; the database hands back the decoded value (a str is a JSON string)."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = orjson.loads(value)
    return canonical_json(value)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


_fields_of: Final = itemgetter(*FIELDS)
_TIMESTAMP, _REQUEST_DATA, _STATUS, _DURATION = (
    FIELDS.index(name) for name in ("timestamp", "request_data", "response_status", "duration_ms")
)


def canonical_fields(row: Mapping[str, Any]) -> bytes:
    """The JSON array of ``FIELDS``: the part of ``canonical_row`` that does not depend on the chain.

    The writer computes it before taking the chain head's lock, so the lock is
    held only for the cheap digest. Every column is taken as it is except the
    four that the database hands back in another shape.
    """
    try:
        values = list(_fields_of(row))  # one C call for the usual complete row
    except KeyError:
        values = [row.get(name) for name in FIELDS]
    values[_TIMESTAMP] = epoch_us(values[_TIMESTAMP])
    if values[_REQUEST_DATA] is not None:
        values[_REQUEST_DATA] = _request_data(values[_REQUEST_DATA])
    if values[_STATUS] is not None:
        values[_STATUS] = int(values[_STATUS])
    values[_DURATION] = _float(values[_DURATION])
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)


_MESSAGE_PREFIX: Final = b'["' + ROW_VERSION.encode() + b'",'


def chain_message(fields: bytes, seq: int, prev_hash: str) -> bytes:
    """``["ua1", seq, prev_hash, *fields]``: byte for byte what orjson writes for that one array."""
    tail = fields[1:] if len(fields) > 2 else b"]"
    return b'%s%d,%s%s%s' % (_MESSAGE_PREFIX, int(seq), orjson.dumps(prev_hash), b"," if len(fields) > 2 else b"", tail)


def canonical_row(row: Mapping[str, Any], seq: int, prev_hash: str) -> bytes:
    return chain_message(canonical_fields(row), seq, prev_hash)


def canonical_checkpoint(
    seq: int, row_hash: str, pruned_count: int, created_at: datetime, prev_signature: str
) -> bytes:
    return orjson.dumps([CHECKPOINT_VERSION, int(seq), row_hash, int(pruned_count), epoch_us(created_at),
                         prev_signature])


# --- hashing -------------------------------------------------------------------------
class Hasher:
    """SHA-256, or HMAC-SHA-256 when given a key: the same for every row and checkpoint."""

    __slots__ = ("_keyed", "algorithm")

    def __init__(self, key: str | bytes | None = None) -> None:
        if isinstance(key, str):
            key = key.encode()
        # The key's inner and outer pads are hashed once here; each digest copies that state.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256) if key else None
        self.algorithm = "hmac-sha256" if key else "sha256"

    def digest(self, message: bytes) -> str:
        if self._keyed is None:
            return hashlib.sha256(message).hexdigest()
        keyed = self._keyed.copy()
        keyed.update(message)
        return keyed.hexdigest()

    def row_hash(self, row: Mapping[str, Any], seq: int, prev_hash: str) -> str:
        return self.digest(canonical_row(row, seq, prev_hash))

    def chain_hash(self, fields: bytes, seq: int, prev_hash: str) -> str:
        """``row_hash`` from ``canonical_fields(row)`` computed beforehand."""
        return self.digest(chain_message(fields, seq, prev_hash))

    def checkpoint_signature(
        self, seq: int, row_hash: str, pruned_count: int, created_at: datetime, prev_signature: str
    ) -> str:
        return self.digest(canonical_checkpoint(seq, row_hash, pruned_count, created_at, prev_signature))


# --- verification ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Finding:
    """The first thing wrong with the chain, named by row (or checkpoint) id and seq."""

    kind: str
    """altered | reordered | missing | unlinked | unchained | truncated | beyond_head | head_mismatch | checkpoint"""
    row_id: int | None
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = "checkpoint" if self.kind == "checkpoint" else "row"
        return f"{self.kind}: {where} id={self.row_id} seq={self.seq}: {self.detail}"


class ChainWalk:
    """Feeds rows in seq order and reports the first one that does not continue the chain.

    Starts after ``seq`` whose hash is ``last_hash`` (0 and ``GENESIS``, or a checkpoint).
    """

    def __init__(self, hasher: Hasher, seq: int = 0, last_hash: str = GENESIS) -> None:
        self.hasher = hasher
        self.last_seq = seq
        self.last_hash = last_hash
        self.count = 0

    def feed(self, row: Mapping[str, Any]) -> Finding | None:
        seq, row_id = row["seq"], row.get("id")
        expected = self.last_seq + 1
        if seq > expected:
            missing = str(expected) if seq == expected + 1 else f"{expected}..{seq - 1}"
            return Finding("missing", row_id, seq, f"seq {missing} missing before this row (deleted rows)")
        if seq < expected:
            return Finding("reordered", row_id, seq, f"seq {seq} repeats or goes back (expected {expected})")
        prev_hash, stored = row["prev_hash"] or "", row["row_hash"] or ""
        intact = hmac.compare_digest(self.hasher.row_hash(row, seq, prev_hash), stored)
        linked = hmac.compare_digest(prev_hash, self.last_hash)
        if intact and linked:
            self.last_seq, self.last_hash = seq, stored
            self.count += 1
            return None
        if not intact:
            written_as = self._written_as(row, seq, prev_hash, stored)
            if written_as is not None:
                return Finding("reordered", row_id, seq, f"the row was written as seq {written_as}: moved")
            checked = f"checked with {self.hasher.algorithm}: is AUDIT_HMAC_KEY the writer's?"
            if linked:
                return Finding("altered", row_id, seq,
                               f"row_hash does not match the row's contents (edited; {checked})")
            return Finding("altered", row_id, seq, "row_hash matches neither the contents nor the previous row "
                           f"(edited or inserted; {checked})")
        return Finding("unlinked", row_id, seq,
                       f"prev_hash is not the row_hash of seq {seq - 1} (a row before it replaced, or this one "
                       "inserted with a recomputed hash)")

    def _written_as(self, row: Mapping[str, Any], seq: int, prev_hash: str, stored: str) -> int | None:
        """The seq this row's hash was computed with, if near: a swapped or renumbered row."""
        for other in range(max(1, seq - REORDER_WINDOW), seq + REORDER_WINDOW + 1):
            if other != seq and hmac.compare_digest(self.hasher.row_hash(row, other, prev_hash), stored):
                return other
        return None
