"""Every audit SQL panel and variable query, expanded as Grafana expands it, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg2
import pytest

from dashboards.config import DsType
from dashboards.grafana import uids
from dashboards.validate import sql
from dashboards.validate.panels import Target, targets, validate
from tests.dashboards.conftest import NOW, READER, ROWS

RANGE = sql.TimeRange(NOW - timedelta(hours=6), NOW)
HOSTILE = "x'); DROP TABLE user_actions; --"


def _run(dsn: str, statement: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return [c.name for c in cur.description], list(cur.fetchall())


def _panels(dashboard: Mapping[str, Any]) -> list[Target]:
    return [t for t in targets(dashboard) if not t.is_variable and t.ds_type == DsType.POSTGRES]


def _all_values(dsn: str, dashboard: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each variable's options, from its own query: what Grafana's All expands to."""
    out = {}
    for t in targets(dashboard):
        if t.is_variable:
            _, rows = _run(dsn, sql.render(t.expr, {}, RANGE))
            out[t.panel] = [r[0] for r in rows]
    return out


def _panel_rows(dsn: str, dashboard: Mapping[str, Any], values: Mapping[str, Sequence[str]]
                ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    return {t.panel: _run(dsn, sql.render(t.expr, values, RANGE)) for t in _panels(dashboard)}


@pytest.fixture
def audit(built):
    return built[uids.AUDIT]


@pytest.fixture
def reader_dsn(postgres_server, audit_db):
    return postgres_server.dsn(audit_db, user=READER)


def test_variable_queries_list_what_is_in_the_table(reader_dsn, audit):
    values = _all_values(reader_dsn, audit)
    assert values["username"] == ["(anonymous)", "O'Brien", "alice", "bob"]  # "old" is outside the range
    assert values["outcome"] == ["error", "permission_denied", "success"]
    assert values["action_type"] == sorted({r["action_type"] for r in ROWS})


def test_every_panel_runs_as_the_read_only_user_and_returns_rows(reader_dsn, audit):
    values = _all_values(reader_dsn, audit)
    results = _panel_rows(reader_dsn, audit, values)
    assert len(results) == 10
    for title, (_, rows) in results.items():
        assert rows, title
    _, events = results["Recent events (last 100)"]
    assert len(events) == 6  # every row in the last 6 h, none older
    assert {r[4] for r in events} == {"success", "error", "permission_denied"}
    _, failed = results["Failed and denied actions (last 50)"]
    assert {r[4] for r in failed} == {"error", "permission_denied"}
    _, series = results["Events over time by outcome"]
    assert {r[1] for r in series} == {"success", "error", "permission_denied"}


def test_the_reader_cannot_change_the_audit_trail(reader_dsn):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        _run(reader_dsn, "DELETE FROM user_actions")


@pytest.mark.parametrize("variable", ["username", "action_type", "outcome"])
def test_every_variable_filters_every_panel(reader_dsn, audit, variable):
    values = _all_values(reader_dsn, audit)
    nothing = {**values, variable: ["no-such-value"]}
    for title, (columns, rows) in _panel_rows(reader_dsn, audit, nothing).items():
        numbers = [v for row in rows for v in row if isinstance(v, int | float) and not isinstance(v, bool)]
        assert not rows or all(n == 0 for n in numbers), (title, columns, rows)


def test_a_quote_in_a_value_matches_exactly_that_user(reader_dsn, audit):
    values = {**_all_values(reader_dsn, audit), "username": ["O'Brien"]}
    results = _panel_rows(reader_dsn, audit, values)
    _, events = results["Recent events (last 100)"]
    assert [(r[1], r[2]) for r in events] == [("O'Brien", "get_author")]
    assert results["Events"][1] == [(1,)]
    assert results["Top users (top 15)"][1] == [("O'Brien", 1)]


def test_hostile_values_stay_literals_and_the_table_survives(postgres_server, audit_db, audit):
    owner_dsn = postgres_server.dsn(audit_db)  # the superuser: only the quoting protects the table here
    values = {**_all_values(owner_dsn, audit), "username": [HOSTILE, "alice"], "action_type": [HOSTILE],
              "outcome": ["success' OR '1'='1", "error"]}
    for title, (_, rows) in _panel_rows(owner_dsn, audit, values).items():
        numbers = [v for row in rows for v in row if isinstance(v, int | float)]
        assert not rows or all(n == 0 for n in numbers), title
    _, count = _run(owner_dsn, "SELECT count(*) FROM user_actions")
    assert count == [(len(ROWS),)]


def test_hostile_value_expansion_is_a_single_literal():
    rendered = sql.render("SELECT 1 WHERE u IN (${username:sqlstring})", {"username": [HOSTILE]}, RANGE)
    assert rendered == "SELECT 1 WHERE u IN ('x''); DROP TABLE user_actions; --')"


def test_a_broken_sql_panel_fails_on_postgres(reader_dsn, audit):
    values = _all_values(reader_dsn, audit)
    broken = sql.render(_panels(audit)[0].expr.replace("FROM user_actions", "FROM user_action"), values, RANGE)
    with pytest.raises(psycopg2.errors.UndefinedTable):
        _run(reader_dsn, broken)


def test_raw_interpolation_or_an_ignored_variable_fails_validation(audit, static_context):
    bad = {**audit, "panels": [dict(p) for p in audit["panels"]]}
    panel = next(p for p in bad["panels"] if p["title"] == "Events")
    target = dict(panel["targets"][0])
    target["rawSql"] = target["rawSql"].replace("${username:sqlstring}", "'$username'").replace(
        "\n  AND \"action_type\" IN (${action_type:sqlstring})", "")
    panel["targets"] = [target]
    problems = [str(p) for p in validate({uids.AUDIT: bad}, static_context)]
    assert problems == [
        "audit-logs / panel 'Events' [A]: variable ${username} must be written ${name:sqlstring} "
        "(quoted, quotes doubled)",
        "audit-logs / panel 'Events' [A]: SQL panel ignores the dashboard variable $action_type",
    ]


def test_sql_variables_use_the_standard_all(audit):
    for var in audit["templating"]["list"]:
        if var["type"] == "datasource":
            continue
        assert var["multi"] and var["includeAll"] and "allValue" not in var, var["name"]
