"""Runs every panel query of the generated dashboards against live datasources.

Static checks prove a query is well-formed; only a live run proves it returns
data. Variables are resolved the way Grafana does with "All" selected (query
variables run their own query; custom All values are used as they are), then
each target runs directly on Prometheus, Loki and PostgreSQL, or through
Grafana's ``/api/ds/query``. Panels with errors or no data are reported; a
series whose every value is NaN (``0/0``) is no data, as Grafana draws nothing.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ..config import DsType
from . import sql
from .panels import Target, targets
from .variables import LOKI_LABEL_VALUES, PROM_LABEL_VALUES, VARIABLE

OK, NO_DATA, ERROR = "ok", "no data", "error"
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")


class QueryError(Exception):
    """The datasource refused or failed the query; the message is the datasource's."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    step_seconds: int = 60
    rate_interval: str = "1m"

    @classmethod
    def last(cls, span: timedelta, *, step_seconds: int = 60, rate_interval: str = "1m") -> Window:
        end = datetime.now(UTC)
        return cls(end - span, end, step_seconds, rate_interval)

    @classmethod
    def from_range(cls, start: float, end: float, *, step_seconds: int = 60, rate_interval: str = "1m") -> Window:
        """A window between two Unix times (a history that ended in the past)."""
        return cls(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), step_seconds, rate_interval)

    @property
    def range_seconds(self) -> int:
        return max(1, int((self.end - self.start).total_seconds()))


@dataclass(frozen=True, slots=True)
class Result:
    dashboard: str
    panel: str
    status: str
    detail: str = ""


class Runner(Protocol):
    def run(self, target: Target, query: str, window: Window) -> int:
        """Rows/series/lines returned; raises :class:`QueryError`."""

    def label_values(self, target: Target, selector: str | None, label: str, window: Window) -> list[str]: ...

    def sql_values(self, target: Target, query: str, window: Window) -> list[str]: ...


# --- HTTP helpers -----------------------------------------------------------------------------
def _http(url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None,
          timeout: float = 30) -> Any:
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            detail = json.loads(body).get("error") or json.loads(body).get("message") or body
        except (ValueError, AttributeError):
            detail = body
        raise QueryError(f"HTTP {exc.code}: {str(detail).strip()[:300]}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise QueryError(f"cannot reach {url.split('?')[0]}: {exc}") from exc


def _get(base: str, path: str, params: Sequence[tuple[str, str]]) -> Any:
    return _http(f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params)}")


def expand_builtins(query: str, window: Window) -> str:
    """What Grafana substitutes for its built-ins before a query reaches Prometheus or Loki."""
    step = f"{window.step_seconds}s"
    for name, value in (("__rate_interval", window.rate_interval), ("__interval_ms", str(window.step_seconds * 1000)),
                        ("__interval", step), ("__auto", step), ("__range_s", str(window.range_seconds)),
                        ("__range", f"{window.range_seconds}s")):
        query = query.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return query


# --- direct runner -------------------------------------------------------------------------------
@dataclass
class DirectRunner:
    """Talks to each datasource's own API; Grafana built-ins and SQL macros are expanded here."""

    prometheus: str | None = None
    loki: str | None = None
    postgres: str | None = None

    def _base(self, target: Target) -> str:
        base = {DsType.PROMETHEUS: self.prometheus, DsType.LOKI: self.loki}.get(DsType(target.ds_type))
        if not base:
            raise QueryError(f"no URL given for {target.ds_type} (uid {target.ds_uid})")
        return base

    def run(self, target: Target, query: str, window: Window) -> int:
        if target.ds_type == DsType.POSTGRES:
            return len(self._sql(sql.expand_macros(query, _sql_range(window), window.step_seconds)))
        base = self._base(target)
        loki = target.ds_type == DsType.LOKI
        expr = expand_builtins(query, window)
        prefix = "/loki/api/v1" if loki else "/api/v1"
        if target.table or target.instant:
            params = [("query", expr), ("time", str(window.end.timestamp()))]
            body = _get(base, f"{prefix}/query", params)
        else:
            params = [("query", expr), ("start", str(window.start.timestamp())), ("end", str(window.end.timestamp())),
                      ("step", str(window.step_seconds))]
            if loki:
                params.append(("limit", "100"))
            body = _get(base, f"{prefix}/query_range", params)
        if body.get("status") != "success":
            raise QueryError(str(body.get("error") or body))
        return _with_values(body["data"])

    def label_values(self, target: Target, selector: str | None, label: str, window: Window) -> list[str]:
        base = self._base(target)
        prefix = "/loki/api/v1" if target.ds_type == DsType.LOKI else "/api/v1"
        params = [("start", str(window.start.timestamp())), ("end", str(window.end.timestamp()))]
        if selector:
            params.append(("match[]" if target.ds_type == DsType.PROMETHEUS else "query", selector))
        body = _get(base, f"{prefix}/label/{label}/values", params)
        return sorted(body.get("data") or [])

    def sql_values(self, target: Target, query: str, window: Window) -> list[str]:
        rows = self._sql(sql.expand_macros(query, _sql_range(window), window.step_seconds))
        return [str(row[0]) for row in rows]

    def _sql(self, statement: str) -> list[tuple[Any, ...]]:
        if not self.postgres:
            raise QueryError("no PostgreSQL DSN given")
        import psycopg2  # only the live check needs a driver

        try:
            with psycopg2.connect(self.postgres) as conn, conn.cursor() as cur:
                conn.set_session(readonly=True)
                cur.execute(statement)
                return list(cur.fetchall())
        except psycopg2.Error as exc:
            raise QueryError(str(exc).strip().splitlines()[0]) from exc


def _is_value(value: Any) -> bool:
    """A sample Grafana can draw: NaN (``0/0``, a ratio of nothing) shows as an empty panel, not as data."""
    return value is not None and str(value).lower() != "nan"


def _with_values(data: Mapping[str, Any]) -> int:
    """Series (or log streams) in a Prometheus/Loki answer that hold at least one drawable sample."""
    result, kind = data["result"], data.get("resultType")
    if kind == "matrix":
        return sum(1 for series in result if any(_is_value(v) for _, v in series.get("values", [])))
    if kind == "vector":
        return sum(1 for sample in result if _is_value(sample["value"][1]))
    if kind == "scalar":
        return int(_is_value(result[1]))
    return len(result) if isinstance(result, list) else 1


def _sql_range(window: Window) -> sql.TimeRange:
    return sql.TimeRange(window.start, window.end)


# --- through Grafana ---------------------------------------------------------------------------------
@dataclass
class GrafanaRunner:
    """Sends the interpolated queries to Grafana's ``/api/ds/query``; Grafana expands macros and built-ins."""

    url: str
    token: str

    def _post(self, queries: list[dict[str, Any]], window: Window) -> dict[str, Any]:
        body = {"from": str(int(window.start.timestamp() * 1000)), "to": str(int(window.end.timestamp() * 1000)),
                "queries": queries}
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return _http(f"{self.url.rstrip('/')}/api/ds/query", json.dumps(body).encode(), headers)

    def _query(self, target: Target, query: str, window: Window) -> list[dict[str, Any]]:
        q: dict[str, Any] = {"refId": "A", "datasource": {"type": target.ds_type, "uid": target.ds_uid},
                             "intervalMs": window.step_seconds * 1000, "maxDataPoints": 500}
        if target.ds_type == DsType.POSTGRES:
            q |= {"rawSql": query, "format": "table" if target.table or target.is_variable else "time_series",
                  "rawQuery": True}
        else:
            q |= {"expr": query, "instant": target.instant, "range": not target.instant,
                  "queryType": "instant" if target.instant else "range"}
        try:
            result = self._post([q], window)["results"]["A"]
        except QueryError:
            raise
        except (KeyError, TypeError) as exc:
            raise QueryError(f"unexpected answer from Grafana: {exc}") from exc
        if result.get("error"):
            raise QueryError(str(result["error"]))
        return result.get("frames", [])

    def run(self, target: Target, query: str, window: Window) -> int:
        frames = self._query(target, query, window)
        return sum(1 for f in frames if _frame_has_values(f))

    def label_values(self, target: Target, selector: str | None, label: str, window: Window) -> list[str]:
        proxy = f"{self.url.rstrip('/')}/api/datasources/proxy/uid/{target.ds_uid}"
        prefix = "/loki/api/v1" if target.ds_type == DsType.LOKI else "/api/v1"
        params = [("match[]", selector)] if selector and target.ds_type == DsType.PROMETHEUS else []
        url = f"{proxy}{prefix}/label/{label}/values?{urllib.parse.urlencode(params)}"
        body = _http(url, headers={"Authorization": f"Bearer {self.token}"})
        return sorted(body.get("data") or [])

    def sql_values(self, target: Target, query: str, window: Window) -> list[str]:
        frames = self._query(target, query, window)
        values = frames[0]["data"]["values"][0] if frames and frames[0].get("data", {}).get("values") else []
        return [str(v) for v in values]


def _frame_has_values(frame: Mapping[str, Any]) -> bool:
    """A frame with a drawable value outside its time field (Grafana sends NaN as null)."""
    fields = frame.get("schema", {}).get("fields", [])
    values = frame.get("data", {}).get("values", [])
    return any(_is_value(v) for i, column in enumerate(values)
               if not (i < len(fields) and fields[i].get("type") == "time") for v in column)


# --- variables -------------------------------------------------------------------------------------------
@dataclass
class Variables:
    """Each variable's values with "All" selected (or its default), and how Grafana formats them."""

    values: dict[str, list[str]] = field(default_factory=dict)
    all_value: dict[str, str] = field(default_factory=dict)
    multi: set[str] = field(default_factory=set)

    def format(self, query: str, ds_type: str) -> str:
        if ds_type == DsType.POSTGRES:
            return sql.interpolate(query, self.values)

        def repl(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(3) or match.group(4)
            fmt = match.group(2) or match.group(5)
            if name.startswith("__") or name not in self.values:
                return match.group(0)
            if name in self.all_value:
                return self.all_value[name]
            values = self.values[name]
            if fmt != "regex" and name not in self.multi:
                return values[0] if values else ""
            # :regex is used inside raw `...` strings; multi-values sit inside "..." where \ must be doubled
            slash = "\\" if fmt == "regex" else "\\\\"
            escaped = [_REGEX_SPECIAL.sub(lambda m: slash + m.group(0), v) for v in values]
            return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

        return VARIABLE.sub(repl, query)


def resolve(dashboard: Mapping[str, Any], runner: Runner, window: Window) -> Variables:
    """Variables in dashboard order, so later queries see earlier values (``$job`` in ``$instance``)."""
    out = Variables()
    by_name = {t.panel: t for t in targets(dashboard) if t.is_variable}
    for var in dashboard.get("templating", {}).get("list", []):
        name, kind = var["name"], var.get("type")
        if var.get("multi") or var.get("includeAll"):
            out.multi.add(name)
        if kind == "textbox" or kind == "constant":
            out.values[name] = [str(var.get("query") or "")]
            continue
        if kind == "datasource":  # targets() already resolved references to its default uid
            out.values[name] = [str((var.get("current") or {}).get("value", ""))]
            continue
        if var.get("includeAll") and var.get("allValue"):
            out.values[name] = []
            out.all_value[name] = var["allValue"]
            continue
        if kind == "custom":
            out.values[name] = [o["value"] for o in var.get("options", [])]
            continue
        target = by_name[name]
        query = out.format(target.expr, target.ds_type)
        try:
            if target.ds_type == DsType.POSTGRES:
                values = runner.sql_values(target, query, window)
            elif target.ds_type == DsType.PROMETHEUS:
                match = PROM_LABEL_VALUES.match(query)
                values = runner.label_values(target, match.group(1), match.group(2), window) if match else []
            else:
                match = LOKI_LABEL_VALUES.match(query)
                values = runner.label_values(target, None, match.group(1), window) if match else []
        except QueryError:
            values = []
        out.values[name] = values if var.get("includeAll") or not values else values[:1]
    return out


# --- the check ----------------------------------------------------------------------------------------------
def check_dashboard(dashboard: Mapping[str, Any], runner: Runner, window: Window,
                    only: frozenset[str] | None = None) -> list[Result]:
    """``only``: datasource types to query (direct mode checks just the datasources it was given)."""
    variables = resolve(dashboard, runner, window)
    results = []
    for target in targets(dashboard):
        if target.is_variable or (only is not None and target.ds_type not in only):
            continue
        name = f"{target.panel} [{target.ref_id}]"
        try:
            query = variables.format(target.expr, target.ds_type)
            count = runner.run(target, query, window)
        except (QueryError, sql.SqlMacroError) as exc:
            results.append(Result(target.dashboard, name, ERROR, str(exc)))
            continue
        results.append(Result(target.dashboard, name, OK if count else NO_DATA, "" if count else "empty result"))
    return results


def check_files(paths: Sequence[Path], runner: Runner, window: Window,
                only: frozenset[str] | None = None) -> list[Result]:
    results: list[Result] = []
    for path in paths:
        results += check_dashboard(json.loads(path.read_text()), runner, window, only)
    return results
