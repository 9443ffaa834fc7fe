"""Grafana's PostgreSQL expansion, macro by macro and format by format, as the SQL panels' tests rely on it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboards.validate import sql

START = datetime(2025, 1, 15, 6, 0, tzinfo=UTC)
END = datetime(2025, 1, 15, 12, 0, 30, tzinfo=UTC)
RANGE = sql.TimeRange(START, END)
START_S, END_S = int(START.timestamp()), int(END.timestamp())


# --- time ranges ------------------------------------------------------------------------------------------------


def test_the_last_span_ends_at_the_given_moment():
    assert sql.TimeRange.last(timedelta(hours=6), now=END) == sql.TimeRange(END - timedelta(hours=6), END)


def test_the_last_span_ends_now_in_utc_by_default():
    before = datetime.now(UTC)
    rng = sql.TimeRange.last(timedelta(minutes=5))
    assert rng.end.tzinfo is UTC
    assert before <= rng.end <= datetime.now(UTC)
    assert rng.end - rng.start == timedelta(minutes=5)


@pytest.fixture
def new_york_clock(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_clock")
def test_bounds_are_utc_whatever_the_machines_timezone_and_the_ranges():
    paris = timezone(timedelta(hours=1))
    rng = sql.TimeRange(START.astimezone(paris), END.astimezone(paris))
    assert sql.expand_macros("$__timeFrom() $__timeTo()", rng, 60) == "'2025-01-15T06:00:00Z' '2025-01-15T12:00:30Z'"


# --- variable formats -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["raw", "csv"])
def test_raw_and_csv_formats_join_values_unquoted(fmt):
    assert sql.format_value(["a", "b"], fmt) == "a,b"
    assert sql.interpolate(f"x IN (${{v:{fmt}}})", {"v": ["a", "b"]}) == "x IN (a,b)"


def test_the_default_format_quotes_a_multi_value_variable_even_with_one_value():
    assert sql.format_value(["it's"], None) == "'it''s'"
    assert sql.interpolate("x = $v", {"v": ["it's"]}) == "x = 'it''s'"
    assert sql.render("x = $v", {"v": ["it's"]}, RANGE) == "x = 'it''s'"


def test_the_default_format_leaves_a_single_value_variable_unquoted_with_quotes_doubled():
    assert sql.format_value(["it's"], None, multi=False) == "it''s"
    assert sql.render("x = '$v'", {"v": ["it's"]}, RANGE, multi={"v": False}) == "x = 'it''s'"


def test_a_single_value_variable_holding_several_values_is_quoted_as_a_list():
    assert sql.format_value(["a", "b"], None, multi=False) == "'a','b'"


def test_an_unsupported_format_is_refused_by_name():
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.format_value(["a"], "json")
    assert str(exc.value) == "variable format 'json' is not supported by this expander"


def test_the_legacy_bracket_syntax_is_interpolated_with_its_format():
    assert sql.interpolate("x IN ([[v]]) AND y IN ([[w:raw]])", {"v": ["a"], "w": ["b", "c"]}) == (
        "x IN ('a') AND y IN (b,c)")


# --- intervals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500ms"), (0.9, "900ms"), (0.001, "1ms"), (1, "1s"), (1.5, "1.5s"), (61, "61s"), (90, "90s"), (120, "2m"),
     (7200, "2h"), (86400, "1d"), (172800, "2d")],
)
def test_an_interval_is_written_in_the_largest_whole_unit(seconds, text):
    assert sql.interval_text(seconds) == text
    assert sql.parse_interval(text) == pytest.approx(seconds, rel=0, abs=1e-9)


def test_the_interval_defaults_to_one_minute():
    assert sql.render("$__interval $__interval_ms", {}, RANGE) == "1m 60000"


@pytest.mark.parametrize("bad", ["5x", "X5m", "5mX", "", "m"])
def test_a_malformed_interval_is_refused_with_its_text(bad):
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.parse_interval(bad)
    assert str(exc.value) == f"cannot parse interval {bad!r}"


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("30s", 30), ("2w", 1209600), ("1y", 31536000)])
def test_every_grafana_duration_unit_is_read(text, seconds):
    assert sql.parse_interval(text) == pytest.approx(seconds, rel=0, abs=1e-9)


def test_quoted_intervals_are_read():
    assert sql.parse_interval(" '5m' ") == 300
    assert sql.parse_interval('"2h"') == 7200


# --- macros -----------------------------------------------------------------------------------------------------


def test_time_and_time_epoch_alias_their_column():
    assert sql.expand_macros("SELECT $__time(ts), $__timeEpoch(ts)", RANGE, 60) == (
        'SELECT ts AS "time", extract(epoch from ts) as "time"')


@pytest.mark.parametrize("macro", ["time", "timeEpoch", "timeFilter", "unixEpochFilter"])
def test_a_column_macro_without_its_column_says_how_many_arguments_it_needs(macro):
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.expand_macros(f"SELECT $__{macro}()", RANGE, 60)
    assert str(exc.value) == f"$__{macro} needs 1 argument(s), got 0"


def test_unix_epoch_groups_divide_the_column_itself():
    assert sql.expand_macros("$__unixEpochGroup(t, 1m) | $__unixEpochGroupAlias(t, '1h')", RANGE, 60) == (
        'floor((t)/60)*60 | floor((t)/3600)*3600 AS "time"')


def test_time_groups_extract_the_epoch_first():
    assert sql.expand_macros("$__timeGroup(ts, 1m) | $__timeGroupAlias(ts, 1m)", RANGE, 60) == (
        'floor(extract(epoch from ts)/60)*60 | floor(extract(epoch from ts)/60)*60 AS "time"')


@pytest.mark.parametrize("macro", ["timeGroup", "timeGroupAlias", "unixEpochGroup", "unixEpochGroupAlias"])
def test_a_group_macro_needs_a_column_and_an_interval(macro):
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.expand_macros(f"SELECT $__{macro}(ts)", RANGE, 60)
    assert str(exc.value) == "$__timeGroup needs a column and an interval"


def test_unix_epoch_bounds_are_whole_seconds():
    assert sql.expand_macros("$__unixEpochFrom() $__unixEpochTo()", RANGE, 60) == f"{START_S} {END_S}"


def test_an_unknown_macro_is_refused_by_name():
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.expand_macros("SELECT $__nosuch(x)", RANGE, 60)
    assert str(exc.value) == "unknown macro $__nosuch"


def test_a_macro_without_parentheses_is_left_unexpanded_and_refused():
    with pytest.raises(sql.SqlMacroError) as exc:
        sql.expand_macros("SELECT 1 WHERE $__timeFilter", RANGE, 60)
    assert str(exc.value) == "unexpanded $__timeFilter (unknown built-in or macro without arguments)"
