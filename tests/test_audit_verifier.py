"""The audit verifier: each way a checkpoint can be forged, every finding of the walk, retention, the periodic task.

In process on SQLite files: rows are hashed here and inserted directly, so each test builds exactly the chain
(or the damage) it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from fastapi_lookout.audit.chain import FIELDS, GENESIS, Finding, Hasher
from fastapi_lookout.audit.schema import audit_chain_head, audit_checkpoints, metadata, user_actions
from fastapi_lookout.audit.verifier import (
    AuditMaintenance,
    ChainBroken,
    PruneResult,
    Verification,
    _prune_chunk,
    check_checkpoints,
    prune,
    verify_chain,
)

KEY = "test-hmac-key"
CREATED = datetime(2025, 1, 2, tzinfo=UTC)
FORGED = "signature does not match the checkpoint (hmac-sha256): edited, forged, or an earlier checkpoint removed"


def checkpoints(hasher: Hasher, *seqs: int) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for n, seq in enumerate(seqs, start=1):
        row_hash = f"{n:x}" * 64
        signature = hasher.checkpoint_signature(seq, row_hash[:64], 10, CREATED, prev)
        out.append({"id": n, "seq": seq, "row_hash": row_hash[:64], "pruned_count": 10, "created_at": CREATED,
                    "prev_signature": prev, "signature": signature})
        prev = signature
    return out


def test_a_valid_checkpoint_chain_returns_the_latest() -> None:
    hasher = Hasher(KEY)
    cps = checkpoints(hasher, 10, 20, 30)
    assert check_checkpoints(hasher, cps) == (None, cps[2])
    assert check_checkpoints(hasher, []) == (None, None)


def test_a_checkpoint_repointed_to_another_row_hash_is_a_finding() -> None:
    hasher = Hasher(KEY)
    cps = checkpoints(hasher, 10, 20)
    cps[1]["row_hash"] = "f" * 64
    assert check_checkpoints(hasher, cps) == (Finding("checkpoint", 2, 20, FORGED), cps[0])


def test_a_removed_earlier_checkpoint_is_a_finding() -> None:
    hasher = Hasher(KEY)
    cps = checkpoints(hasher, 10, 20)
    assert check_checkpoints(hasher, cps[1:]) == (Finding("checkpoint", 2, 20, FORGED), None)


def test_a_checkpoint_signed_without_the_key_is_a_finding() -> None:
    cps = checkpoints(Hasher(), 10)
    finding, latest = check_checkpoints(Hasher(KEY), cps)
    assert (finding, latest) == (Finding("checkpoint", 1, 10, FORGED), None)


def test_a_checkpoint_whose_seq_does_not_advance_is_a_finding() -> None:
    hasher = Hasher(KEY)
    for seqs in ((20, 20), (20, 10)):
        cps = checkpoints(hasher, *seqs)
        assert check_checkpoints(hasher, cps) == (
            Finding("checkpoint", 2, seqs[1], "seq does not advance past 20"), cps[0])


# --- verify_chain, prune and the periodic task on SQLite ------------------------------------------------------------
OLD = datetime(2025, 1, 1, tzinfo=UTC)
NEW = datetime(2025, 3, 1, tzinfo=UTC)
HEAD_ROW = "the last row's hash differs from the chain head's"
TAIL = "rows deleted from the tail"


def action(seq: int, ts: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row.update(timestamp=ts, action_type="get", resource=f"/r/{seq}", outcome="success", response_status=200,
               duration_ms=1.5, request_data={"n": seq})
    return row


class Db:
    """A migrated-as-the-model SQLite file; rows are hashed here and inserted directly, as the writer would."""

    def __init__(self, path: Path) -> None:
        self.sync = sa.create_engine(f"sqlite:///{path}")
        metadata.create_all(self.sync)
        self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        self.hasher = Hasher(KEY)
        self.hashes = {0: GENESIS}
        self.signature = GENESIS

    def run(self, *statements: Any) -> None:
        with self.sync.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement) if isinstance(statement, str) else statement)

    def add(self, first: int, last: int, ts: datetime = OLD, head: bool = True) -> None:
        for seq in range(first, last + 1):
            row = action(seq, ts)
            self.hashes[seq] = self.hasher.row_hash(row, seq, self.hashes[seq - 1])
            self.run(user_actions.insert().values(**row, seq=seq, prev_hash=self.hashes[seq - 1],
                                                  row_hash=self.hashes[seq]))
        if head:
            self.head(last)

    def head(self, seq: int, row_hash: str | None = None) -> None:
        self.run(audit_chain_head.delete(), audit_chain_head.insert().values(
            id=1, seq=seq, row_hash=row_hash or self.hashes[seq], chain_id="c" * 32))

    def checkpoint(self, seq: int, delete: bool = True) -> None:
        """What prune leaves: rows up to ``seq`` gone, a signed checkpoint in their place."""
        signature = self.hasher.checkpoint_signature(seq, self.hashes[seq], seq, CREATED, self.signature)
        self.run(audit_checkpoints.insert().values(seq=seq, row_hash=self.hashes[seq], pruned_count=seq,
                                                   created_at=CREATED, prev_signature=self.signature,
                                                   signature=signature))
        self.signature = signature
        if delete:
            self.run(user_actions.delete().where(user_actions.c.seq <= seq))

    def ids(self) -> dict[int | None, int]:
        with self.sync.connect() as conn:
            return {seq: row_id for row_id, seq in conn.execute(sa.select(user_actions.c.id, user_actions.c.seq))}

    def seqs(self) -> list[int]:
        with self.sync.connect() as conn:
            return list(conn.execute(sa.select(user_actions.c.seq).order_by(user_actions.c.seq)).scalars())

    def checkpoints(self) -> list[dict[str, Any]]:
        with self.sync.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(audit_checkpoints).order_by("id"))]

    async def verify(self, **options: Any) -> Verification:
        return await verify_chain(self.engine, self.hasher, **options)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    database = Db(tmp_path / "audit.db")
    yield database
    await database.engine.dispose()
    database.sync.dispose()


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+9: a naive "now" or a conversion to local time shows."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def intact(db: Db, result: Verification, start: str, first: int, last: int, rows: int, head: int | None,
           notes: tuple[str, ...] = ()) -> None:
    assert result == Verification(None, start, first, last, db.hashes[last], rows, head, notes)


async def test_an_intact_chain_verifies_from_genesis_page_by_page(db: Db) -> None:
    db.add(1, 5)
    seen: list[tuple[int, int]] = []
    result = await db.verify(page_size=2, progress=lambda rows, seq: seen.append((rows, seq)))
    intact(db, result, "genesis", 0, 5, 5, 5)
    assert result.ok
    assert seen == [(2, 2), (4, 4), (5, 5)]
    assert result.summary() == f"OK: 5 rows verified (seq 1..5) from genesis; head seq 5 row_hash {db.hashes[5]}"


async def test_an_empty_chain_verifies_with_no_new_rows(db: Db) -> None:
    db.head(0)
    result = await db.verify()
    intact(db, result, "genesis", 0, 0, 0, 0)
    assert result.summary() == f"OK: 0 rows verified (no new rows) from genesis; head seq 0 row_hash {GENESIS}"


def test_the_summary_lists_every_note() -> None:
    result = Verification(None, "genesis", 0, 0, GENESIS, 0, 0, ("one", "two"))
    assert result.summary().endswith(f"row_hash {GENESIS}; one; two")


async def test_the_result_reports_the_chain_head_read_after_the_walk(db: Db) -> None:
    db.add(1, 3)
    result = await db.verify(page_size=2, progress=lambda rows, seq: db.add(4, 5) if seq == 2 else None)
    intact(db, result, "genesis", 0, 5, 5, 5)


async def test_an_incremental_walk_starts_after_the_position_already_verified(db: Db) -> None:
    db.add(1, 5)
    result = await db.verify(after=(3, db.hashes[3]))
    intact(db, result, "seq 3", 3, 5, 2, 5)
    assert result.summary().startswith("OK: 2 rows verified (seq 4..5) from seq 3; head seq 5")


async def test_a_walk_starts_from_the_latest_checkpoint_unless_already_past_it(db: Db) -> None:
    db.add(1, 6)
    db.checkpoint(2)
    db.checkpoint(3)
    intact(db, await db.verify(), "checkpoint id=2 seq=3", 3, 6, 3, 6)
    intact(db, await db.verify(after=(1, db.hashes[1])), "checkpoint id=2 seq=3", 3, 6, 3, 6)
    intact(db, await db.verify(after=(3, db.hashes[3])), "seq 3", 3, 6, 3, 6)
    intact(db, await db.verify(after=(4, db.hashes[4])), "seq 4", 4, 6, 2, 6)


async def test_a_forged_checkpoint_is_reported_before_any_row_is_read(db: Db) -> None:
    db.add(1, 4)
    db.checkpoint(2)
    db.run("UPDATE audit_checkpoints SET pruned_count = 1")
    result = await db.verify()
    assert result == Verification(Finding("checkpoint", 1, 2, FORGED), "genesis", 0, 0, GENESIS, 0, 4)
    assert result.summary() == f"BROKEN: {result.finding} (intact up to seq 0, walked from genesis)"


async def test_a_row_without_a_seq_is_unchained(db: Db) -> None:
    db.add(1, 3)
    db.run(user_actions.insert().values(**action(9, NEW)))
    result = await db.verify()
    assert result.finding == Finding("unchained", db.ids()[None], None,
                                     "no seq/row_hash: inserted directly, not by the audit writer")
    assert (result.last_seq, result.rows, result.head_seq) == (3, 3, 3)


async def test_a_missing_chain_head_is_a_head_mismatch(db: Db) -> None:
    db.add(1, 3, head=False)
    result = await db.verify()
    assert result.finding == Finding("head_mismatch", None, None, "audit_chain_head has no row")
    assert (result.last_seq, result.head_seq) == (3, None)


async def test_a_chain_head_deleted_or_created_during_the_walk_is_a_head_mismatch(db: Db) -> None:
    db.add(1, 3)
    result = await db.verify(page_size=2, progress=lambda *_: db.run("DELETE FROM audit_chain_head"))
    assert result.finding == Finding("head_mismatch", None, None, "audit_chain_head has no row")
    assert result.head_seq == 3
    db.run("DELETE FROM audit_chain_head")
    result = await db.verify(page_size=2, progress=lambda *_: db.head(3))
    assert result.finding == Finding("head_mismatch", None, None, "audit_chain_head has no row")


async def test_a_tail_cut_behind_the_chain_head_is_truncated(db: Db) -> None:
    db.add(1, 7)
    db.run("DELETE FROM user_actions WHERE seq > 5")
    result = await db.verify()
    assert result.finding == Finding(
        "truncated", None, 7, f"the chain head records seq 7 but the last row is seq 5: {TAIL}")
    assert (result.last_seq, result.last_hash, result.head_seq) == (5, db.hashes[5], 7)


async def test_a_tail_cut_with_the_head_rewritten_is_truncated_by_the_anchor(db: Db) -> None:
    db.add(1, 7)
    db.run("DELETE FROM user_actions WHERE seq > 5")
    db.head(5)
    result = await db.verify(anchor=(7, db.hashes[7]))
    assert result.finding == Finding(
        "truncated", None, 7, f"the anchor kept elsewhere is seq 7, the last row is seq 5: {TAIL}")
    assert result.notes == ()


async def test_an_anchor_matching_its_row_is_noted(db: Db) -> None:
    db.add(1, 5)
    for seq in (3, 4, 5):
        result = await db.verify(page_size=2, anchor=(seq, db.hashes[seq]))
        intact(db, result, "genesis", 0, 5, 5, 5, ("anchor matches",))
        assert result.summary().endswith(f"row_hash {db.hashes[5]}; anchor matches")


async def test_an_anchor_differing_from_its_row_is_a_rewritten_chain(db: Db) -> None:
    db.add(1, 5)
    ids = db.ids()
    for seq in (3, 4, 5):
        result = await db.verify(page_size=2, anchor=(seq, "f" * 64))
        assert result.finding == Finding("head_mismatch", ids[seq], seq,
                                         "row_hash differs from the anchor kept elsewhere (rewritten chain)")
        assert result.notes == ()


async def test_an_anchor_at_or_before_the_checkpoint_is_checked_against_it_or_noted_as_pruned(db: Db) -> None:
    db.add(1, 5)
    db.checkpoint(3)
    intact(db, await db.verify(anchor=(3, db.hashes[3])), "checkpoint id=1 seq=3", 3, 5, 2, 5,
           ("anchor matches the checkpoint",))
    intact(db, await db.verify(anchor=(2, "f" * 64)), "checkpoint id=1 seq=3", 3, 5, 2, 5,
           ("anchor seq pruned, not checkable",))
    result = await db.verify(anchor=(3, "f" * 64))
    assert result.finding == Finding("head_mismatch", None, 3,
                                     "the anchor's hash differs from the checkpoint at that seq")
    assert (result.last_seq, result.rows, result.notes) == (3, 0, ())


async def test_rows_beyond_the_chain_head_were_inserted_outside_the_writer(db: Db) -> None:
    db.add(1, 3)
    db.add(4, 5, head=False)
    result = await db.verify()
    assert result.finding == Finding("beyond_head", db.ids()[4], 4,
                                     "seq beyond the chain head (3): inserted outside the writer")
    assert (result.last_seq, result.head_seq) == (5, 3)
    db.head(2)
    result = await db.verify(page_size=2, progress=lambda rows, seq: db.head(3) if seq == 2 else None)
    assert (result.finding.kind, result.finding.seq, result.head_seq) == ("beyond_head", 4, 3)  # type: ignore[union-attr]


class Racing:
    """An engine whose second connection finds ``before_second`` done: a change between two reads."""

    def __init__(self, engine: Any, before_second: Any) -> None:
        self.engine, self.before_second, self.connections = engine, before_second, 0

    def connect(self) -> Any:
        self.connections += 1
        if self.connections == 2:
            self.before_second()
        return self.engine.connect()


async def test_rows_beyond_the_head_gone_before_they_are_named_still_are_beyond_head(db: Db) -> None:
    db.add(1, 3)
    db.add(4, 5, head=False)
    engine = Racing(db.engine, lambda: db.run("DELETE FROM user_actions WHERE seq > 3"))
    result = await verify_chain(engine, db.hasher)  # type: ignore[arg-type]
    assert result.finding == Finding("beyond_head", None, 4,
                                     "seq beyond the chain head (3): inserted outside the writer")


async def test_a_last_row_differing_from_the_chain_head_is_a_head_mismatch(db: Db) -> None:
    db.add(1, 5)
    db.head(5, "e" * 64)
    result = await db.verify()
    assert result.finding == Finding("head_mismatch", None, 5, HEAD_ROW)
    assert (result.last_seq, result.head_seq) == (5, 5)
    db.head(3)
    result = await db.verify(page_size=2, progress=lambda rows, seq: db.head(5, "e" * 64) if seq == 2 else None)
    assert (result.finding, result.head_seq) == (Finding("head_mismatch", None, 5, HEAD_ROW), 5)
    db.head(4, "e" * 64)  # the head behind the last row is beyond_head, not a hash comparison
    assert (await db.verify()).finding.kind == "beyond_head"  # type: ignore[union-attr]


async def test_a_walk_resumes_from_a_checkpoint_written_while_it_walked(db: Db) -> None:
    db.add(1, 8)
    pruned = []

    def prune_once(rows: int, seq: int) -> None:
        if not pruned:
            pruned.append(seq)
            db.checkpoint(5)

    result = await db.verify(page_size=2, progress=prune_once)
    intact(db, result, "genesis", 0, 8, 5, 8)
    assert pruned == [2]


async def test_an_anchor_in_rows_pruned_during_the_walk_is_passed(db: Db) -> None:
    db.add(1, 8)
    result = await db.verify(page_size=2, anchor=(4, db.hashes[4]),
                             progress=lambda rows, seq: db.checkpoint(5) if seq == 2 else None)
    intact(db, result, "genesis", 0, 8, 5, 8, ("anchor matches",))


async def test_a_gap_is_missing_unless_a_valid_newer_checkpoint_covers_it(db: Db) -> None:
    db.add(1, 8)
    db.checkpoint(2)
    db.run("DELETE FROM user_actions WHERE seq IN (3, 6)")  # the checkpoint (seq 2) does not cover seq 3
    result = await db.verify()
    assert result.finding == Finding("missing", db.ids()[4], 4, "seq 3 missing before this row (deleted rows)")
    assert (result.last_seq, result.rows) == (2, 0)
    db.checkpoint(3, delete=False)
    result = await db.verify()
    assert result.finding == Finding("missing", db.ids()[7], 7, "seq 6 missing before this row (deleted rows)")
    assert (result.last_seq, result.rows) == (5, 2)

    def forge_and_prune(rows: int, seq: int) -> None:  # the newer checkpoint no longer verifies
        if seq == 5:
            db.checkpoint(6, delete=False)
            db.run("UPDATE audit_checkpoints SET pruned_count = 0 WHERE seq = 3")

    result = await db.verify(after=(4, db.hashes[4]), page_size=1, progress=forge_and_prune)
    assert result.finding == Finding("missing", db.ids()[7], 7, "seq 6 missing before this row (deleted rows)")


async def test_a_finding_in_the_walk_stops_it_where_the_chain_is_intact(db: Db) -> None:
    db.add(1, 5)
    db.run("UPDATE user_actions SET resource = '/x' WHERE seq = 4")
    seen: list[tuple[int, int]] = []
    result = await db.verify(page_size=2, progress=lambda rows, seq: seen.append((rows, seq)))
    assert result.finding is not None and (result.finding.kind, result.finding.seq) == ("altered", 4)
    assert (result.last_seq, result.last_hash, result.rows, seen) == (3, db.hashes[3], 3, [(2, 2)])


# --- retention -------------------------------------------------------------------------------------------------------
def pruned_metric() -> float:
    return REGISTRY.get_sample_value("audit_rows_pruned_total") or 0.0


def assert_signed(db: Db, checkpoints: list[dict[str, Any]], *expected: tuple[int, int]) -> None:
    """Each checkpoint signs (seq, pruned_count) with the row's hash, chained to the one before."""
    assert [(cp["seq"], cp["pruned_count"]) for cp in checkpoints] == list(expected)
    assert check_checkpoints(db.hasher, checkpoints) == (None, checkpoints[-1])
    for cp in checkpoints:
        assert cp["row_hash"] == db.hashes[cp["seq"]]
        assert abs(cp["created_at"].replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)


async def test_prune_deletes_the_old_prefix_behind_one_signed_checkpoint_and_the_rest_verifies(db: Db) -> None:
    db.add(1, 5, ts=OLD)
    db.add(6, 8, ts=NEW)
    before = pruned_metric()
    with capture_logs() as logs:
        result = await prune(db.engine, db.hasher, before=datetime(2025, 2, 1, tzinfo=UTC))
    assert result == PruneResult(5, 1, 5)
    assert db.seqs() == [6, 7, 8]
    assert_signed(db, db.checkpoints(), (5, 5))
    assert db.checkpoints()[0]["prev_signature"] == GENESIS
    assert pruned_metric() - before == 5
    assert [(e["event"], e["rows"], e["checkpoint_seq"]) for e in logs] == [("audit_rows_pruned", 5, 5)]
    intact(db, await db.verify(), "checkpoint id=1 seq=5", 5, 8, 3, 8)
    assert await prune(db.engine, db.hasher, before=datetime(2025, 2, 1, tzinfo=UTC)) == PruneResult(0, 0, None)


async def test_prune_works_in_chunks_each_with_its_own_chained_checkpoint(db: Db, tokyo: None) -> None:
    db.add(1, 5, ts=OLD)
    db.add(6, 6, ts=NEW)
    before = pruned_metric()
    with capture_logs() as logs:
        result = await prune(db.engine, db.hasher, before=datetime(2025, 2, 1, tzinfo=UTC), chunk=2)
    assert result == PruneResult(5, 3, 5)
    assert pruned_metric() - before == 5
    assert [(e["rows"], e["checkpoint_seq"]) for e in logs] == [(2, 2), (2, 4), (1, 5)]
    assert db.seqs() == [6]
    assert_signed(db, db.checkpoints(), (2, 2), (4, 2), (5, 1))


async def test_prune_removes_every_row_when_all_are_old(db: Db) -> None:
    db.add(1, 3, ts=OLD)
    assert await prune(db.engine, db.hasher, before=NEW) == PruneResult(3, 1, 3)
    assert db.seqs() == []
    intact(db, await db.verify(), "checkpoint id=1 seq=3", 3, 3, 0, 3)


async def test_prune_counts_only_rows_after_the_latest_checkpoint(db: Db) -> None:
    db.add(1, 5, ts=OLD)
    db.checkpoint(2, delete=False)  # rows at or before a checkpoint are not the pruner's (they never remain)
    assert await prune(db.engine, db.hasher, before=NEW) == PruneResult(3, 1, 5)
    assert db.seqs() == [1, 2]
    assert [(cp["seq"], cp["pruned_count"]) for cp in db.checkpoints()] == [(2, 2), (5, 3)]


async def test_prune_of_an_empty_or_all_new_chain_does_nothing(db: Db) -> None:
    assert await prune(db.engine, db.hasher, before=NEW) == PruneResult(0, 0, None)
    db.add(1, 2, ts=NEW)
    assert await prune(db.engine, db.hasher, before=OLD) == PruneResult(0, 0, None)
    assert (db.seqs(), db.checkpoints()) == ([1, 2], [])


async def test_prune_reads_before_as_an_instant_and_a_naive_one_as_utc(db: Db, tokyo: None) -> None:
    db.add(1, 2, ts=datetime(2025, 1, 1, 10, tzinfo=UTC))
    db.add(3, 4, ts=datetime(2025, 1, 1, 12, tzinfo=UTC))
    plus_five = timezone(timedelta(hours=5))
    assert await prune(db.engine, db.hasher, before=datetime(2025, 1, 1, 16, tzinfo=plus_five)) == (
        PruneResult(2, 1, 2))  # 11:00 UTC: not 16:00
    db.add(5, 6, ts=datetime(2025, 1, 1, 14, tzinfo=UTC))
    assert await prune(db.engine, db.hasher, before=datetime(2025, 1, 1, 13)) == PruneResult(2, 1, 4)
    assert db.seqs() == [5, 6]
    assert_signed(db, db.checkpoints(), (2, 2), (4, 2))


async def test_a_broken_chain_or_checkpoint_is_never_pruned(db: Db) -> None:
    db.add(1, 5, ts=OLD)
    db.run("UPDATE user_actions SET resource = '/x' WHERE seq = 3")
    with pytest.raises(ChainBroken) as broken:
        await prune(db.engine, db.hasher, before=NEW)
    assert (broken.value.finding.kind, broken.value.finding.seq) == ("altered", 3)
    assert str(broken.value) == str(broken.value.finding)
    assert (db.seqs(), db.checkpoints()) == ([1, 2, 3, 4, 5], [])
    db.run("DELETE FROM user_actions WHERE seq = 3")
    with pytest.raises(ChainBroken) as broken:
        await prune(db.engine, db.hasher, before=NEW)
    assert broken.value.finding.kind == "missing"
    db.checkpoint(1, delete=False)
    db.run("UPDATE audit_checkpoints SET pruned_count = 7")
    with pytest.raises(ChainBroken) as broken:
        await prune(db.engine, db.hasher, before=NEW)
    assert broken.value.finding == Finding("checkpoint", 1, 1, FORGED)
    assert db.seqs() == [1, 2, 4, 5]


async def test_rows_missing_at_the_end_of_a_chunk_are_not_pruned(db: Db) -> None:
    db.add(1, 4, ts=OLD)
    db.add(5, 5, ts=NEW)
    db.checkpoint(1)
    db.run("DELETE FROM user_actions WHERE seq IN (2, 3, 4)")
    with pytest.raises(ChainBroken) as broken:
        await prune(db.engine, db.hasher, before=NEW)
    assert broken.value.finding == Finding("missing", None, 2, "seq 2..4 missing: not pruned")
    db.add(6, 6, ts=NEW)  # a chunk of one row missing
    db.run("DELETE FROM user_actions WHERE seq = 5")
    with pytest.raises(ChainBroken) as broken:
        await prune(db.engine, db.hasher, before=datetime(2025, 3, 2, tzinfo=UTC), chunk=2)
    assert broken.value.finding == Finding("missing", None, 2, "seq 2..3 missing: not pruned")


class Recording:
    """The pruner's connection, recording its statements; as PostgreSQL, its text statements are not run."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn, self.dialect, self.statements = conn, SimpleNamespace(name=dialect), []
        self.objects: list[Any] = []

    async def execute(self, statement: Any, params: Any = None) -> Any:
        literal = isinstance(statement, sa.Update)
        self.statements.append((str(statement.compile(compile_kwargs={"literal_binds": literal})), params))
        self.objects.append(statement)
        if self.dialect.name == "postgresql" and isinstance(statement, sa.TextClause):
            return None
        return await self.conn.execute(statement, params)


async def test_on_postgresql_one_pruner_at_a_time_deletes_as_the_retention_role(db: Db) -> None:
    db.add(1, 3, ts=OLD)
    async with db.engine.begin() as conn:
        recording = Recording(conn, "postgresql")
        assert await _prune_chunk(recording, db.hasher, NEW, 100, "the_role") == (3, 3)  # type: ignore[arg-type]
    assert recording.statements[:2] == [("SELECT pg_advisory_xact_lock(:key)", {"key": 0x617564_7072}),
                                        ('SET LOCAL ROLE "the_role"', None)]
    assert not any(s.startswith("UPDATE") for s, _ in recording.statements)


class AsPostgres:
    """An engine whose transactions are recorded as PostgreSQL's (text statements not run)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.statements = engine, []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Recording]:
        async with self.engine.begin() as conn:
            recording = Recording(conn, "postgresql")
            yield recording
            self.statements += recording.statements


async def test_prune_deletes_as_the_retention_role_unless_told_another(db: Db) -> None:
    db.add(1, 3, ts=OLD)
    engine = AsPostgres(db.engine)
    assert await prune(engine, db.hasher, before=NEW, chunk=2) == PruneResult(3, 2, 3)  # type: ignore[arg-type]
    assert [s for s, _ in engine.statements if s.startswith("SET")] == ['SET LOCAL ROLE "audit_retention"'] * 3
    db.add(4, 4, ts=OLD)
    engine = AsPostgres(db.engine)
    assert await prune(engine, db.hasher, before=NEW, role="other") == PruneResult(1, 1, 4)  # type: ignore[arg-type]
    assert [s for s, _ in engine.statements if s.startswith("SET")] == ['SET LOCAL ROLE "other"'] * 2


async def test_a_naive_before_is_bound_as_utc_for_a_timestamptz_comparison(db: Db) -> None:
    db.add(1, 1, ts=OLD)
    async with db.engine.begin() as conn:
        recording = Recording(conn, "postgresql")
        engine = SimpleNamespace(begin=lambda: nullcontext_async(recording))
        await prune(engine, db.hasher, before=datetime(2025, 2, 1))  # type: ignore[arg-type]
    bound = [b.value for s in recording.objects if isinstance(s, sa.Select)
             for b in s.compile().binds.values() if isinstance(b.value, datetime)]
    assert bound and all(v == datetime(2025, 2, 1, tzinfo=UTC) and v.tzinfo is UTC for v in bound)


@asynccontextmanager
async def nullcontext_async(value: Any) -> AsyncIterator[Any]:
    yield value


async def test_on_sqlite_the_pruner_takes_the_write_lock_first(db: Db) -> None:
    db.add(1, 3, ts=OLD)
    async with db.engine.begin() as conn:
        recording = Recording(conn, "sqlite")
        assert await _prune_chunk(recording, db.hasher, NEW, 2, "the_role") == (2, 2)  # type: ignore[arg-type]
    statement, params = recording.statements[0]
    assert " ".join(statement.split()) == (
        "UPDATE audit_chain_head SET seq=audit_chain_head.seq WHERE audit_chain_head.id = 1")
    assert params is None
    assert db.seqs() == [3]


# --- the periodic task -----------------------------------------------------------------------------------------------
def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def verifications(result: str) -> float:
    return sample("audit_chain_verifications_total", result=result) or 0.0


def maintenance(db: Db, **options: Any) -> AuditMaintenance:
    return AuditMaintenance(db.engine, **{"hmac_key": KEY, "verify_interval_seconds": 60, "retention_days": 0,
                                          **options})


async def test_the_periodic_verifier_walks_incrementally_and_exports_its_result(db: Db) -> None:
    db.add(1, 5)
    task = maintenance(db, page_size=2)
    ok = verifications("ok")
    limits: list[Any] = []
    sa.event.listen(db.engine.sync_engine, "before_cursor_execute",
                    lambda conn, cursor, sql, params, *_: limits.append(params[-2]) if "seq >" in sql else None)
    with capture_logs() as logs:
        first = await task.verify_once()
    assert (logs, limits) == ([], [2, 2, 2, 2])  # pages of two; nothing to say when the chain is intact
    assert first is not None
    intact(db, first, "genesis", 0, 5, 5, 5)
    assert (sample("audit_chain_verified_seq"), sample("audit_chain_broken"), verifications("ok") - ok) == (5, 0, 1)
    assert abs(sample("audit_chain_last_verification_timestamp_seconds") - time.time()) < 5  # type: ignore[operator]
    db.add(6, 7)
    second = await task.verify_once()
    assert second is not None
    intact(db, second, "seq 5", 5, 7, 2, 7)
    assert sample("audit_chain_verified_seq") == 7


async def test_the_periodic_verifier_reports_the_chain_head_it_read(db: Db) -> None:
    seq = int(sample("audit_chain_head_seq") or 0) + 1000  # the gauge only moves forward, in this process
    db.add(1, 1)
    db.head(seq, "e" * 64)
    result = await maintenance(db).verify_once()
    assert result is not None and result.finding is not None and result.finding.kind == "truncated"
    assert sample("audit_chain_head_seq") == seq


async def test_the_periodic_verifier_logs_a_finding_once_and_when_it_is_gone(db: Db) -> None:
    db.add(1, 5)
    db.run("UPDATE user_actions SET resource = '/x' WHERE seq = 4")
    task = maintenance(db)
    broken = verifications("broken")
    with capture_logs() as logs:
        first = await task.verify_once()
        second = await task.verify_once()
    assert first is not None and first.finding is not None and second is not None
    assert (second.start, second.finding) == ("seq 3", first.finding)  # intact up to seq 3: resumes there
    assert (sample("audit_chain_verified_seq"), sample("audit_chain_broken")) == (3, 1)
    assert verifications("broken") - broken == 2
    assert logs == [{"event": "audit_chain_broken", "log_level": "error", "kind": "altered", "row_id": db.ids()[4],
                     "seq": 4, "detail": first.finding.detail, "verified_seq": 3}]

    db.run("UPDATE user_actions SET resource = '/r/4' WHERE seq = 4")
    with capture_logs() as logs:
        third = await task.verify_once()
        fourth = await task.verify_once()
    assert third is not None and third.ok and fourth is not None and fourth.ok
    assert sample("audit_chain_broken") == 0
    assert logs == [{"event": "audit_chain_intact_again", "log_level": "info", "verified_seq": 5}]


async def test_a_new_finding_is_logged_again(db: Db) -> None:
    db.add(1, 5)
    db.run("UPDATE user_actions SET resource = '/x' WHERE seq = 4")
    task = maintenance(db)
    with capture_logs() as logs:
        await task.verify_once()
        db.run("UPDATE user_actions SET resource = '/y' WHERE seq = 4", "DELETE FROM user_actions WHERE seq = 5")
        await task.verify_once()  # seq 4 still altered: the same finding
        db.run("UPDATE user_actions SET resource = '/r/4' WHERE seq = 4")
        await task.verify_once()
    assert [(e["event"], e.get("kind")) for e in logs] == [
        ("audit_chain_broken", "altered"), ("audit_chain_broken", "truncated")]


async def test_a_database_the_verifier_cannot_read_is_an_error_logged_in_short(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    task = AuditMaintenance(engine, hmac_key=None, verify_interval_seconds=60, retention_days=0)
    errors = verifications("error")
    try:
        with capture_logs() as logs:
            assert await task.verify_once() is None
    finally:
        await engine.dispose()
    assert verifications("error") - errors == 1
    [entry] = logs
    assert (entry["event"], entry["log_level"], entry["error_type"]) == (
        "audit_chain_verification_failed", "warning", "OperationalError")
    assert entry["error"].startswith("(sqlite3.OperationalError) no such table: audit_checkpoints")
    assert len(entry["error"]) == 300


async def test_prune_once_prunes_what_is_older_than_the_retention_days(db: Db, tokyo: None) -> None:
    now = datetime.now(UTC)
    db.add(1, 2, ts=now - timedelta(days=3, hours=1))
    db.add(3, 3, ts=now - timedelta(days=2, hours=23))
    assert await maintenance(db, retention_days=3).prune_once() == PruneResult(2, 1, 2)
    assert db.seqs() == [3]


async def test_prune_once_refuses_a_broken_chain_and_logs_why(db: Db) -> None:
    db.add(1, 3, ts=OLD)
    db.run("UPDATE user_actions SET resource = '/x' WHERE seq = 2")
    with capture_logs() as logs:
        assert await maintenance(db, retention_days=1).prune_once() is None
    [entry] = logs
    assert entry == {"event": "audit_prune_refused", "log_level": "error", "reason": "chain broken",
                     "kind": "altered", "row_id": db.ids()[2], "seq": 2, "detail": entry["detail"]}
    assert entry["detail"].startswith("row_hash does not match the row's contents")
    assert db.seqs() == [1, 2, 3]


async def test_prune_once_logs_a_failure_in_short(tmp_path: Path) -> None:
    sync = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    metadata.create_all(sync, tables=[audit_chain_head])  # half migrated
    sync.dispose()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with capture_logs() as logs:
            task = AuditMaintenance(engine, hmac_key=None, verify_interval_seconds=0, retention_days=1)
            assert await task.prune_once() is None
    finally:
        await engine.dispose()
    [entry] = logs
    assert (entry["event"], entry["log_level"], entry["error_type"]) == (
        "audit_prune_failed", "error", "OperationalError")
    assert entry["error"].startswith("(sqlite3.OperationalError) no such table: audit_checkpoints")
    assert len(entry["error"]) == 300


class Calls:
    def __init__(self, task: AuditMaintenance, until: int) -> None:
        self.calls: list[str] = []
        self.until, self.done = until, asyncio.Event()
        task.verify_once, task.prune_once = self.called("verify"), self.called("prune")  # type: ignore[method-assign]

    def called(self, what: str) -> Any:
        async def call() -> None:
            self.calls.append(what)
            if len(self.calls) >= self.until:
                self.done.set()
        return call


async def test_the_task_prunes_first_then_verifies_each_on_its_own_interval(db: Db) -> None:
    task = maintenance(db, verify_interval_seconds=0.001, retention_days=1)
    calls = Calls(task, until=4)
    task.start()
    first = task._task
    task.start()
    assert task._task is first and first is not None and first.get_name() == "audit-maintenance"
    await asyncio.wait_for(calls.done.wait(), 0.5)
    await task.stop()
    assert task._task is None and first.cancelled()
    assert calls.calls[:4] == ["prune", "verify", "verify", "verify"]


async def test_the_task_only_prunes_or_only_verifies_when_the_other_is_off(db: Db) -> None:
    task = maintenance(db, verify_interval_seconds=0, retention_days=1, prune_interval_seconds=0.001)
    calls = Calls(task, until=3)
    task.start()
    await asyncio.wait_for(calls.done.wait(), 0.5)
    await task.stop()
    assert calls.calls[:3] == ["prune", "prune", "prune"]
    task = maintenance(db, verify_interval_seconds=0.001, retention_days=0, prune_interval_seconds=0)
    calls = Calls(task, until=3)
    task.start()
    await asyncio.wait_for(calls.done.wait(), 0.5)
    await task.stop()
    assert calls.calls[:3] == ["verify", "verify", "verify"]


async def test_the_task_waits_the_interval_after_a_verification(db: Db) -> None:
    task = maintenance(db, verify_interval_seconds=3600)
    calls = Calls(task, until=1)
    task.start()
    await asyncio.wait_for(calls.done.wait(), 0.5)
    for _ in range(20):
        await asyncio.sleep(0)  # let the task run its next turns, if it had any due
    await task.stop()
    assert calls.calls == ["verify"]


async def test_the_task_is_off_when_neither_verifying_nor_pruning(db: Db) -> None:
    assert maintenance(db, verify_interval_seconds=0.5).enabled
    assert maintenance(db, verify_interval_seconds=0, retention_days=1).enabled
    task = maintenance(db, verify_interval_seconds=0, retention_days=0)
    assert not task.enabled
    task.start()
    assert task._task is None
    await task.stop()
