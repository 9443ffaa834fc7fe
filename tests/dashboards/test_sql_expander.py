"""The Grafana PostgreSQL macro and variable expander, on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards.validate import sql

RANGE = sql.TimeRange(datetime(2025, 1, 15, 6, 0, tzinfo=UTC), datetime(2025, 1, 15, 12, 0, 30, tzinfo=UTC))


def test_time_filter_and_bounds_are_utc_rfc3339():
    out = sql.expand_macros('WHERE $__timeFilter("timestamp") AND x < $__timeTo() AND y > $__timeFrom()', RANGE, 60)
    assert out == ("WHERE \"timestamp\" BETWEEN '2025-01-15T06:00:00Z' AND '2025-01-15T12:00:30Z' "
                   "AND x < '2025-01-15T12:00:30Z' AND y > '2025-01-15T06:00:00Z'")


def test_time_group_alias_uses_the_interval_in_seconds():
    assert sql.expand_macros('SELECT $__timeGroupAlias("timestamp", $__interval)', RANGE, 300) == (
        'SELECT floor(extract(epoch from "timestamp")/300)*300 AS "time"')
    assert sql.expand_macros("SELECT $__timeGroup(ts, '1h')", RANGE, 60) == (
        "SELECT floor(extract(epoch from ts)/3600)*3600")
    assert sql.expand_macros("SELECT $__timeGroup(ts, 500ms)", RANGE, 60) == (
        "SELECT floor(extract(epoch from ts)/0.5)*0.5")


def test_interval_and_epoch_macros():
    out = sql.expand_macros("$__interval $__interval_ms $__unixEpochFilter(t) $__unixEpochFrom()", RANGE, 30)
    start, end = int(RANGE.start.timestamp()), int(RANGE.end.timestamp())
    assert out == f"30s 30000 t >= {start} AND t <= {end} {start}"


@pytest.mark.parametrize("bad", ["$__timeFilter()", "$__nosuch(x)", "$__timeGroup(ts)", "$__timeFilter"])
def test_unknown_or_malformed_macros_fail(bad):
    with pytest.raises(sql.SqlMacroError):
        sql.expand_macros(f"SELECT 1 WHERE {bad}", RANGE, 60)


def test_sqlstring_quotes_each_value_and_doubles_quotes():
    assert sql.sqlstring(["a", "b"]) == "'a','b'"
    assert sql.sqlstring(["O'Brien"]) == "'O''Brien'"
    hostile = "x'); DROP TABLE user_actions; --"
    assert sql.sqlstring([hostile]) == "'x''); DROP TABLE user_actions; --'"


def test_all_expands_to_every_value_and_variables_keep_their_format():
    out = sql.interpolate("u IN (${username:sqlstring}) AND o IN (${outcome:sqlstring}) $__interval",
                          {"username": ["a", "O'Brien"], "outcome": ["error"]})
    assert out == "u IN ('a','O''Brien') AND o IN ('error') $__interval"


def test_default_format_mimics_grafana_for_single_values():
    assert sql.interpolate("x = '$v'", {"v": ["it's"]}, multi={"v": False}) == "x = 'it''s'"
    assert sql.interpolate("x IN ($v)", {"v": ["a", "b"]}) == "x IN ('a','b')"


def test_a_variable_without_value_fails():
    with pytest.raises(sql.SqlMacroError, match=r"\$nope has no value"):
        sql.interpolate("SELECT ${nope:sqlstring}", {})


def test_only_sqlstring_counts_as_safe():
    assert sql.unsafe_references("a IN (${u:sqlstring}) AND b = '$v' AND c = ${w:raw} AND $__timeFilter(t)") == [
        "${v}", "${w:raw}"]
