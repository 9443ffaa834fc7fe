"""A spool replays only into the database its rows were meant for; a reviewer moves the rest on purpose.

Real writers spool real rows: the database stays reachable (so the writer
identifies it) but its ``user_actions`` table is renamed away, so every insert
fails until shutdown spools them. Then a writer on another database, or on the
same name re-created, must set them aside and report them, and the reviewer's
``fastapi-lookout-audit replay`` must move them and leave a chain that verifies.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from app.migrations import upgrade_async
from fastapi_lookout.audit import cli as audit_cli
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.spool import Spool, encode_row, survey
from fastapi_lookout.audit.target import Target, location_of, read_target
from fastapi_lookout.audit.writer import AuditWriter
from tests.support.postgres import PostgresServer
from tests.test_audit_faults import (  # noqa: F401 - fixture
    DownDatabase,
    down_db,
    rename_table,
    spool_row,
    spooled_request_ids,
)
from tests.test_audit_writer import event, fetch_rows, wait_until, writer_for


async def sqlite_engine_at(path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    return create_engine(url)


@pytest.fixture
async def two_sqlite(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    a, b = await sqlite_engine_at(tmp_path / "a.db"), await sqlite_engine_at(tmp_path / "b.db")
    yield a, b
    await a.dispose()
    await b.dispose()


def url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


async def spool_while_unwritable(engine: AsyncEngine, spool: Path, n: int, prefix: str) -> list[str]:
    """A writer that reached its database spools ``n`` rows at shutdown: bound to that database."""
    await rename_table(engine, "user_actions", "user_actions_away")
    writer = writer_for(engine, spool_path=spool, shutdown_timeout_seconds=0.3, retry_max_seconds=0.05)
    await writer.start()
    sent = [event(i, request_id=f"{prefix}-{i}") for i in range(n)]
    assert all(writer.enqueue(e) for e in sent)
    await writer.stop()
    await rename_table(engine, "user_actions_away", "user_actions")
    assert spooled_request_ids(spool) == [e.request_id for e in sent]
    return [e.request_id for e in sent]


def foreign_gauge() -> float | None:
    return REGISTRY.get_sample_value("audit_spool_foreign_rows")


async def start_and_settle(writer: AuditWriter, spool: Path) -> None:
    await writer.start()
    await wait_until(lambda: not spool.exists() and not list(spool.parent.glob(f"{spool.name}.replay-*")),
                     what="the spool to be replayed or set aside")
    await wait_until(lambda: writer._replayed, what="the replay step to finish")


async def cli(*argv: str) -> int:
    return await audit_cli.run(list(argv), env={})


async def test_a_spool_for_one_database_is_set_aside_by_another_and_replayed_by_a_reviewer(
    two_sqlite: tuple[AsyncEngine, AsyncEngine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_sqlite
    spool = tmp_path / "shared-spool.jsonl"  # one path for both, as one settings file in one directory gives
    sent = await spool_while_unwritable(a, spool, 12, "for-a")

    other = writer_for(b, spool_path=spool)
    with capture_logs() as logs:
        await start_and_settle(other, spool)
    await other.stop()
    assert await fetch_rows(b) == []  # nothing of a's reached b
    [aside] = Spool(spool).foreign()
    assert aside.path == Spool(spool).foreign_path(await read_target(a))
    assert [(t, n) for t, n in aside.rows] == [(await read_target(a), 12)]
    assert other.foreign_spool_rows == 12 and foreign_gauge() == 12
    [report] = [e for e in logs if e["event"] == "audit_spool_foreign"]
    assert (report["rows"], report["path"], report["log_level"]) == (12, str(aside.path), "warning")
    assert str(tmp_path / "a.db") in report["spooled_for"] and str(tmp_path / "b.db") in report["database"]
    assert "fastapi-lookout-audit replay --spool" in report["action"]

    # The reviewer: b is refused without saying so, a dry run changes nothing, a takes them back.
    assert await cli("--database-url", url_of(b), "replay", "--spool", str(aside.path)) == audit_cli.EXIT_ERROR
    assert "ANOTHER database" in capsys.readouterr().out
    assert await cli("--database-url", url_of(a), "replay", "--spool", str(aside.path), "--dry-run") == 0
    assert "12 rows spooled for SQLite file" in capsys.readouterr().out and aside.path.exists()
    assert await cli("--database-url", url_of(a), "replay", "--spool", str(aside.path)) == 0
    assert "replayed 12 rows" in capsys.readouterr().out
    assert [r["request_id"] for r in await fetch_rows(a)] == sent and await fetch_rows(b) == []
    assert not aside.path.exists() and list(tmp_path.glob("shared-spool.jsonl*")) == []
    assert await cli("--database-url", url_of(a), "verify") == 0
    assert capsys.readouterr().out.startswith("OK: 12 rows verified")

    again = writer_for(b, spool_path=spool)  # nothing left aside: the next start reports zero
    await again.start()
    await wait_until(lambda: again._replayed, what="the replay step")
    await again.stop()
    assert again.foreign_spool_rows == 0 and foreign_gauge() == 0


async def test_a_spool_holding_several_databases_rows_replays_only_its_own_in_order(
    two_sqlite: tuple[AsyncEngine, AsyncEngine], tmp_path: Path
) -> None:
    a, b = two_sqlite
    spool_path = tmp_path / "spool.jsonl"
    target_a, target_b = await read_target(a), await read_target(b)
    spool_path.write_bytes(encode_row(spool_row("legacy-0")))  # written before spools named their database
    spool = Spool(spool_path)
    spool.append([spool_row("a-0"), spool_row("a-1")], target_a)
    spool.append([spool_row("b-0")], target_b)
    spool.append([spool_row("a-2")], target_a)
    spool.append([spool_row("nowhere-0")], Target("sqlite:///elsewhere.db"))  # its writer never got there

    writer = writer_for(a, spool_path=spool_path, batch_size=1)
    await start_and_settle(writer, spool_path)
    await writer.stop()
    assert [r["request_id"] for r in await fetch_rows(a)] == ["a-0", "a-1", "a-2"]
    aside = {s.path.name.rsplit("-", 1)[-1]: s for s in spool.foreign()}
    assert {key: (s.rows, spooled_request_ids(s.path)) for key, s in aside.items()} == {
        "unbound": ([(None, 1)], ["legacy-0"]),
        target_b.key: ([(target_b, 1)], ["b-0"]),
        Target("sqlite:///elsewhere.db").key: ([(Target("sqlite:///elsewhere.db"), 1)], ["nowhere-0"]),
    }
    assert writer.foreign_spool_rows == 3


async def test_rows_of_a_writer_that_never_reached_its_database_replay_at_that_location_only(
    down_db: DownDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    never = writer_for(down_db.engine, spool_path=spool, shutdown_timeout_seconds=0.2, retry_max_seconds=0.05)
    for i in range(3):
        assert never.enqueue(event(i, request_id=f"early-{i}"))
    await never.stop()  # never started, database down: bound to the location only
    [(target, rows)] = survey(spool).rows
    assert rows == 3 and target is not None and target.identity is None

    elsewhere = await sqlite_engine_at(tmp_path / "elsewhere.db")
    try:
        copy = tmp_path / "copy.jsonl"
        copy.write_bytes(spool.read_bytes())
        other = writer_for(elsewhere, spool_path=copy)
        await start_and_settle(other, copy)
        await other.stop()
        assert await fetch_rows(elsewhere) == [] and other.foreign_spool_rows == 3
    finally:
        await elsewhere.dispose()

    await down_db.bring_up()  # the database at that location, reached for the first time
    there = writer_for(down_db.engine, spool_path=spool)
    await start_and_settle(there, spool)
    await there.stop()
    assert [r["request_id"] for r in await fetch_rows(down_db.engine)] == ["early-0", "early-1", "early-2"]
    assert there.foreign_spool_rows == 0


async def test_a_postgres_database_created_again_under_its_name_does_not_take_the_old_ones_rows(
    postgres_server: PostgresServer, postgres_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.url(postgres_db)
    spool = tmp_path / "spool.jsonl"
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        before = await read_target(engine)
        sent = await spool_while_unwritable(engine, spool, 8, "old")
    finally:
        await engine.dispose()
    postgres_server.psql(f'DROP DATABASE "{postgres_db}"')
    postgres_server.create_database(postgres_db)
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        after = await read_target(engine)
        assert before.location == after.location and before.identity is not None and after.identity is not None
        assert {k: v for k, v in before.identity.items() if k != "chain_id"} == {
            k: v for k, v in after.identity.items() if k != "chain_id"}  # same cluster, same name...
        assert before.key != after.key  # ...another chain

        writer = writer_for(engine, spool_path=spool)
        await start_and_settle(writer, spool)
        await writer.stop()
        assert await fetch_rows(engine) == [] and writer.foreign_spool_rows == 8

        aside = Spool(spool).foreign_path(before)
        assert await cli("--database-url", url, "replay", "--spool", str(aside)) == audit_cli.EXIT_ERROR
        assert f"PostgreSQL database '{postgres_db}'" in capsys.readouterr().out
        assert await cli("--database-url", url, "replay", "--spool", str(aside), "--into-other-database") == 0
        assert sorted(r["request_id"] for r in await fetch_rows(engine)) == sorted(sent)
        assert await cli("--database-url", url, "verify") == 0
        assert capsys.readouterr().out.splitlines()[-1].startswith("OK: 8 rows verified")
    finally:
        await engine.dispose()


def test_the_target_of_a_url_never_carries_its_credentials() -> None:
    assert location_of("postgresql+asyncpg://app:s3cret@db.internal/audit") == "postgresql://db.internal:5432/audit"
    described = Target(location_of("postgresql+asyncpg://app:s3cret@db:6543/audit")).describe()
    assert "s3cret" not in described and "db:6543/audit" in described


def test_rows_of_a_reviewers_replay_that_died_are_still_reported_where_they_wait(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    elsewhere = Target("sqlite:///elsewhere.db")
    spool.append([spool_row("r-0"), spool_row("r-1")], elsewhere)
    [claimed] = spool.claim()
    spool.set_aside(claimed.read(10))
    spool.finish(claimed)
    [reviewers_claim] = Spool(spool.foreign_path(elsewhere)).claim()
    reviewers_claim.close()  # the replay command died: its claim stays on disk, unlocked
    [waiting] = spool.foreign()
    assert waiting.path == reviewers_claim.path and waiting.rows == [(elsewhere, 2)]
