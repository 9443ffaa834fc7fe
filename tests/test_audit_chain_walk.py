"""The audit chain in memory: what each checkpoint signature covers, and every branch of the chain walk.

Pure unit tests on ``fastapi_lookout.audit.chain`` (no database): fast enough for mutation testing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from fastapi_lookout.audit.chain import (
    FIELDS,
    GENESIS,
    REORDER_WINDOW,
    ChainWalk,
    Finding,
    Hasher,
    canonical_checkpoint,
    canonical_row,
    chain_message,
)

KEY = "test-hmac-key"
CREATED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
CHECKED = "checked with sha256: is AUDIT_HMAC_KEY the writer's?"


def base_row(n: int = 0, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in FIELDS} | {
        "id": 100 + n, "timestamp": datetime(2025, 1, 1, tzinfo=UTC), "action_type": "a", "resource": f"/r/{n}",
        "outcome": "success", "response_status": 200, "duration_ms": 1.0,
    }
    row.update(overrides)
    return row


def chain(count: int, hasher: Hasher | None = None) -> list[dict[str, Any]]:
    hasher = hasher or Hasher()
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        row = base_row(seq, seq=seq, prev_hash=prev)
        row["row_hash"] = prev = hasher.row_hash(row, seq, prev)
        rows.append(row)
    return rows


def walk_all(rows: list[dict[str, Any]], hasher: Hasher | None = None) -> tuple[ChainWalk, Finding | None]:
    walk = ChainWalk(hasher or Hasher())
    for row in rows:
        finding = walk.feed(row)
        if finding is not None:
            return walk, finding
    return walk, None


# --- checkpoint signatures -------------------------------------------------------------------
def test_checkpoint_signature_is_a_known_value_over_the_canonical_checkpoint() -> None:
    message = canonical_checkpoint(5, "a" * 64, 5, CREATED, GENESIS)
    assert message == b'["uc1",5,"' + b"a" * 64 + b'",5,1735787045678000,"' + GENESIS.encode() + b'"]'
    hasher = Hasher(KEY)
    assert hasher.checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS) == hasher.digest(message)
    assert Hasher().checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS) == Hasher().digest(message)


def test_a_checkpoint_repointed_to_another_row_hash_is_detected() -> None:
    hasher = Hasher(KEY)
    signed = hasher.checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS)
    assert hasher.checkpoint_signature(5, "b" * 64, 5, CREATED, GENESIS) != signed


def test_a_checkpoint_relinked_to_another_previous_signature_is_detected() -> None:
    hasher = Hasher(KEY)
    signed = hasher.checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS)
    assert hasher.checkpoint_signature(5, "a" * 64, 5, CREATED, "c" * 64) != signed


def test_every_checkpoint_field_is_signed() -> None:
    hasher = Hasher(KEY)
    signed = hasher.checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS)
    assert hasher.checkpoint_signature(6, "a" * 64, 5, CREATED, GENESIS) != signed
    assert hasher.checkpoint_signature(5, "a" * 64, 4, CREATED, GENESIS) != signed
    assert hasher.checkpoint_signature(5, "a" * 64, 5, CREATED.replace(microsecond=1), GENESIS) != signed
    assert Hasher("another key").checkpoint_signature(5, "a" * 64, 5, CREATED, GENESIS) != signed


# --- row encoding -------------------------------------------------------------------------------
def test_a_row_with_a_null_response_status_hashes_stably_and_unlike_zero_or_empty() -> None:
    row = base_row(response_status=None)
    encoded = canonical_row(row, 1, GENESIS)
    assert b',null,null,1.0]' in encoded  # response_status, error_message, duration_ms
    hasher = Hasher()
    digest = hasher.row_hash(row, 1, GENESIS)
    assert digest == hasher.row_hash(base_row(response_status=None), 1, GENESIS)
    assert digest != hasher.row_hash(base_row(response_status=0), 1, GENESIS)
    assert digest != hasher.row_hash(base_row(error_message=""), 1, GENESIS)
    stored = base_row(response_status=None, seq=1, prev_hash=GENESIS, row_hash=digest)
    assert walk_all([stored])[1] is None


def test_a_status_read_back_as_text_hashes_as_the_integer() -> None:
    assert canonical_row(base_row(response_status="200"), 1, GENESIS) == canonical_row(base_row(), 1, GENESIS)


def test_chain_message_of_no_fields_is_the_version_seq_and_prev_hash() -> None:
    assert chain_message(b"[]", 3, GENESIS) == orjson.dumps(["ua1", 3, GENESIS])
    assert chain_message(b"[1]", 3, GENESIS) == orjson.dumps(["ua1", 3, GENESIS, 1])


# --- the walk -----------------------------------------------------------------------------------
def test_a_clean_chain_is_walked_to_its_end() -> None:
    rows = chain(4)
    walk, finding = walk_all(rows)
    assert finding is None
    assert (walk.last_seq, walk.last_hash, walk.count) == (4, rows[-1]["row_hash"], 4)


def test_a_walk_can_start_after_a_checkpoint() -> None:
    rows = chain(4)
    walk = ChainWalk(Hasher(), 2, rows[1]["row_hash"])
    assert [walk.feed(r) for r in rows[2:]] == [None, None]
    assert (walk.last_seq, walk.count) == (4, 2)


def test_one_missing_row_is_named_by_its_seq() -> None:
    rows = chain(4)
    walk, finding = walk_all(rows[:2] + rows[3:])
    assert finding == Finding("missing", 104, 4, "seq 3 missing before this row (deleted rows)")
    assert (walk.last_seq, walk.count) == (2, 2)


def test_several_missing_rows_are_named_as_a_range() -> None:
    rows = chain(5)
    _, finding = walk_all(rows[:1] + rows[4:])
    assert finding == Finding("missing", 105, 5, "seq 2..4 missing before this row (deleted rows)")


def test_a_missing_first_row_is_named() -> None:
    _, finding = walk_all(chain(3)[1:])
    assert finding == Finding("missing", 102, 2, "seq 1 missing before this row (deleted rows)")


def test_a_repeated_seq_is_named_as_reordered() -> None:
    rows = chain(3)
    walk, finding = walk_all([rows[0], rows[1], rows[1], rows[2]])
    assert finding == Finding("reordered", 102, 2, "seq 2 repeats or goes back (expected 3)")
    assert str(finding) == "reordered: row id=102 seq=2: seq 2 repeats or goes back (expected 3)"
    assert (walk.last_seq, walk.count) == (2, 2)


def test_a_seq_going_backwards_is_named_as_reordered() -> None:
    rows = chain(3)
    _, finding = walk_all([rows[0], rows[1], rows[0]])
    assert finding == Finding("reordered", 101, 1, "seq 1 repeats or goes back (expected 3)")


def test_an_edited_row_still_linked_is_named_as_altered() -> None:
    rows = chain(3)
    rows[1]["outcome"] = "error"
    walk, finding = walk_all(rows)
    assert finding == Finding("altered", 102, 2, f"row_hash does not match the row's contents (edited; {CHECKED})")
    assert (walk.last_seq, walk.last_hash, walk.count) == (1, rows[0]["row_hash"], 1)


def test_an_altered_and_unlinked_row_is_named_as_edited_or_inserted() -> None:
    rows = chain(3)
    rows[1]["prev_hash"] = "f" * 64  # neither its contents nor its link match any more
    _, finding = walk_all(rows)
    assert finding == Finding("altered", 102, 2, "row_hash matches neither the contents nor the previous row "
                              f"(edited or inserted; {CHECKED})")


def test_the_keyed_algorithm_is_named_in_an_altered_finding() -> None:
    hasher = Hasher(KEY)
    rows = chain(2, hasher)
    rows[1]["username"] = "mallory"
    _, finding = walk_all(rows, hasher)
    assert finding is not None and "checked with hmac-sha256" in finding.detail


def test_a_self_consistent_row_with_a_foreign_link_is_named_as_unlinked() -> None:
    hasher = Hasher()
    rows = chain(3)
    rows[2]["prev_hash"] = "f" * 64
    rows[2]["row_hash"] = hasher.row_hash(rows[2], 3, "f" * 64)
    _, finding = walk_all(rows)
    assert finding == Finding("unlinked", 103, 3, "prev_hash is not the row_hash of seq 2 (a row before it "
                              "replaced, or this one inserted with a recomputed hash)")


def test_a_null_prev_hash_is_checked_as_empty_and_is_unlinked() -> None:
    row = base_row(1, seq=1, prev_hash=None)
    row["row_hash"] = Hasher().row_hash(row, 1, "")
    _, finding = walk_all([row])
    assert finding is not None and finding.kind == "unlinked"


def test_a_null_row_hash_is_altered() -> None:
    rows = chain(1)
    rows[0]["row_hash"] = None
    _, finding = walk_all(rows)
    assert finding is not None and finding.kind == "altered"


def _moved(written_seq: int, at_seq: int) -> Finding | None:
    """A row hashed as ``written_seq`` found at ``at_seq``, its link intact."""
    hasher = Hasher()
    prev = "e" * 64
    row = base_row(7, seq=at_seq, prev_hash=prev)
    row["row_hash"] = hasher.row_hash(row, written_seq, prev)
    return ChainWalk(hasher, at_seq - 1, prev).feed(row)


def test_a_row_moved_within_the_window_is_named_with_the_seq_it_was_written_as() -> None:
    assert _moved(1, 2) == Finding("reordered", 107, 2, "the row was written as seq 1: moved")
    assert _moved(2 + REORDER_WINDOW, 2) == Finding(
        "reordered", 107, 2, f"the row was written as seq {2 + REORDER_WINDOW}: moved")
    assert _moved(100 - REORDER_WINDOW, 100) == Finding(
        "reordered", 107, 100, f"the row was written as seq {100 - REORDER_WINDOW}: moved")


def test_a_row_moved_beyond_the_window_or_to_seq_zero_is_named_as_altered() -> None:
    for written, at in ((3 + REORDER_WINDOW, 2), (99 - REORDER_WINDOW, 100), (0, 1)):
        finding = _moved(written, at)
        assert finding is not None and finding.kind == "altered", (written, at, finding)


def test_the_reorder_window_is_64_rows_each_way() -> None:
    assert _moved(66, 2) is not None and _moved(66, 2).kind == "reordered"
    assert _moved(67, 2) is not None and _moved(67, 2).kind == "altered"
