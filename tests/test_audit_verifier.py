"""The verifier's checkpoint check, in memory: each way a retention checkpoint can be forged is a finding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi_lookout.audit.chain import GENESIS, Finding, Hasher
from fastapi_lookout.audit.verifier import check_checkpoints

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
