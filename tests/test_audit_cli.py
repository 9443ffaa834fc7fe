"""The reviewer's CLI beyond ``verify``: export (filters, formats, streaming memory), summary, arguments, errors.

``verify`` against tampered databases is in test_audit_chain.py.
"""

# Fixtures imported from another test module reappear as test parameters: not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import argparse
import csv
import sqlite3
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrations import upgrade_async
from fastapi_lookout.audit import cli as audit_cli
from fastapi_lookout.audit.cli import export_rows, parse_time
from fastapi_lookout.audit.engine import create_engine
from tests.support.postgres import PostgresServer
from tests.test_audit_chain import url_of, write
from tests.test_audit_writer import (  # noqa: F401 - the URL fixtures and `engine` are fixtures
    database_url,
    engine,
    event,
    postgres_url,
    sqlite_engine,
    sqlite_url,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


EVENTS = [
    event(0, request_id="r-alice-list", username="alice", user_id="u-alice", action_type="list_authors",
          timestamp=at(0)),
    event(1, request_id="r-bob-create", username="bob", user_id="u-bob", action_type="create_author",
          outcome="error", response_status=500, timestamp=at(1), request_data={"name": "Ada", "n": 1.5}),
    event(2, request_id="r-anon", action_type="list_authors", outcome="permission_denied", response_status=401,
          timestamp=at(2)),
    event(3, request_id="r-alice-delete", username="alice", user_id="u-alice", action_type="delete_author",
          outcome="permission_denied", response_status=403, timestamp=at(3), user_agent="=HYPERLINK(\"x\")"),
    event(4, request_id="r-bob-get", username="bob", user_id="u-bob", action_type="get_author", timestamp=at(4)),
]


@pytest.fixture
async def populated(engine: AsyncEngine) -> AsyncEngine:
    await write(engine, EVENTS)
    return engine


async def export(url: str, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / "export.jsonl"
    code = await audit_cli.run(["--database-url", url, "export", "--format", "jsonl", "--quiet",
                                "--output", str(out), *args])
    assert code == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["r-alice-list", "r-bob-create", "r-anon", "r-alice-delete", "r-bob-get"]),
        (("--since", at(1).isoformat(), "--until", at(3).isoformat()), ["r-bob-create", "r-anon"]),
        (("--user", "alice"), ["r-alice-list", "r-alice-delete"]),
        (("--user", "u-bob"), ["r-bob-create", "r-bob-get"]),  # user_id matches too
        (("--action-type", "list_authors", "--action-type", "get_author"), ["r-alice-list", "r-anon", "r-bob-get"]),
        (("--outcome", "permission_denied"), ["r-anon", "r-alice-delete"]),
        (("--user", "alice", "--outcome", "permission_denied", "--since", "2025-03-01"), ["r-alice-delete"]),
        (("--since", "2025-03-02"), []),
    ],
)
async def test_export_filters(populated: AsyncEngine, tmp_path: Path, args: tuple[str, ...],
                              expected: list[str]) -> None:
    rows = await export(url_of(populated), tmp_path, *args)
    assert [r["request_id"] for r in rows] == expected


async def test_export_formats_carry_every_column_and_csv_defuses_formulas(populated: AsyncEngine,
                                                                         tmp_path: Path) -> None:
    [bob] = await export(url_of(populated), tmp_path, "--user", "bob", "--action-type", "create_author")
    assert set(bob) == set(audit_cli.EXPORT_COLUMNS)
    assert (bob["timestamp"], bob["request_data"], bob["seq"]) == (at(1).isoformat(), {"name": "Ada", "n": 1.5}, 2)
    assert len(bob["row_hash"]) == 64

    out = tmp_path / "export.csv"
    assert await audit_cli.run(["--database-url", url_of(populated), "export", "--quiet", "--output", str(out)]) == 0
    with out.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["request_id"] for r in table] == [e.request_id for e in EVENTS]
    assert table[3]["user_agent"] == "'=HYPERLINK(\"x\")"  # a spreadsheet shows it, does not run it
    assert orjson.loads(table[1]["request_data"]) == {"name": "Ada", "n": 1.5}
    assert await audit_cli.run(["--database-url", url_of(populated), "export", "--quiet", "--raw-csv",
                                "--output", str(out)]) == 0
    with out.open(newline="") as f:
        assert list(csv.DictReader(f))[3]["user_agent"] == "=HYPERLINK(\"x\")"


async def test_summary_counts_by_outcome_and_user_for_a_period(populated: AsyncEngine,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = await audit_cli.run(["--database-url", url_of(populated), "summary", "--format", "json",
                                "--since", at(1).isoformat(), "--until", at(5).isoformat()])
    assert code == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["total"] == 4
    assert summary["by_outcome"] == {"error": 1, "permission_denied": 2, "success": 1}
    assert summary["by_user"] == {"bob": 2, "(anonymous)": 1, "alice": 1}
    assert summary["users"] == 3
    code = await audit_cli.run(["--database-url", url_of(populated), "summary", "--top", "1"])
    text = capsys.readouterr().out
    assert code == 0 and "total: 5" in text and "by user (1 of 3):" in text and "alice" in text


async def test_export_streams_in_flat_memory(postgres_server: PostgresServer, postgres_db: str,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """50,000 rows out with about one page in memory: the peak is a small fraction of the data exported."""
    url = postgres_server.url(postgres_db)
    await upgrade_async(url)
    n = 50_000
    postgres_server.psql(
        "INSERT INTO user_actions (timestamp, user_id, username, user_roles, action_type, resource, outcome, "
        "ip_address, user_agent, request_id, request_data, response_status, duration_ms) "
        "SELECT now() - make_interval(secs => g), 'u-' || g % 50, 'user' || g % 50, 'reader', 'list_authors', "
        "'GET /api/authors?page=' || g, 'success', '127.0.0.1', repeat('agent ', 20), 'rid-' || g, "
        f"jsonb_build_object('page', g, 'filter', repeat('x', 200)), 200, 1.5 FROM generate_series(1, {n}) g",
        db=postgres_db)
    eng = create_engine(url)
    progress: list[int] = []

    async def peak_of(path: Path, filters: audit_cli.ExportFilters) -> tuple[int, int]:
        with path.open("w") as out:
            tracemalloc.start()
            count = await export_rows(eng, out, fmt="jsonl", filters=filters, page_size=1000,
                                      progress=progress.append)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return count, peak

    try:
        few, few_peak = await peak_of(tmp_path / "few.jsonl",
                                      audit_cli.ExportFilters(since=datetime.now(UTC) - timedelta(seconds=5000)))
        progress.clear()
        count, peak = await peak_of(tmp_path / "all.jsonl", audit_cli.ExportFilters())
    finally:
        await eng.dispose()
    exported = (tmp_path / "all.jsonl").stat().st_size
    assert count == n and sum(1 for _ in (tmp_path / "all.jsonl").open()) == n
    assert progress[-1] == n and len(progress) == n // 1000  # a page at a time
    assert exported > 20_000_000  # ~700 bytes a row: what holding them all would at least take
    assert peak < exported / 5, f"peak {peak:,} B for {exported:,} B exported: not streaming"
    assert 3000 < few < 6000 and peak < 2 * few_peak, (few, few_peak, peak)  # 10x the rows, same memory


# --- arguments and errors -----------------------------------------------------------------------
def test_times_are_iso_or_relative_and_utc() -> None:
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_time("7d", now) == now - timedelta(days=7)
    assert parse_time("90m", now) == now - timedelta(minutes=90)
    assert parse_time("2025-01-02", now) == datetime(2025, 1, 2, tzinfo=UTC)
    assert parse_time("2025-01-02T03:04:05Z", now) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2025-01-02T05:04:05+02:00", now) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday", now)


async def test_unreachable_database_exits_2_with_the_reason(postgres_server: PostgresServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = await audit_cli.run(["--database-url", postgres_server.url("no_such_database"), "verify"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_database" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["verify", "export", "summary", "prune --days 1"])
def test_a_missing_database_is_one_line_and_no_file_is_created(tmp_path: Path, command: str) -> None:
    db = tmp_path / "new.db"
    done = subprocess.run([sys.executable, "scripts/audit.py", "--database-url", f"sqlite+aiosqlite:///{db}",
                           *command.split()], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: no database at {db}: create it with `fastapi-lookout-audit migrate`\n"
    assert not db.exists()


def test_an_unmigrated_database_is_one_line_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "theirs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE mine (x INTEGER)")
    before = db.read_bytes()
    done = subprocess.run([sys.executable, "scripts/audit.py", "--database-url", f"sqlite:///{db}", "verify"],
                          cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: the audit tables are not in this database: run `fastapi-lookout-audit migrate` " \
                          "first\n"
    assert db.read_bytes() == before


async def test_export_into_a_closed_pipe_ends_quietly(sqlite_engine: AsyncEngine, sqlite_url: str) -> None:
    """``audit.py export | head -1``: the reader leaves after one line; the exporter stops without a word."""
    for first in (0, 1000):  # ~1 MB of CSV, in the test writer's queue bound
        await write(sqlite_engine, [event(i, request_data={"pad": "x" * 400}) for i in range(first, first + 1000)])
    exporter = subprocess.Popen([sys.executable, "scripts/audit.py", "--database-url", sqlite_url, "export", "--quiet"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=exporter.stdout, capture_output=True, text=True, check=True)
    exporter.stdout.close()
    stderr = exporter.stderr.read().decode()
    exporter.stderr.close()
    assert exporter.wait(30) == audit_cli.EXIT_PIPE == 141
    assert stderr == ""
    assert head.stdout.startswith("id,timestamp,")


def test_script_verifies_with_database_url_from_the_environment(tmp_path: Path) -> None:
    """The thin script, as a reviewer runs it: DATABASE_URL from the environment, a sync URL, results on stdout."""
    db = tmp_path / "audit.db"
    env = {"DATABASE_URL": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", "import os; from app.migrations import upgrade; "
                    "upgrade(os.environ['DATABASE_URL'])"], cwd=REPO, env=env, check=True)
    done = subprocess.run([sys.executable, "scripts/audit.py", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 0 rows verified") and done.stdout.count("\n") == 1
    pruned = subprocess.run([sys.executable, "scripts/audit.py", "prune"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert pruned.returncode == 2 and "retention is off" in pruned.stderr


async def test_migrate_builds_only_the_audit_tables_in_a_users_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one documented command for a user's database: the audit tables and their own version table, and
    a second run that says it had nothing to do."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'theirs.db'}"
    assert await audit_cli.run(["--database-url", url, "migrate"]) == 0
    assert capsys.readouterr().out == "audit schema at audit_0003 (was empty)\n"
    assert await audit_cli.run(["migrate"], env={"DATABASE_URL": url}) == 0
    assert capsys.readouterr().out == "audit schema at audit_0003\n"
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert tables == {"user_actions", "audit_chain_head", "audit_checkpoints", "fastapi_lookout_audit_version"}


async def test_no_database_configured_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert await audit_cli.run(["verify"], env={}) == 2
    assert capsys.readouterr().err == "error: no database: pass --database-url or set DATABASE_URL\n"
