"""The audit hash chain: encoding, concurrent writers, tampering found by ``verify``, append-only roles, retention.

Tampering is done the way an attacker with database access would: straight
SQL, on PostgreSQL as the superuser with the append-only trigger switched off
for that one statement (the trigger itself is tested in the roles test).
Findings must name the row (id and seq) and make ``verify`` exit non-zero.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from app.migrations import upgrade, upgrade_async
from fastapi_lookout.audit import cli as audit_cli
from fastapi_lookout.audit.chain import (
    FIELDS,
    Hasher,
)
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.schema import audit_checkpoints, user_actions
from fastapi_lookout.audit.verifier import AuditMaintenance, ChainBroken, prune, verify_chain
from tests.support.postgres import PostgresServer
from tests.test_audit_writer import (  # noqa: F401 - the URL fixtures and `engine` are fixtures
    Metrics,
    database_url,
    engine,
    event,
    fetch_rows,
    postgres_url,
    sqlite_url,
    wait_until,
    writer_for,
)

KEY = "test-hmac-key"
NOW = datetime.now(UTC)


# --- helpers ------------------------------------------------------------------------------
async def write(engine: AsyncEngine, events: list[Any], **options: Any) -> None:
    writer = writer_for(engine, **options)
    for e in events:
        assert writer.enqueue(e)
    await writer.start()
    await writer.stop()


async def tamper(engine: AsyncEngine, *statements: str, table: str | None = "user_actions") -> None:
    """Run SQL as the (superuser) test role; on PostgreSQL with ``table``'s append-only trigger off meanwhile."""
    pg = engine.dialect.name == "postgresql" and table is not None
    async with engine.begin() as conn:
        if pg:
            await conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        for sql in statements:
            await conn.execute(sa.text(sql))
        if pg:
            await conn.execute(sa.text(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_append_only"))


async def ids_by_seq(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(user_actions.c.seq, user_actions.c.id))
        return {seq: row_id for seq, row_id in rows}


async def cli_verify(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()  # what the test logged so far is not the CLI's output
    code = await audit_cli.run(["--database-url", url, "verify", "--quiet", *extra])
    return code, capsys.readouterr().out.strip()


@pytest.fixture
async def chained(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Ten rows written by the writer in batches of three: seq 1..10."""
    await write(engine, [event(i) for i in range(10)], batch_size=3)
    yield engine


def url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- a clean chain ------------------------------------------------------------------------------
async def test_awkward_values_hash_the_same_after_a_round_trip_through_the_database(engine: AsyncEngine) -> None:
    data = {"f": 100.0, "big": 1e20, "tiny": 5e-324, "neg0": -0.0, "u64": 2**64 - 1, "text": "é😀\u2028",
            "nested": [1.5, {"b": 2, "a": [None, True]}], "": "empty key"}
    await write(engine, [event(0, request_data=data), event(1, request_data="just a string"),
                         event(2, request_data=[1, 2]), event(3, username="\udc80surrogate", duration_ms=0.1 + 0.2)])
    result = await verify_chain(engine, Hasher())
    assert result.ok, result.summary()
    assert (result.rows, result.last_seq) == (4, 4)


async def test_concurrent_writers_on_separate_engines_build_one_gap_free_chain(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several processes' writers at once: the head lock serialises them, and the chain verifies."""
    await upgrade_async(database_url)
    writers_count, per_writer = 4, 300
    engines = [create_engine(database_url) for _ in range(writers_count)]
    metrics = Metrics()
    try:
        writers = [writer_for(e, batch_size=20, batch_timeout_seconds=0.01, queue_max_size=per_writer)
                   for e in engines]
        await asyncio.gather(*(writer.start() for writer in writers))
        for start in range(0, per_writer, 20):  # rows keep arriving at every writer, as in a busy service
            for w, writer in enumerate(writers):
                for i in range(start, start + 20):
                    assert writer.enqueue(event(i, request_id=f"w{w}-{i}"))
            await asyncio.sleep(0.02)
        await wait_until(lambda: all(writer.pending == 0 for writer in writers), timeout=60, what="all writers")
        await asyncio.gather(*(writer.stop() for writer in writers))
        async with engines[0].connect() as conn:
            rows = (await conn.execute(sa.select(user_actions.c.seq, user_actions.c.request_id)
                                       .order_by(user_actions.c.seq))).all()
    finally:
        for e in engines:
            await e.dispose()
    assert [seq for seq, _ in rows] == list(range(1, writers_count * per_writer + 1))  # unique, gap-free
    assert metrics.delta()["failures"] == 0  # queued on the head lock, not collided and retried
    owners = [rid.split("-")[0] for _, rid in rows]
    switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert switches > writers_count, "the writers did not interleave: this proved nothing about concurrency"
    code, out = await cli_verify(database_url, capsys)
    assert code == 0 and out.startswith(f"OK: {writers_count * per_writer} rows verified"), out


# --- tampering ------------------------------------------------------------------------------------
async def test_an_edited_row_is_named(chained: AsyncEngine, capsys: pytest.CaptureFixture[str]) -> None:
    ids = await ids_by_seq(chained)
    await tamper(chained, "UPDATE user_actions SET outcome = 'error', response_status = 500 WHERE seq = 5")
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: altered: row id={ids[5]} seq=5: "), out
    assert "intact up to seq 4" in out


async def test_a_deleted_row_is_named(chained: AsyncEngine, capsys: pytest.CaptureFixture[str]) -> None:
    ids = await ids_by_seq(chained)
    await tamper(chained, "DELETE FROM user_actions WHERE seq = 5")
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: missing: row id={ids[6]} seq=6: seq 5 missing"), out


async def test_two_swapped_rows_are_named_as_reordered(chained: AsyncEngine,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ids = await ids_by_seq(chained)
    await tamper(chained,
                 "UPDATE user_actions SET seq = -seq WHERE seq IN (5, 6)",
                 "UPDATE user_actions SET seq = CASE seq WHEN -5 THEN 6 ELSE 5 END WHERE seq IN (-5, -6)")
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: reordered: row id={ids[6]} seq=5: the row was written as seq 6"), out


async def test_a_row_inserted_without_the_writer_is_named(chained: AsyncEngine,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    async with chained.begin() as conn:
        new_id = (await conn.execute(user_actions.insert().values(
            timestamp=NOW, action_type="create_author", resource="POST /api/authors", outcome="success",
            response_status=201, duration_ms=1.0).returning(user_actions.c.id))).scalar()
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: unchained: row id={new_id} seq=None: "), out


async def test_a_row_appended_with_a_hash_computed_without_the_key_is_named(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AUDIT_HMAC_KEY the forger cannot compute a valid hash, even moving the head along."""
    await write(engine, [event(i) for i in range(3)], hmac_key=KEY)
    forged = {name: None for name in FIELDS} | {
        "timestamp": NOW, "action_type": "delete_author", "resource": "DELETE /api/authors/1",
        "outcome": "success", "response_status": 204, "duration_ms": 1.0}
    async with engine.connect() as conn:
        last_hash = (await conn.execute(sa.select(user_actions.c.row_hash).where(user_actions.c.seq == 3))).scalar()
    forged_hash = Hasher().row_hash(forged, 4, last_hash)  # plain SHA-256: all an attacker without the key has
    async with engine.begin() as conn:
        new_id = (await conn.execute(user_actions.insert().values(
            **forged, seq=4, prev_hash=last_hash, row_hash=forged_hash).returning(user_actions.c.id))).scalar()
        await conn.execute(sa.text(f"UPDATE audit_chain_head SET seq = 4, row_hash = '{forged_hash}'"))
    monkeypatch.setenv("AUDIT_HMAC_KEY", KEY)
    code, out = await cli_verify(url_of(engine), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: altered: row id={new_id} seq=4: "), out
    monkeypatch.delenv("AUDIT_HMAC_KEY")
    code, out = await cli_verify(url_of(engine), capsys)  # the wrong (no) key: the very first row fails
    assert code == 1 and "seq=1: " in out and "sha256" in out, out


async def test_a_row_appended_behind_the_heads_back_is_named(chained: AsyncEngine,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Without a key a forger can compute a valid hash; the head, moved only by the writer, still tells."""
    forged = {name: None for name in FIELDS} | {
        "timestamp": NOW, "action_type": "a", "resource": "/r", "outcome": "success", "response_status": 200,
        "duration_ms": 1.0}
    async with chained.begin() as conn:
        last_hash = (await conn.execute(sa.select(user_actions.c.row_hash).where(user_actions.c.seq == 10))).scalar()
        new_id = (await conn.execute(user_actions.insert().values(
            **forged, seq=11, prev_hash=last_hash, row_hash=Hasher().row_hash(forged, 11, last_hash))
            .returning(user_actions.c.id))).scalar()
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN: beyond_head: row id={new_id} seq=11: "), out


async def test_a_truncated_tail_is_found_through_the_head_and_an_anchor(
    chained: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 0
    anchor = out.split("head seq ")[1].split(" row_hash ")
    anchor_arg = f"{anchor[0]}:{anchor[1].split(';')[0].strip()}"
    await tamper(chained, "DELETE FROM user_actions WHERE seq > 8")
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 1 and out.startswith("BROKEN: truncated: row id=None seq=10: "), out
    # The attacker also moves the head back: only the anchor kept elsewhere still tells.
    async with chained.connect() as conn:
        seq8 = (await conn.execute(sa.select(user_actions.c.row_hash).where(user_actions.c.seq == 8))).scalar()
    # The head is not append-only (writers move it): no trigger to switch off.
    await tamper(chained, f"UPDATE audit_chain_head SET seq = 8, row_hash = '{seq8}'", table=None)
    code, out = await cli_verify(url_of(chained), capsys)
    assert code == 0, out
    code, out = await cli_verify(url_of(chained), capsys, "--anchor", anchor_arg)
    assert code == 1 and out.startswith("BROKEN: truncated: row id=None seq=10: "), out


# --- append-only on PostgreSQL ------------------------------------------------------------------------
def _error(server: PostgresServer, db: str, sql: str, user: str | None = None) -> str:
    result = server.psql(sql, db=db, user=user, check=False)
    return result.stderr.strip() if result.returncode else ""


def _ensure_role(server: PostgresServer, name: str, options: str) -> None:
    server.psql(f"DO $$ BEGIN CREATE ROLE {name} {options}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")


async def test_append_only_for_every_role_but_retention_and_read_only_for_grafana(
    postgres_server: PostgresServer,
) -> None:
    """The compose layout: a LOGIN app role (no superuser, no CREATEROLE) owns the database and migrates it."""
    server, suffix = postgres_server, uuid.uuid4().hex[:8]
    app_role, db = f"app_{suffix}", f"roles_{suffix}"
    server.psql(f"CREATE ROLE {app_role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    _ensure_role(server, "audit_retention", "NOLOGIN")  # what a superuser init provides
    _ensure_role(server, "grafana_reader", "LOGIN")
    server.psql(f"GRANT audit_retention TO {app_role}")
    server.psql(f'CREATE DATABASE "{db}" OWNER {app_role}')
    app_url = server.url(db, user=app_role)
    await upgrade_async(app_url)
    eng = create_engine(app_url)
    try:
        await write(eng, [event(i) for i in range(6)])
        for sql in ("UPDATE user_actions SET outcome = 'error'", "DELETE FROM user_actions WHERE seq = 1",
                    "TRUNCATE user_actions", "UPDATE audit_checkpoints SET seq = 0",
                    "DELETE FROM audit_checkpoints"):
            for role in (app_role, None):  # the owner, and the superuser: the trigger spares nobody
                assert "append-only" in _error(server, db, sql, user=role), (sql, role)
        replica = "SET session_replication_role = replica; DELETE FROM user_actions"
        assert "append-only" in _error(server, db, replica)  # ENABLE ALWAYS: not switched off for replication
        assert "permission denied" in _error(
            server, db, "SET ROLE audit_retention; UPDATE user_actions SET outcome = 'error'", user=app_role)

        reader = "grafana_reader"
        assert server.psql("SELECT count(*) FROM user_actions", db=db, user=reader).stdout.strip() == "6"
        for sql in ("INSERT INTO user_actions (timestamp, action_type, resource, outcome, response_status, "
                    "duration_ms) VALUES (now(), 'x', 'y', 'success', 200, 1)",
                    "UPDATE user_actions SET outcome = 'error'", "DELETE FROM user_actions", "TRUNCATE user_actions",
                    "SELECT * FROM audit_checkpoints", "SELECT * FROM audit_chain_head",
                    "UPDATE audit_chain_head SET seq = 0", "SELECT * FROM authors"):
            assert "permission denied" in _error(server, db, f"BEGIN READ WRITE; {sql}; COMMIT", user=reader), sql
        grants = server.psql("SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                             f"WHERE grantee = '{reader}' AND table_catalog = '{db}'", db=db).stdout.split()
        assert grants == ["user_actions|SELECT"]

        # The pruning job, with the app's own credentials, SET ROLEs to audit_retention.
        result = await prune(eng, Hasher(), before=datetime(2026, 1, 1, tzinfo=UTC), chunk=4)
        assert (result.pruned, result.checkpoints, result.last_seq) == (6, 2, 6)
        assert (await verify_chain(eng, Hasher())).ok
    finally:
        await eng.dispose()


async def test_migration_as_superuser_creates_the_missing_roles(postgres_server: PostgresServer,
                                                                postgres_db: str) -> None:
    upgrade(postgres_server.url(postgres_db))
    roles = postgres_server.psql(
        "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles "
        "WHERE rolname IN ('audit_retention', 'grafana_reader') ORDER BY 1").stdout.split()
    assert roles == ["audit_retention|f|f", "grafana_reader|t|f"]
    triggers = postgres_server.psql(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1", db=postgres_db).stdout.split()
    assert triggers == ["audit_checkpoints_append_only|A", "user_actions_append_only|A"]  # A: ENABLE ALWAYS


# --- retention -----------------------------------------------------------------------------------------
async def test_retention_prunes_a_prefix_checkpoints_it_and_the_rest_still_verifies(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    recent = NOW - timedelta(hours=1)
    old = [event(i) for i in range(9)]  # January 2025
    late = event(9, timestamp=recent)
    replayed_old = event(10)  # an old row committed after a recent one (a spool replay): kept, the chain has no holes
    newest = event(11, timestamp=recent)
    await write(engine, [*old, late, replayed_old, newest])
    metric = REGISTRY.get_sample_value("audit_rows_pruned_total") or 0.0

    result = await prune(engine, Hasher(), before=NOW - timedelta(days=30), chunk=4)
    assert (result.pruned, result.checkpoints, result.last_seq) == (9, 3, 9)
    assert REGISTRY.get_sample_value("audit_rows_pruned_total") - metric == 9
    assert [r["request_id"] for r in await fetch_rows(engine)] == [e.request_id for e in (late, replayed_old, newest)]
    async with engine.connect() as conn:
        cps = (await conn.execute(sa.select(audit_checkpoints.c.seq, audit_checkpoints.c.pruned_count)
                                  .order_by(audit_checkpoints.c.id))).all()
    assert [tuple(c) for c in cps] == [(4, 4), (8, 4), (9, 1)]
    assert (await prune(engine, Hasher(), before=NOW - timedelta(days=30))).pruned == 0  # idempotent

    code, out = await cli_verify(url_of(engine), capsys)
    assert code == 0 and out.startswith("OK: 3 rows verified (seq 10..12) from checkpoint id="), out


async def test_a_tampered_or_removed_checkpoint_is_found(engine: AsyncEngine,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    await write(engine, [event(i) for i in range(6)] + [event(6, timestamp=NOW)])
    await prune(engine, Hasher(), before=NOW - timedelta(days=1), chunk=3)
    async with engine.connect() as conn:
        newest = (await conn.execute(sa.select(audit_checkpoints.c.id).order_by(audit_checkpoints.c.id.desc())
                                     .limit(1))).scalar()
    await tamper(engine, f"UPDATE audit_checkpoints SET pruned_count = 1 WHERE id = {newest}",
                 table="audit_checkpoints")
    code, out = await cli_verify(url_of(engine), capsys)
    assert code == 1 and out.startswith(f"BROKEN: checkpoint: checkpoint id={newest} seq=6: signature"), out

    await tamper(engine, f"DELETE FROM audit_checkpoints WHERE id = {newest}", table="audit_checkpoints")
    code, out = await cli_verify(url_of(engine), capsys)  # back to the older checkpoint: rows 4..6 are gone
    assert code == 1 and "missing: row id=" in out and "seq=7: seq 4..6 missing" in out, out


async def test_a_broken_chain_is_never_pruned(chained: AsyncEngine) -> None:
    await tamper(chained, "UPDATE user_actions SET username = 'mallory' WHERE seq = 3")
    with pytest.raises(ChainBroken, match=r"altered: row id=\d+ seq=3"):
        await prune(chained, Hasher(), before=NOW, chunk=100)
    assert len(await fetch_rows(chained)) == 10  # nothing deleted, no checkpoint burying the evidence
    async with chained.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_checkpoints))).scalar() == 0


# --- the app's periodic verifier -------------------------------------------------------------------------
def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def _verifications(result: str) -> float:
    return REGISTRY.get_sample_value("audit_chain_verifications_total", {"result": result}) or 0.0


async def test_periodic_verifier_is_incremental_and_exports_its_result(chained: AsyncEngine) -> None:
    maintenance = AuditMaintenance(chained, hmac_key=None, verify_interval_seconds=60, retention_days=0)
    ok_before, broken_before = _verifications("ok"), _verifications("broken")
    first = await maintenance.verify_once()
    assert first is not None and first.ok and first.rows == 10
    assert (_gauge("audit_chain_verified_seq"), _gauge("audit_chain_broken")) == (10, 0)
    assert _gauge("audit_chain_head_seq") >= 10
    assert abs(_gauge("audit_chain_last_verification_timestamp_seconds") - datetime.now(UTC).timestamp()) < 5

    await write(chained, [event(i) for i in range(10, 13)])
    second = await maintenance.verify_once()
    assert second is not None and second.ok and (second.rows, second.last_seq) == (3, 13)  # only the new rows
    assert _verifications("ok") - ok_before == 2

    await write(chained, [event(13)])
    await tamper(chained, "UPDATE user_actions SET resource = '/elsewhere' WHERE seq = 14")
    with capture_logs() as logs:
        third = await maintenance.verify_once()
        fourth = await maintenance.verify_once()
    assert third is not None and third.finding is not None and third.finding.kind == "altered"
    assert fourth is not None and fourth.finding == third.finding
    assert (_gauge("audit_chain_verified_seq"), _gauge("audit_chain_broken")) == (13, 1)
    assert _verifications("broken") - broken_before == 2
    broken_logs = [e for e in logs if e["event"] == "audit_chain_broken"]
    assert [(e["log_level"], e["seq"], e["kind"]) for e in broken_logs] == [("error", 14, "altered")]  # once


async def test_periodic_verifier_counts_a_database_it_cannot_read_as_an_error(sqlite_url: str) -> None:
    eng = create_engine(sqlite_url)  # never migrated
    try:
        maintenance = AuditMaintenance(eng, hmac_key=None, verify_interval_seconds=0.05, retention_days=0)
        before = _verifications("error")
        with capture_logs() as logs:
            maintenance.start()
            await wait_until(lambda: _verifications("error") - before >= 2, what="two failed runs")
            await maintenance.stop()
    finally:
        await eng.dispose()
    assert any(e["event"] == "audit_chain_verification_failed" and e["log_level"] == "warning" for e in logs)

