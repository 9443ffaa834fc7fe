"""postgres/init/*.sql on a real PostgreSQL, run the way the postgres image runs them, then the app's migrations.

Grafana's role may read ``user_actions`` and nothing else, although that table is
created after the init scripts, by the app's own role. The app's role (NOCREATEROLE)
may prune the audit trail only as ``audit_retention``, which the init creates for it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from dashboards.config import Audit, Config, Stack
from dashboards.stack import postgres_init
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"APP_DB_PASSWORD": "app-pw", "GRAFANA_DB_PASSWORD": "reader-pw", "KEYCLOAK_DB_PASSWORD": "kc-pw"}


def unique_config() -> Config:
    """Fresh role and database names: roles are cluster-wide and the server is shared by the session."""
    u = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        Config(),
        audit=dataclasses.replace(Audit(), database=f"app_{u}", reader_user=f"reader_{u}"),
        stack=dataclasses.replace(Stack(), app_db_user=f"app_{u}", keycloak_db=f"kc_{u}"),
    )


def run_scripts(server: PostgresServer, cfg: Config, tmp_path: Path, env: dict[str, str] | None = None,
                only: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Each file through ``psql -v ON_ERROR_STOP=1 -f``, as docker-entrypoint.sh does, with the container env."""
    environment = {**os.environ, **(PASSWORDS if env is None else env)}
    result = subprocess.CompletedProcess[str]([], 0, "", "")
    for name, sql in postgres_init.scripts(cfg).items():
        if only and name not in only:
            continue
        path = tmp_path / name
        path.write_text(sql)
        result = subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-X", "--no-password", "-h", "127.0.0.1", "-p", str(server.port),
             "-U", server.user, "-d", "postgres", "-f", str(path)],
            env=environment, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return result
    return result


def as_role(server: PostgresServer, cfg: Config, role: str, sql: str, db: str | None = None) -> str:
    """Error text of ``sql`` run as ``role`` ('' when it succeeded)."""
    result = server.psql(sql, db=db or cfg.audit.database, user=role, check=False)
    return result.stderr.strip() if result.returncode else ""


@pytest.fixture
def initialised(postgres_server: PostgresServer, tmp_path: Path) -> Config:
    from app.migrations import upgrade

    cfg = unique_config()
    result = run_scripts(postgres_server, cfg, tmp_path)
    assert result.returncode == 0, result.stderr
    upgrade(postgres_server.url(cfg.audit.database, user=cfg.stack.app_db_user))  # the app's role migrates
    return cfg


def test_committed_scripts_are_the_generated_ones():
    files = sorted(p.name for p in (ROOT / postgres_init.INIT_DIR).iterdir())
    assert files == sorted(postgres_init.FILES)
    for name, text in postgres_init.scripts(Config()).items():
        assert (ROOT / postgres_init.INIT_DIR / name).read_text() == text
        assert "reader-pw" not in text and "PASSWORD '" not in text  # no literal password


def test_reader_can_select_user_actions_after_the_apps_migrations(postgres_server, initialised):
    cfg = initialised
    reader = cfg.audit.reader_user
    postgres_server.psql(
        "INSERT INTO user_actions (timestamp, action_type, resource, outcome, response_status, duration_ms) "
        "VALUES (now(), 'list_authors', '/api/authors', 'success', 200, 1.5)",
        db=cfg.audit.database, user=cfg.stack.app_db_user)
    result = postgres_server.psql("SELECT count(*) FROM user_actions", db=cfg.audit.database, user=reader)
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM authors", "permission denied for table authors"),
        ("SELECT * FROM alembic_version", "permission denied for table alembic_version"),
        ("BEGIN READ WRITE; INSERT INTO user_actions (timestamp, action_type, resource, outcome, response_status, "
         "duration_ms) VALUES (now(), 'x', 'y', 'success', 200, 1); COMMIT",
         "permission denied for table user_actions"),
        ("BEGIN READ WRITE; UPDATE user_actions SET outcome = 'error'; COMMIT",
         "permission denied for table user_actions"),
        ("BEGIN READ WRITE; DELETE FROM user_actions; COMMIT", "permission denied for table user_actions"),
        ("BEGIN READ WRITE; TRUNCATE user_actions; COMMIT", "permission denied for table user_actions"),
        ("BEGIN READ WRITE; CREATE TABLE mine (i int); COMMIT", "permission denied for schema public"),
        ("DELETE FROM user_actions", "cannot execute DELETE in a read-only transaction"),
    ],
)
def test_reader_cannot_read_other_tables_or_write_anything(postgres_server, initialised, sql, error):
    assert error in as_role(postgres_server, initialised, initialised.audit.reader_user, sql)


def test_privileges_are_exactly_select_on_user_actions(postgres_server, initialised):
    cfg = initialised
    reader = cfg.audit.reader_user
    rows = postgres_server.psql(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        f"WHERE grantee = '{reader}' ORDER BY 1, 2", db=cfg.audit.database).stdout.split()
    assert rows == ["user_actions|SELECT"]


def test_the_apps_role_may_delete_audit_rows_only_as_audit_retention(postgres_server, initialised):
    cfg = initialised
    app_role, retention = cfg.stack.app_db_user, postgres_init.RETENTION_ROLE
    found = postgres_server.psql(
        f"SELECT rolcanlogin, pg_has_role('{app_role}', rolname, 'MEMBER'), "
        f"(SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = '{app_role}') "
        f"FROM pg_roles WHERE rolname = '{retention}'").stdout.strip()
    assert found == "f|t|f"  # NOLOGIN; the app's role is a member, and could not have made itself one
    assert as_role(postgres_server, cfg, app_role, f"SET ROLE {retention}; DELETE FROM user_actions WHERE false") == ""
    refused = as_role(postgres_server, cfg, app_role, "DELETE FROM user_actions WHERE false")
    assert "DELETE on user_actions refused: the audit trail is append-only" in refused


def test_each_role_gets_its_password_from_the_environment(postgres_server, initialised):
    cfg = initialised
    roles = (cfg.stack.app_db_user, cfg.audit.reader_user, cfg.stack.keycloak_db)
    found = postgres_server.psql(
        "SELECT rolname, rolcanlogin, rolsuper, left(rolpassword, 13) FROM pg_authid "
        f"WHERE rolname IN {tuple(roles)!r} ORDER BY 1").stdout.split()
    assert len(found) == 3
    for row in found:
        name, login, superuser, password = row.split("|")
        assert (login, superuser, password) == ("t", "f", "SCRAM-SHA-256"), name


def test_keycloak_and_strangers_cannot_connect_to_the_audit_database(postgres_server, initialised, tmp_path):
    cfg = initialised
    assert "permission denied for database" in as_role(postgres_server, cfg, cfg.stack.keycloak_db, "SELECT 1")
    assert as_role(postgres_server, cfg, cfg.stack.keycloak_db, "SELECT 1", db=cfg.stack.keycloak_db) == ""
    assert "permission denied for database" in as_role(
        postgres_server, cfg, cfg.audit.reader_user, "SELECT 1", db=cfg.stack.keycloak_db)


def test_a_missing_password_stops_the_init_naming_it_before_anything_is_created(postgres_server, tmp_path):
    cfg = unique_config()
    result = run_scripts(postgres_server, cfg, tmp_path, env={**PASSWORDS, "GRAFANA_DB_PASSWORD": ""})
    assert result.returncode != 0
    assert "GRAFANA_DB_PASSWORD is not set or empty" in result.stderr
    missing = run_scripts(postgres_server, cfg, tmp_path,
                          env={k: v for k, v in PASSWORDS.items() if k != "APP_DB_PASSWORD"})
    assert "APP_DB_PASSWORD is not set or empty" in missing.stderr
    roles = postgres_server.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{cfg.stack.app_db_user}'")
    assert roles.stdout.strip() == "0"


def test_scripts_are_idempotent_and_also_grant_on_an_already_migrated_database(postgres_server, tmp_path):
    from app.migrations import upgrade

    cfg = unique_config()
    first = run_scripts(postgres_server, cfg, tmp_path, only=("10-roles.sql", "20-databases.sql"))
    assert first.returncode == 0, first.stderr
    upgrade(postgres_server.url(cfg.audit.database, user=cfg.stack.app_db_user))  # before the reader script
    for _ in range(2):
        again = run_scripts(postgres_server, cfg, tmp_path)
        assert again.returncode == 0, again.stderr
    assert as_role(postgres_server, cfg, cfg.audit.reader_user, "SELECT count(*) FROM user_actions") == ""
    assert "permission denied" in as_role(postgres_server, cfg, cfg.audit.reader_user, "SELECT * FROM authors")
