"""Checking and pruning the audit hash chain in the database; the app's periodic verifier.

``verify_chain`` walks ``user_actions`` in seq order from the latest
retention checkpoint (or from a position already verified), a page at a
time in short read transactions, and returns the first finding: a row
edited, moved, missing, inserted or unchained, a tail cut off behind the
chain head, or a forged checkpoint. ``scripts/audit.py verify`` and the
app's ``AuditMaintenance`` task share it.

``prune`` deletes the oldest rows (a prefix of the chain, never a hole) in
chunks; each chunk is verified first, deleted as role ``audit_retention`` on
PostgreSQL, and replaced by a signed checkpoint in the same transaction, so
what is left still verifies from that checkpoint. A broken chain is never
pruned: that would bury the evidence under a valid-looking checkpoint.

The periodic verifier is incremental: after its first full walk (at start,
~40,000 rows/s on PostgreSQL, hashing in a thread so requests are not held
up) it only reads rows after the last seq it verified. An edit of an already verified
row is found by the next full walk (``scripts/audit.py verify``, or a
restart of the app), not by the incremental runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fastapi_lookout.audit.chain import FIELDS, GENESIS, ChainWalk, Finding, Hasher
from fastapi_lookout.audit.schema import RETENTION_ROLE, audit_chain_head, audit_checkpoints, user_actions
from fastapi_lookout.audit.writer import note_head_seq
from fastapi_lookout.metrics import (
    AUDIT_CHAIN_BROKEN,
    AUDIT_CHAIN_LAST_VERIFICATION,
    AUDIT_CHAIN_VERIFICATIONS,
    AUDIT_CHAIN_VERIFIED_SEQ,
    AUDIT_ROWS_PRUNED,
)

__all__ = [
    "RETENTION_ROLE",
    "AuditMaintenance",
    "ChainBroken",
    "PruneResult",
    "Verification",
    "prune",
    "verify_chain",
]

PAGE_SIZE: Final = 5000
PRUNE_CHUNK: Final = 10_000
PRUNE_INTERVAL_SECONDS: Final = 3600.0
PRUNE_LOCK_KEY: Final = 0x617564_7072  # pg_advisory_xact_lock key: one pruner at a time

ROW_COLUMNS: Final = (user_actions.c.id, user_actions.c.seq, user_actions.c.prev_hash, user_actions.c.row_hash,
                      *(user_actions.c[name] for name in FIELDS))

log = structlog.get_logger("app.audit")

Progress = Callable[[int, int], None]
"""Called after each page with (rows checked so far, last seq checked)."""


class ChainBroken(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


@dataclass(frozen=True, slots=True)
class Verification:
    finding: Finding | None
    start: str
    """Where the walk began: ``genesis``, ``checkpoint id=.. seq=..`` or ``seq ..`` (incremental)."""
    first_seq: int
    """The walk checked rows after this seq."""
    last_seq: int
    last_hash: str
    """The position up to which the chain is intact (also when a finding follows it)."""
    rows: int
    head_seq: int | None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.finding is None

    def summary(self) -> str:
        if self.finding is not None:
            return f"BROKEN: {self.finding} (intact up to seq {self.last_seq}, walked from {self.start})"
        extra = "".join(f"; {n}" for n in self.notes)
        walked = f"seq {self.first_seq + 1}..{self.last_seq}" if self.rows else "no new rows"
        return (f"OK: {self.rows} rows verified ({walked}) from {self.start}; "
                f"head seq {self.last_seq} row_hash {self.last_hash}{extra}")


# --- reading ------------------------------------------------------------------------------
async def _checkpoints(conn: AsyncConnection) -> list[Mapping[str, Any]]:
    result = await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.id))
    return [r._mapping for r in result]


async def _head(conn: AsyncConnection) -> tuple[int, str] | None:
    row = (await conn.execute(sa.select(audit_chain_head.c.seq, audit_chain_head.c.row_hash)
                              .where(audit_chain_head.c.id == 1))).first()
    return None if row is None else (int(row.seq), str(row.row_hash))


async def _page(conn: AsyncConnection, after: int, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
    query = sa.select(*ROW_COLUMNS).where(user_actions.c.seq > after)
    if upto is not None:
        query = query.where(user_actions.c.seq <= upto)
    result = await conn.execute(query.order_by(user_actions.c.seq).limit(limit))
    return [dict(r._mapping) for r in result]


def check_checkpoints(hasher: Hasher, checkpoints: Sequence[Mapping[str, Any]]) -> tuple[Finding | None, Any]:
    """Every checkpoint's signature, chained to the one before; returns (finding, latest)."""
    prev_signature, prev_seq, latest = GENESIS, 0, None
    for cp in checkpoints:
        expected = hasher.checkpoint_signature(cp["seq"], cp["row_hash"], cp["pruned_count"], cp["created_at"],
                                               prev_signature)
        if cp["prev_signature"] != prev_signature or cp["signature"] != expected:
            return Finding("checkpoint", cp["id"], cp["seq"],
                           f"signature does not match the checkpoint ({hasher.algorithm}): edited, forged, "
                           "or an earlier checkpoint removed"), latest
        if cp["seq"] <= prev_seq:
            return Finding("checkpoint", cp["id"], cp["seq"], f"seq does not advance past {prev_seq}"), latest
        prev_signature, prev_seq, latest = cp["signature"], cp["seq"], cp
    return None, latest


def _feed(walk: ChainWalk, rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    for row in rows:
        finding = walk.feed(row)
        if finding is not None:
            return finding
    return None


# --- verification ----------------------------------------------------------------------------
async def verify_chain(
    engine: AsyncEngine,
    hasher: Hasher,
    *,
    after: tuple[int, str] | None = None,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
    anchor: tuple[int, str] | None = None,
) -> Verification:
    """Walk the chain; ``after``: (seq, row_hash) already verified; ``anchor``: (seq, row_hash) kept elsewhere."""
    async with engine.connect() as conn:
        finding, latest = check_checkpoints(hasher, await _checkpoints(conn))
        head_before = await _head(conn)
        await conn.rollback()
        if after is not None and (latest is None or after[0] >= latest["seq"]):
            walk, start = ChainWalk(hasher, *after), f"seq {after[0]}"
        elif latest is not None:
            walk = ChainWalk(hasher, latest["seq"], latest["row_hash"])
            start = f"checkpoint id={latest['id']} seq={latest['seq']}"
        else:
            walk, start = ChainWalk(hasher), "genesis"
        first_seq = walk.last_seq
        notes: list[str] = []

        def result(found: Finding | None, head: int | None = None) -> Verification:
            return Verification(found, start, first_seq, walk.last_seq, walk.last_hash, walk.count,
                                head if head is not None else (head_before or (None, ""))[0], tuple(notes))

        if finding is not None:
            return result(finding)
        anchor_checked = anchor is None
        if anchor is not None and anchor[0] <= walk.last_seq:
            cp_hash = latest["row_hash"] if latest is not None and latest["seq"] == anchor[0] else None
            if cp_hash is not None and cp_hash != anchor[1]:
                return result(Finding("head_mismatch", None, anchor[0], "the anchor's hash differs from the "
                                      "checkpoint at that seq"))
            notes.append("anchor matches the checkpoint" if cp_hash else "anchor seq pruned, not checkable")
            anchor_checked = True
        while True:
            rows = await _page(conn, walk.last_seq, page_size)
            await conn.rollback()  # short read transactions: never hold SQLite's writers back
            if not rows:
                break
            finding = await asyncio.to_thread(_feed, walk, rows)
            if finding is not None and finding.kind == "missing":
                # Pruned while we walked? Then a newer checkpoint covers the gap: resume from it.
                recheck, newest = check_checkpoints(hasher, await _checkpoints(conn))
                await conn.rollback()
                if recheck is None and newest is not None and newest["seq"] > walk.last_seq:
                    walk.last_seq, walk.last_hash = newest["seq"], newest["row_hash"]
                    continue
            if not anchor_checked and walk.last_seq >= anchor[0]:  # type: ignore[index]
                matched = next((r for r in rows if r["seq"] == anchor[0]), None)  # type: ignore[index]
                if matched is not None and matched["row_hash"] != anchor[1]:  # type: ignore[index]
                    return result(Finding("head_mismatch", matched["id"], matched["seq"],
                                          "row_hash differs from the anchor kept elsewhere (rewritten chain)"))
                anchor_checked = True
                notes.append("anchor matches")
            if finding is not None:
                return result(finding)
            if progress is not None:
                progress(walk.count, walk.last_seq)

        unchained = (await conn.execute(sa.select(user_actions.c.id).where(user_actions.c.seq.is_(None))
                                        .order_by(user_actions.c.id).limit(1))).scalar()
        head_after = await _head(conn)
        await conn.rollback()
    if unchained is not None:
        return result(Finding("unchained", unchained, None,
                              "no seq/row_hash: inserted directly, not by the audit writer"))
    if head_before is None or head_after is None:
        return result(Finding("head_mismatch", None, None, "audit_chain_head has no row"))
    if not anchor_checked:
        return result(Finding("truncated", None, anchor[0],  # type: ignore[index]
                              f"the anchor kept elsewhere is seq {anchor[0]}, the last row is seq "  # type: ignore[index]
                              f"{walk.last_seq}: rows deleted from the tail"))
    if head_before[0] > walk.last_seq:
        return result(Finding("truncated", None, head_before[0],
                              f"the chain head records seq {head_before[0]} but the last row is seq "
                              f"{walk.last_seq}: rows deleted from the tail"))
    if walk.last_seq > head_after[0]:
        async with engine.connect() as conn:
            beyond = (await conn.execute(sa.select(user_actions.c.id, user_actions.c.seq)
                                         .where(user_actions.c.seq > head_after[0])
                                         .order_by(user_actions.c.seq).limit(1))).first()
        row_id, seq = (beyond.id, beyond.seq) if beyond is not None else (None, head_after[0] + 1)
        return result(Finding("beyond_head", row_id, seq,
                              f"seq beyond the chain head ({head_after[0]}): inserted outside the writer"),
                      head_after[0])
    if walk.last_seq == head_after[0] and walk.last_hash != head_after[1]:
        return result(Finding("head_mismatch", None, walk.last_seq,
                              "the last row's hash differs from the chain head's"), head_after[0])
    return result(None, head_after[0])


# --- retention -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PruneResult:
    pruned: int
    checkpoints: int
    last_seq: int | None
    """seq of the newest checkpoint written (None: nothing was old enough)."""


async def _prune_chunk(conn: AsyncConnection, hasher: Hasher, before: datetime, chunk: int,
                       role: str) -> tuple[int, int] | None:
    """One chunk in the caller's transaction: (pruned rows, checkpoint seq), or None when nothing is due."""
    ua = user_actions
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PRUNE_LOCK_KEY})
        await conn.execute(sa.text(f'SET LOCAL ROLE "{role}"'))
    else:  # take SQLite's write lock first, as the writer does
        await conn.execute(audit_chain_head.update().where(audit_chain_head.c.id == 1)
                           .values(seq=audit_chain_head.c.seq))
    finding, latest = check_checkpoints(hasher, await _checkpoints(conn))
    if finding is not None:
        raise ChainBroken(finding)
    start_seq, start_hash, prev_signature = (
        (latest["seq"], latest["row_hash"], latest["signature"]) if latest is not None else (0, GENESIS, GENESIS)
    )
    keep_from = (await conn.execute(sa.select(sa.func.min(ua.c.seq)).where(ua.c.timestamp >= before))).scalar()
    if keep_from is None:
        end = (await conn.execute(sa.select(sa.func.max(ua.c.seq)))).scalar() or start_seq
    else:
        end = keep_from - 1
    end = min(end, start_seq + chunk)
    if end <= start_seq:
        return None
    walk = ChainWalk(hasher, start_seq, start_hash)
    while walk.last_seq < end:
        rows = await _page(conn, walk.last_seq, PAGE_SIZE, upto=end)
        if not rows:
            raise ChainBroken(Finding("missing", None, walk.last_seq + 1,
                                      f"seq {walk.last_seq + 1}..{end} missing: not pruned"))
        finding = await asyncio.to_thread(_feed, walk, rows)
        if finding is not None:
            raise ChainBroken(finding)
    deleted = (await conn.execute(sa.delete(ua).where(ua.c.seq > start_seq, ua.c.seq <= end))).rowcount
    created = datetime.now(UTC)
    await conn.execute(audit_checkpoints.insert().values(
        seq=end, row_hash=walk.last_hash, pruned_count=deleted, created_at=created, prev_signature=prev_signature,
        signature=hasher.checkpoint_signature(end, walk.last_hash, deleted, created, prev_signature),
    ))
    return deleted, end


async def prune(engine: AsyncEngine, hasher: Hasher, *, before: datetime, chunk: int = PRUNE_CHUNK,
                role: str = RETENTION_ROLE) -> PruneResult:
    """Delete chained rows older than ``before`` (a prefix of the chain), one checkpoint per chunk."""
    before = before.astimezone(UTC) if before.tzinfo else before.replace(tzinfo=UTC)
    pruned = checkpoints = 0
    last: int | None = None
    while True:
        async with engine.begin() as conn:
            done = await _prune_chunk(conn, hasher, before, chunk, role)
        if done is None:
            return PruneResult(pruned, checkpoints, last)
        AUDIT_ROWS_PRUNED.inc(done[0])
        pruned, checkpoints, last = pruned + done[0], checkpoints + 1, done[1]
        log.info("audit_rows_pruned", rows=done[0], checkpoint_seq=done[1])


# --- the app's periodic task ------------------------------------------------------------------------
class AuditMaintenance:
    """Verifies the chain every ``verify_interval`` s (incrementally) and prunes hourly when retention is on."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hmac_key: str | None,
        verify_interval_seconds: float,
        retention_days: int,
        prune_interval_seconds: float = PRUNE_INTERVAL_SECONDS,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._engine = engine
        self._hasher = Hasher(hmac_key)
        self._verify_interval = verify_interval_seconds
        self._retention_days = retention_days
        self._prune_interval = prune_interval_seconds
        self._page_size = page_size
        self._verified: tuple[int, str] | None = None
        self._reported: Finding | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._verify_interval > 0 or self._retention_days > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_verify = loop.time() if self._verify_interval > 0 else float("inf")
        next_prune = loop.time() if self._retention_days > 0 else float("inf")
        while True:
            now = loop.time()
            if now >= next_prune:
                await self.prune_once()
                next_prune = now + self._prune_interval
            if now >= next_verify:
                await self.verify_once()
                next_verify = loop.time() + self._verify_interval
            await asyncio.sleep(max(0.0, min(next_verify, next_prune) - loop.time()))

    async def verify_once(self) -> Verification | None:
        try:
            result = await verify_chain(self._engine, self._hasher, after=self._verified, page_size=self._page_size)
        except Exception as exc:  # the database is down or not migrated: say so, try again next time
            AUDIT_CHAIN_VERIFICATIONS.labels("error").inc()
            log.warning("audit_chain_verification_failed", error_type=type(exc).__name__, error=str(exc)[:300])
            return None
        AUDIT_CHAIN_LAST_VERIFICATION.set(time.time())
        if result.head_seq is not None:
            note_head_seq(result.head_seq)
        self._verified = (result.last_seq, result.last_hash)  # intact up to here, also when a finding follows
        AUDIT_CHAIN_VERIFIED_SEQ.set(result.last_seq)
        if result.ok:
            AUDIT_CHAIN_BROKEN.set(0)
            AUDIT_CHAIN_VERIFICATIONS.labels("ok").inc()
            if self._reported is not None:
                log.info("audit_chain_intact_again", verified_seq=result.last_seq)
            self._reported = None
            return result
        AUDIT_CHAIN_BROKEN.set(1)
        AUDIT_CHAIN_VERIFICATIONS.labels("broken").inc()
        finding = result.finding
        assert finding is not None
        if finding != self._reported:  # once per finding, not once per interval
            log.error("audit_chain_broken", kind=finding.kind, row_id=finding.row_id, seq=finding.seq,
                      detail=finding.detail, verified_seq=result.last_seq)
            self._reported = finding
        return result

    async def prune_once(self) -> PruneResult | None:
        before = datetime.now(UTC) - timedelta(days=self._retention_days)
        try:
            return await prune(self._engine, self._hasher, before=before)
        except ChainBroken as exc:
            log.error("audit_prune_refused", reason="chain broken", kind=exc.finding.kind,
                      row_id=exc.finding.row_id, seq=exc.finding.seq, detail=exc.finding.detail)
        except Exception as exc:
            log.error("audit_prune_failed", error_type=type(exc).__name__, error=str(exc)[:300])
        return None
