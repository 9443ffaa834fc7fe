"""The migrations build exactly the declared schema on SQLite and PostgreSQL.

Two histories share the database: the library's audit trail
(``fastapi_lookout.audit.migrations``, version table
``fastapi_lookout_audit_version``) and the reference service's own
(``app/migrations``, ``alembic_version``). The comparison is two-sided and
structural (tables, columns, nullability, primary keys, indexes, unique and
check constraints), plus Alembic's own autogenerate diff for types, comments
and defaults. A column added to a schema module without a migration fails
here, and a test proves the checker notices such a column.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app import db
from app.migrations import SERVICE, async_url, upgrade, upgrade_async
from fastapi_lookout.audit import schema as audit_schema
from fastapi_lookout.audit.migrations import AUDIT, VERSION_TABLE

REPO = Path(__file__).resolve().parent.parent
HEAD = "0002"
AUDIT_HEAD = "audit_0003"
TABLES = {"authors", "user_actions", "audit_chain_head", "audit_checkpoints"}
VERSION_TABLES = {"alembic_version", VERSION_TABLE}
Schema = dict[str, dict[str, Any]]

# The service's table and the library's audit tables, as the migrations build them together.
DECLARED = sa.MetaData()
for _table in (*db.metadata.tables.values(), *audit_schema.metadata.tables.values()):
    _table.to_metadata(DECLARED)


# --- schema snapshots, one from the database, one from app.db -----------------
def reflected_schema(conn: sa.Connection) -> Schema:
    insp = sa.inspect(conn)
    out: Schema = {}
    for table in sorted(set(insp.get_table_names()) - VERSION_TABLES):
        out[table] = {
            "columns": {c["name"]: c["nullable"] for c in insp.get_columns(table)},
            "primary_key": tuple(insp.get_pk_constraint(table)["constrained_columns"]),
            "indexes": {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
                if not i.get("duplicates_constraint")
            },
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            "checks": sorted(c["name"] for c in insp.get_check_constraints(table)),
        }
    return out


def declared_schema(metadata: sa.MetaData) -> Schema:
    out: Schema = {}
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        out[table.name] = {
            "columns": {c.name: c.nullable for c in table.columns},
            "primary_key": tuple(c.name for c in table.primary_key.columns),
            "indexes": {i.name: (tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes},
            "unique": sorted(
                tuple(c.name for c in u.columns) for u in table.constraints if isinstance(u, sa.UniqueConstraint)
            ),
            "checks": sorted(str(c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)),
        }
    return out


def alembic_diff(conn: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    """Alembic's autogenerate view: types, comments and server defaults as well."""
    ctx = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": lambda name, kind, _parent: not (kind == "table" and name in VERSION_TABLES),
        },
    )
    return compare_metadata(ctx, metadata)


async def inspect_db(url: str, fn: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every statement any engine in this process sends, while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


# --- fixtures -------------------------------------------------------------------
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue("postgres_server")
    return server.url(request.getfixturevalue("postgres_db"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
async def migrated_url(database_url: str) -> AsyncIterator[str]:
    await upgrade_async(database_url)
    yield database_url


# --- tests ----------------------------------------------------------------------
async def test_migrated_schema_matches_app_db(migrated_url: str) -> None:
    reflected = await inspect_db(migrated_url, reflected_schema)
    assert reflected == declared_schema(DECLARED)
    assert set(reflected) == TABLES
    assert await inspect_db(migrated_url, lambda c: alembic_diff(c, DECLARED)) == []


async def test_drift_check_notices_a_column_added_without_migration(migrated_url: str) -> None:
    drifted = sa.MetaData()
    for table in DECLARED.tables.values():
        table.to_metadata(drifted)
    drifted.tables["user_actions"].append_column(sa.Column("tenant", sa.String(32), nullable=True))

    reflected = await inspect_db(migrated_url, reflected_schema)
    assert reflected != declared_schema(drifted)
    diff = await inspect_db(migrated_url, lambda c: alembic_diff(c, drifted))
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "tenant")]


async def test_user_roles_comment_is_migrated_on_postgres(postgres_url: str) -> None:
    await upgrade_async(postgres_url)
    columns = await inspect_db(postgres_url, lambda c: sa.inspect(c).get_columns("user_actions"))
    comments = {c["name"]: c.get("comment") for c in columns}
    assert comments["user_roles"] == audit_schema.user_actions.c.user_roles.comment


async def test_second_upgrade_is_a_noop(database_url: str) -> None:
    await upgrade_async(database_url)
    with recorded_statements() as statements:
        await upgrade_async(database_url)
    changes = [
        s
        for s in statements
        if s.lstrip().split(None, 1)[0].upper() in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"}
    ]
    assert statements, "the listener saw nothing: the no-op check would prove nothing"
    assert changes == []
    assert await inspect_db(database_url, _versions_in) == (HEAD, AUDIT_HEAD)


def test_sync_upgrade_outside_an_event_loop(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    tables = asyncio.run(inspect_db(sqlite_url, lambda c: sa.inspect(c).get_table_names()))
    assert set(tables) == {*VERSION_TABLES, *TABLES}


async def test_sync_upgrade_from_inside_a_running_loop(sqlite_url: str) -> None:
    upgrade(sqlite_url)  # must not raise "asyncio.run() cannot be called from a running event loop"
    tables = await inspect_db(sqlite_url, lambda c: sa.inspect(c).get_table_names())
    assert "user_actions" in tables


def _versions_in(conn: sa.Connection) -> tuple[str, ...]:
    """(service revision, audit revision): each history's one row; more rows would be a broken history."""
    found = []
    for table in ("alembic_version", VERSION_TABLE):
        rows = conn.execute(sa.text(f"SELECT version_num FROM {table}")).scalars().all()
        assert len(rows) == 1, (table, rows)
        found.append(rows[0])
    return tuple(found)


def _versions(url: str) -> tuple[str, ...]:
    return asyncio.run(inspect_db(url, _versions_in))


def test_concurrent_upgrades_in_one_process_are_serialised(postgres_url: str) -> None:
    """Alembic's context is process-global: threads upgrading at once must queue, not collide."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(postgres_url)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _versions(postgres_url) == (HEAD, AUDIT_HEAD)


def test_concurrent_upgrades_from_several_processes_are_serialised(database_url: str) -> None:
    """Workers starting together (``uvicorn --workers``, each migrating on start): the advisory lock
    (PostgreSQL) or the file lock (SQLite) turns all but one upgrade into no-ops."""
    # Imports take a while; every process then waits for the same instant so the upgrades overlap.
    code = (
        "import sys, time; from app.migrations import upgrade; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); upgrade(sys.argv[1])"
    )
    go = str(time.time() + 2.5)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, database_url, go], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    failures = [err for p in procs if (err := p.communicate(timeout=120)[1]) and p.returncode != 0]
    assert failures == []
    assert _versions(database_url) == (HEAD, AUDIT_HEAD)


def test_sync_driver_urls_map_to_the_async_drivers() -> None:
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+asyncpg://u:p%40ss@h/db").password == "p@ss"


@pytest.mark.parametrize(("history", "revisions"), [
    (AUDIT, ["audit_0003", "audit_0002", "audit_0001"]), (SERVICE, [HEAD, "0001"])])
def test_each_history_is_one_hand_written_chain(history: Any, revisions: list[str]) -> None:
    scripts = ScriptDirectory.from_config(history.config())
    head = revisions[0]
    assert scripts.get_heads() == [head] == [history.head()]
    assert [r.revision for r in scripts.walk_revisions()] == revisions
    assert Path(scripts.get_revision(head).path).parent == history.script_location / "versions"


async def test_downgrade_to_base_and_back(database_url: str) -> None:
    """The downgrade is code too: it must leave nothing behind and allow a clean re-upgrade."""
    await upgrade_async(database_url)
    for history in (SERVICE, AUDIT):
        await inspect_db(database_url, lambda c, h=history: (command.downgrade(h.config(c), "base"), c.commit()))
    tables = await inspect_db(database_url, lambda c: sa.inspect(c).get_table_names())
    assert set(tables) <= VERSION_TABLES
    await upgrade_async(database_url)
    assert await inspect_db(database_url, reflected_schema) == declared_schema(DECLARED)


# --- 0002: the audit hash chain ----------------------------------------------------------------
async def test_rows_written_before_the_chain_are_chained_in_id_order(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading a database with audit rows chains them (with the key in the environment), and they verify."""
    from fastapi_lookout.audit.chain import GENESIS, Hasher
    from fastapi_lookout.audit.verifier import verify_chain

    await AUDIT.upgrade_async(database_url, "audit_0001")
    values = ", ".join(
        f"('2025-01-0{i + 1} 10:00:00+00', 'u{i}', 'a', '/r/{i}', 'success', 200, {i}.5, "
        + ("NULL" if i % 2 else "'{\"n\": 1.0, \"k\": [\"v\"]}'") + ")"
        for i in range(5)
    )
    await inspect_db(database_url, lambda c: (c.execute(sa.text(
        "INSERT INTO user_actions (timestamp, username, action_type, resource, outcome, response_status, "
        f"duration_ms, request_data) VALUES {values}")), c.commit()))
    monkeypatch.setenv("AUDIT_HMAC_KEY", "migration-key")
    await upgrade_async(database_url)

    rows = await inspect_db(database_url, lambda c: c.execute(sa.text(
        "SELECT id, seq, prev_hash, row_hash FROM user_actions ORDER BY id")).all())
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS and all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    head = await inspect_db(database_url, lambda c: c.execute(sa.text("SELECT seq, row_hash FROM audit_chain_head"))
                            .all())
    assert [tuple(h) for h in head] == [(5, rows[-1].row_hash)]
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        assert (await verify_chain(engine, Hasher("migration-key"))).ok
        assert not (await verify_chain(engine, Hasher())).ok  # chained with the key, so only the key verifies
    finally:
        await engine.dispose()


async def test_downgrade_to_0001_gives_back_the_0001_schema(database_url: str) -> None:
    await AUDIT.upgrade_async(database_url, "audit_0001")
    before = await inspect_db(database_url, reflected_schema)
    await AUDIT.upgrade_async(database_url)
    await inspect_db(database_url, lambda c: (command.downgrade(AUDIT.config(c), "audit_0001"), c.commit()))
    assert await inspect_db(database_url, reflected_schema) == before  # the CHECK constraint included


# --- the audit history in a database that is not ours ------------------------------------------
async def test_audit_history_leaves_a_services_own_alembic_version_alone(database_url: str) -> None:
    """A user's service has its own Alembic history: the audit trail's migrations must not read or move it."""
    await inspect_db(database_url, lambda c: (
        c.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")),
        c.execute(sa.text("INSERT INTO alembic_version VALUES ('their_rev_42')")),
        c.commit()))
    await AUDIT.upgrade_async(database_url)
    assert await inspect_db(database_url, _versions_in) == ("their_rev_42", AUDIT_HEAD)
    tables = set(await inspect_db(database_url, lambda c: sa.inspect(c).get_table_names()))
    assert tables == {*VERSION_TABLES, *(TABLES - {"authors"})}


async def test_a_database_from_before_the_split_is_adopted_not_rebuilt(database_url: str) -> None:
    """Before the library had its own history, one ``alembic_version`` at 0002 covered every table: the audit
    history recognises its tables, stamps itself at their revision and keeps their rows and chain."""
    await upgrade_async(database_url)
    await inspect_db(database_url, lambda c: (
        c.execute(sa.text(f"DROP TABLE {VERSION_TABLE}")),
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0002'")),
        c.commit()))
    before = await inspect_db(database_url, reflected_schema)
    with recorded_statements() as statements:
        await upgrade_async(database_url)
    ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert len(ddl) == 1 and f"CREATE TABLE {VERSION_TABLE}" in ddl[0], ddl
    assert await inspect_db(database_url, reflected_schema) == before
    assert await inspect_db(database_url, _versions_in) == (HEAD, AUDIT_HEAD)


# --- 0003: the chain's id ---------------------------------------------------------------------
async def test_the_chain_id_is_drawn_per_database_and_the_head_is_kept(database_url: str, tmp_path: Path) -> None:
    """Upgrading from 0002 keeps the head's position; a second database draws another id (spools tell them apart)."""
    await AUDIT.upgrade_async(database_url, "audit_0002")
    await inspect_db(database_url, lambda c: (c.execute(sa.text(
        "UPDATE audit_chain_head SET seq = 7, row_hash = :h").bindparams(h="ab" * 32)), c.commit()))
    await AUDIT.upgrade_async(database_url)

    def head(c: sa.Connection) -> Any:
        return c.execute(sa.text("SELECT seq, row_hash, chain_id FROM audit_chain_head")).one()

    seq, row_hash, chain_id = await inspect_db(database_url, head)
    assert (seq, row_hash) == (7, "ab" * 32) and len(chain_id) == 32 and int(chain_id, 16) >= 0
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    await AUDIT.upgrade_async(other)
    assert (await inspect_db(other, head)).chain_id != chain_id
