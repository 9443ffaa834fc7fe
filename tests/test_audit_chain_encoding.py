"""The audit chain's encoding: golden hashes, canonical JSON, the chain message and the walk's findings, in
process (no database): the tests mutation testing (make mutation) runs on fastapi_lookout/audit/chain.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from fastapi_lookout.audit.chain import (
    CHAIN_COLUMNS,
    FIELDS,
    GENESIS,
    ChainWalk,
    Finding,
    Hasher,
    canonical_fields,
    canonical_json,
    canonical_row,
    chain_message,
)
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.spool import COLUMNS as SPOOL_COLUMNS

KEY = "test-hmac-key"


# --- the encoding ---------------------------------------------------------------------------
def test_hash_of_a_known_row_never_changes() -> None:
    """A golden value: changing the canonical encoding must be a new version, not a silent edit."""
    row = {
        "timestamp": datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "user_id": "u-1", "username": "alice",
        "user_roles": "reader", "action_type": "get_author", "resource": "GET /api/authors/1",
        "outcome": "success", "ip_address": "127.0.0.1", "user_agent": "pytest", "request_id": "rid-1",
        "request_data": {"b": [1, 2.5], "a": None}, "response_status": 200, "error_message": None,
        "duration_ms": 12.5,
    }
    assert canonical_row(row, 7, GENESIS) == (
        b'["ua1",7,"' + GENESIS.encode() + b'",1735787045678000,"u-1","alice","reader","get_author",'
        b'"GET /api/authors/1","success","127.0.0.1","pytest","rid-1",{"a":null,"b":[1,2.5]},200,null,12.5]'
    )
    assert Hasher().row_hash(row, 7, GENESIS) == "c376a9cd02d9f98c69306cda0884667f701f59cfd75a222a1844d870b8977d34"
    assert Hasher(KEY).row_hash(row, 7, GENESIS) == "bb2151249cb9d7bba6949075027c7bb829fba3886528fc4ba239e0dbfa424b00"
    assert Hasher(KEY).algorithm == "hmac-sha256" and Hasher("").algorithm == "sha256"


def test_a_row_without_some_columns_hashes_as_if_they_were_null() -> None:
    """Complete rows take the one-call path; a row missing columns (absent = NULL) must hash the same."""
    full = {name: None for name in FIELDS} | {
        "timestamp": datetime(2025, 1, 2, tzinfo=UTC), "action_type": "x", "resource": "GET /", "outcome": "success",
        "response_status": 200, "duration_ms": 1.0,
    }
    partial = {k: v for k, v in full.items() if v is not None}
    assert len(partial) < len(FIELDS)
    assert canonical_row(partial, 1, GENESIS) == canonical_row(full, 1, GENESIS)


def test_json_numbers_are_compared_by_value_as_jsonb_stores_them() -> None:
    def encoded(value: Any) -> bytes:
        return orjson.dumps(canonical_json(value), option=orjson.OPT_SORT_KEYS)

    assert encoded({"f": 100.0, "big": 1e20, "neg0": -0.0, "x": 0.1}) == (
        b'{"big":100000000000000000000,"f":100,"neg0":0,"x":0.1}')
    assert encoded({"f": 100, "big": 10**20, "neg0": 0, "x": 0.1}) == encoded({"f": 100.0, "big": 1e20,
                                                                               "neg0": -0.0, "x": 0.1})
    assert encoded([float("nan"), float("inf"), True, 2**70]) == b"[null,null,true,1180591620717411303424]"
    naive = datetime(2025, 1, 2, 3, 4, 5, 678000)
    base = {name: None for name in FIELDS} | {"response_status": 200, "duration_ms": 1.0}
    assert canonical_row({**base, "timestamp": naive}, 1, GENESIS) == canonical_row(
        {**base, "timestamp": naive.replace(tzinfo=UTC)}, 1, GENESIS)  # SQLite gives it back naive
    assert canonical_row({**base, "timestamp": naive, "request_data": b'{"a":1.0}'}, 1, GENESIS) == canonical_row(
        {**base, "timestamp": naive, "request_data": {"a": 1}}, 1, GENESIS)  # writer's bytes, database's value


def test_every_user_actions_column_is_hashed_or_is_the_chain_itself() -> None:
    columns = {c.name for c in user_actions.columns}
    assert columns == {"id", *FIELDS, *CHAIN_COLUMNS}
    assert set(SPOOL_COLUMNS) == set(FIELDS)  # spooled rows carry no chain: it is assigned at commit


def test_walk_tells_edit_move_gap_and_foreign_row_apart() -> None:
    hasher = Hasher()
    rows, prev = [], GENESIS
    for seq in range(1, 6):
        row = {"id": seq * 10, "seq": seq, "timestamp": datetime(2025, 1, 1, tzinfo=UTC), "action_type": "a",
               "resource": "/r", "outcome": "success", "response_status": 200, "duration_ms": 1.0}
        row["prev_hash"], row["row_hash"] = prev, hasher.row_hash(row, seq, prev)
        prev = row["row_hash"]
        rows.append(row)

    def first_finding(seq_rows: list[dict[str, Any]]) -> str:
        walk = ChainWalk(hasher)
        return next(str(f) for r in seq_rows if (f := walk.feed(r)) is not None)

    clean = ChainWalk(hasher)
    assert [clean.feed(r) for r in rows] == [None] * 5 and (clean.last_seq, clean.last_hash) == (5, prev)
    edited = [dict(r) for r in rows]
    edited[2]["outcome"] = "error"
    assert first_finding(edited).startswith("altered: row id=30 seq=3")
    assert first_finding(rows[:2] + rows[3:]).startswith("missing: row id=40 seq=4: seq 3 missing")
    swapped = [dict(r) for r in rows]
    swapped[1], swapped[2] = {**rows[2], "seq": 2}, {**rows[1], "seq": 3}
    assert first_finding(swapped).startswith("reordered: row id=30 seq=2: the row was written as seq 3")
    forged = [dict(r) for r in rows]
    forged[3] = {**rows[3], "prev_hash": "f" * 64}
    forged[3]["row_hash"] = hasher.row_hash(forged[3], 4, "f" * 64)  # self-consistent, but not linked
    assert first_finding(forged).startswith("unlinked: row id=40 seq=4")


@pytest.mark.parametrize(
    "values", [[], [1], ["a", None, 2.5, {"k": [1, 2]}], ["quote\"back\\slash", "\u00e9\u2603", -(2**63)]]
)
@pytest.mark.parametrize("prev_hash", [GENESIS, 'not "hex"\n'])
def test_the_chain_message_is_what_orjson_writes_for_the_whole_array(values: list, prev_hash: str) -> None:
    """The message is assembled from pre-encoded parts for speed; it must stay one orjson array."""
    assert chain_message(orjson.dumps(values), 42, prev_hash) == orjson.dumps(["ua1", 42, prev_hash, *values])


def test_the_writers_hash_of_pre_encoded_fields_is_the_verifiers_hash_of_the_row() -> None:
    """The writer hashes fields encoded before it takes the head's lock; the verifier hashes whole rows."""
    row = {name: None for name in FIELDS} | {
        "timestamp": datetime(2025, 1, 2, tzinfo=UTC), "action_type": "x", "resource": "GET /", "outcome": "success",
        "response_status": 201, "duration_ms": 2.5, "request_data": {"k": [1]},
    }
    for hasher in (Hasher(), Hasher(KEY)):
        assert hasher.chain_hash(canonical_fields(row), 9, "a" * 64) == hasher.row_hash(row, 9, "a" * 64)
        assert hasher.chain_hash(canonical_fields(row), 9, "a" * 64) != hasher.row_hash(row, 10, "a" * 64)
        assert hasher.chain_hash(canonical_fields(row), 9, "a" * 64) != hasher.row_hash(row, 9, "b" * 64)


def test_a_finding_names_a_checkpoint_as_a_checkpoint_and_anything_else_as_a_row() -> None:
    assert str(Finding("checkpoint", 3, None, "signature does not verify")) == (
        "checkpoint: checkpoint id=3 seq=None: signature does not verify")
    assert str(Finding("altered", 30, 3, "hash differs")) == "altered: row id=30 seq=3: hash differs"
