"""Expands Grafana's PostgreSQL macros and variables the way Grafana does, so SQL panels run for real.

Grafana first interpolates dashboard variables in the browser (``${var:sqlstring}``
becomes ``'a','b'`` with single quotes doubled; All becomes every option), then
the PostgreSQL datasource expands ``$__interval``/``$__interval_ms`` and the
macros (``$__timeFilter(col)`` -> ``col BETWEEN '<from>' AND '<to>'``, ...).
:func:`render` does both, so a test can run a panel's query on PostgreSQL
exactly as Grafana would send it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .variables import VARIABLE, references

MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
SAFE_FORMATS = frozenset({"sqlstring"})
"""The only variable formats a SQL panel may use: each value quoted, quotes doubled."""


class SqlMacroError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - span, end)


def sqlstring(values: Sequence[str]) -> str:
    """Grafana's ``:sqlstring`` format: ``'a','b'``, each ``'`` doubled."""
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def format_value(values: Sequence[str], fmt: str | None, multi: bool = True) -> str:
    """A variable's selected values in one of Grafana's formats (the SQL datasource's default if none)."""
    if fmt == "sqlstring":
        return sqlstring(values)
    if fmt in ("raw", "csv"):
        return ",".join(values)
    if fmt is None:
        if multi or len(values) != 1:
            return sqlstring(values)
        return values[0].replace("'", "''")
    raise SqlMacroError(f"variable format {fmt!r} is not supported by this expander")


def interpolate(sql: str, values: Mapping[str, Sequence[str]], multi: Mapping[str, bool] | None = None) -> str:
    """Replace dashboard variables (not ``$__`` built-ins) by their formatted values."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name.startswith("__"):
            return match.group(0)
        if name not in values:
            raise SqlMacroError(f"variable ${name} has no value")
        fmt = match.group(2) or match.group(5)
        return format_value(values[name], fmt, (multi or {}).get(name, True))

    return VARIABLE.sub(repl, sql)


def parse_interval(text: str) -> float:
    match = _DURATION.match(text.strip().strip("'\""))
    if not match:
        raise SqlMacroError(f"cannot parse interval {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def interval_text(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{_number(seconds)}s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def expand_macros(sql: str, time_range: TimeRange, interval_seconds: float) -> str:
    """The datasource's step: ``$__interval``, ``$__interval_ms`` and the ``$__macro(...)`` calls."""
    sql = sql.replace("$__interval_ms", str(int(interval_seconds * 1000)))
    sql = sql.replace("$__interval", interval_text(interval_seconds))
    start, end = time_range.start, time_range.end

    def group(args: list[str], alias: bool, epoch: bool) -> str:
        if len(args) < 2:
            raise SqlMacroError("$__timeGroup needs a column and an interval")
        step = _number(parse_interval(args[1]))
        col = f"({args[0]})" if epoch else f"extract(epoch from {args[0]})"
        return f"floor({col}/{step})*{step}" + (' AS "time"' if alias else "")

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        args = [a.strip() for a in match.group(2).split(",")] if match.group(2).strip() else []

        def need(count: int) -> None:
            if len(args) < count:
                raise SqlMacroError(f"$__{name} needs {count} argument(s), got {len(args)}")

        if name == "time":
            need(1)
            return f'{args[0]} AS "time"'
        if name == "timeEpoch":
            need(1)
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "timeFilter":
            need(1)
            return f"{args[0]} BETWEEN '{_iso(start)}' AND '{_iso(end)}'"
        if name == "timeFrom":
            return f"'{_iso(start)}'"
        if name == "timeTo":
            return f"'{_iso(end)}'"
        if name in ("timeGroup", "timeGroupAlias"):
            return group(args, alias=name.endswith("Alias"), epoch=False)
        if name in ("unixEpochGroup", "unixEpochGroupAlias"):
            return group(args, alias=name.endswith("Alias"), epoch=True)
        if name == "unixEpochFilter":
            need(1)
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "unixEpochFrom":
            return str(int(start.timestamp()))
        if name == "unixEpochTo":
            return str(int(end.timestamp()))
        raise SqlMacroError(f"unknown macro $__{name}")

    expanded = MACRO.sub(repl, sql)
    leftover = re.search(r"\$__\w+", expanded)
    if leftover:
        raise SqlMacroError(f"unexpanded {leftover.group(0)} (unknown built-in or macro without arguments)")
    return expanded


def render(
    sql: str,
    values: Mapping[str, Sequence[str]],
    time_range: TimeRange,
    interval_seconds: float = 60.0,
    multi: Mapping[str, bool] | None = None,
) -> str:
    """The SQL PostgreSQL receives from Grafana for these variable values and this time range."""
    return expand_macros(interpolate(sql, values, multi), time_range, interval_seconds)


def unsafe_references(sql: str) -> list[str]:
    """Variables a SQL panel uses without ``:sqlstring`` (raw text would be an injection)."""
    return [
        f"${{{name}{':' + fmt if fmt else ''}}}"
        for name, fmt in references(sql)
        if not name.startswith("__") and fmt not in SAFE_FORMATS
    ]

