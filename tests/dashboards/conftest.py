"""Fixtures for the dashboard tests: the built dashboards, the checking context, an audit database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboards.config import Config
from dashboards.grafana import artifacts as grafana
from dashboards.validate import logql
from dashboards.validate.panels import Context
from tests.support.binaries import require
from tests.support.postgres import PostgresServer

READER = "grafana_reader"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def cfg() -> Config:
    return Config()


@pytest.fixture(scope="session")
def built(cfg: Config) -> dict[str, dict[str, Any]]:
    return grafana.dashboards(cfg)


@pytest.fixture
def static_context(cfg: Config) -> Context:
    """The build's context without the node LogQL grammar (for PromQL/SQL/structure tests)."""
    ctx = grafana.context(cfg)
    ctx.logql_parser = None
    return ctx


@pytest.fixture(scope="session")
def node_logql() -> None:
    require("node and the LogQL grammar", logql.available() and shutil.which("node"), "apt-get install nodejs; npm ci")


def create_schema(server: PostgresServer, db: str) -> None:
    """The audit schema, built the way production builds it: the migrations (the one place that creates it)."""
    from app.migrations import upgrade

    upgrade(server.url(db))


def create_reader(server: PostgresServer, db: str) -> None:
    """The read-only role Grafana's datasource uses (SELECT on the audit table, nothing else)."""
    server.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') "
        f"THEN CREATE ROLE {READER} LOGIN; END IF; END $$;"
    )
    server.psql(f"GRANT CONNECT ON DATABASE \"{db}\" TO {READER}; GRANT USAGE ON SCHEMA public TO {READER}; "
                f"GRANT SELECT ON user_actions TO {READER};", db=db)


ROWS: list[dict[str, Any]] = [
    # every outcome, an anonymous row, a username with a quote, fast/slow durations
    {"username": "alice", "action_type": "list_authors", "outcome": "success", "response_status": 200,
     "duration_ms": 12.5, "request_id": "rid-alice-1", "minutes_ago": 5},
    {"username": "alice", "action_type": "create_author", "outcome": "success", "response_status": 201,
     "duration_ms": 640.0, "request_id": "rid-alice-2", "minutes_ago": 30},
    {"username": "bob", "action_type": "create_author", "outcome": "permission_denied", "response_status": 403,
     "duration_ms": 3.0, "request_id": "rid-bob-1", "minutes_ago": 45},
    {"username": "bob", "action_type": "delete_author", "outcome": "error", "response_status": 500,
     "duration_ms": 1500.0, "request_id": "rid-bob-2", "minutes_ago": 90},
    {"username": None, "action_type": "list_authors", "outcome": "error", "response_status": 401,
     "duration_ms": 1.0, "request_id": "rid-anon-1", "minutes_ago": 120},
    {"username": "O'Brien", "action_type": "get_author", "outcome": "success", "response_status": 200,
     "duration_ms": 8.0, "request_id": "rid-obrien-1", "minutes_ago": 200},
    # outside the default 6 h range: must never show up
    {"username": "old", "action_type": "list_authors", "outcome": "success", "response_status": 200,
     "duration_ms": 8.0, "request_id": "rid-old-1", "minutes_ago": 60 * 24},
]


def insert_rows(server: PostgresServer, db: str, now: datetime = NOW) -> None:
    values = []
    for row in ROWS:
        ts = (now - timedelta(minutes=row["minutes_ago"])).isoformat()
        user = "NULL" if row["username"] is None else "'" + row["username"].replace("'", "''") + "'"
        values.append(
            f"('{ts}', 'u-{row['request_id']}', {user}, 'reader', '{row['action_type']}', '/api/authors', "
            f"'{row['outcome']}', '127.0.0.1', 'pytest', '{row['request_id']}', {row['response_status']}, "
            f"{'NULL' if row['outcome'] == 'success' else chr(39) + 'failed' + chr(39)}, {row['duration_ms']})"
        )
    server.psql(
        "INSERT INTO user_actions (timestamp, user_id, username, user_roles, action_type, resource, outcome, "
        "ip_address, user_agent, request_id, response_status, error_message, duration_ms) VALUES "
        + ", ".join(values),
        db=db,
    )


@pytest.fixture
def audit_db(postgres_server: PostgresServer, postgres_db: str) -> Iterator[str]:
    """A migrated database with the read-only reader and a handful of rows covering every outcome."""
    create_schema(postgres_server, postgres_db)
    create_reader(postgres_server, postgres_db)
    insert_rows(postgres_server, postgres_db)
    yield postgres_db
