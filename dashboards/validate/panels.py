"""Walks generated dashboard JSON and runs every check on every query, panel and variable.

Works on the JSON that is written (not on the Python objects), so what is
checked is exactly what Grafana loads. Problems name dashboard, panel and
problem, so a failing build says where to look.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..catalogs import MetricCatalog
from ..catalogs.logs import EVERY_STREAM_LABELS, STREAM_LABELS
from ..config import DsType
from ..grafana.house import Kind
from . import logql, promql, sql
from .variables import LOKI_LABEL_VALUES, references

ALLOWED_KINDS = frozenset(str(k) for k in Kind) | {"row"}


@dataclass(frozen=True, slots=True)
class Target:
    """One query of a dashboard: a panel target or a variable's query."""

    dashboard: str
    panel: str
    ref_id: str
    ds_type: str
    ds_uid: str
    expr: str
    is_variable: bool = False
    table: bool = False
    instant: bool = False

    @property
    def label(self) -> str:
        """How problems name it: ``panel 'Request rate' [A]`` or ``variable $job``."""
        return f"variable ${self.panel}" if self.is_variable else f"panel {self.panel!r} [{self.ref_id}]"


@dataclass(frozen=True, slots=True)
class Problem:
    dashboard: str
    panel: str
    message: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.message}"


@dataclass
class Context:
    """What the checks compare against; tests pass modified catalogs or field sets here."""

    catalogs: Mapping[str, MetricCatalog]
    """Dashboard uid -> catalog its PromQL must use; ``"*"`` is the fallback."""
    log_fields: frozenset[str]
    datasource_uids: Mapping[str, str]
    """uid -> datasource type, as provisioned."""
    stream_labels: frozenset[str] = STREAM_LABELS
    scrape_intervals: Mapping[str, str] = field(default_factory=dict)
    """Catalog source (``app``, ``keycloak``) -> the interval its job is scraped at."""
    datasource_interval: str = "15s"
    """The Prometheus datasource's ``timeInterval``: the scrape interval Grafana assumes without a panel's own."""
    logql_parser: Callable[[Sequence[str]], list[logql.Parsed]] | None = field(default=logql.parse_batch)
    """``None`` skips the LogQL grammar (no node); the build always runs it."""

    def catalog(self, dashboard: str) -> MetricCatalog:
        return self.catalogs.get(dashboard) or self.catalogs["*"]


def _panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def datasource_defaults(dashboard: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``${name}`` of each datasource variable -> (plugin type, the uid it selects by default)."""
    out = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "datasource":
            out[f"${{{var['name']}}}"] = (var.get("query", ""), (var.get("current") or {}).get("value", ""))
    return out


def resolved(ds: Mapping[str, Any], defaults: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """A datasource reference with its variable replaced by the variable's default uid (as Grafana opens it)."""
    uid = ds.get("uid", "")
    if uid in defaults:
        return {"type": ds.get("type", ""), "uid": defaults[uid][1]}
    return {"type": ds.get("type", ""), "uid": uid}


def _datasource_problems(ds: Mapping[str, Any], defaults: Mapping[str, tuple[str, str]],
                         provisioned: Mapping[str, str]) -> list[str]:
    """References go through a datasource variable of the same type whose default is provisioned, so the
    dashboard imports into another Grafana unchanged."""
    uid, kind = ds.get("uid", ""), ds.get("type", "")
    if uid not in defaults:
        return [f"datasource {dict(ds)} names a uid directly: reference the {kind} datasource variable"]
    var_kind, default = defaults[uid]
    problems = [f"datasource {dict(ds)}: variable {uid} selects {var_kind} datasources"] if var_kind != kind else []
    if provisioned.get(default) != kind:
        problems.append(f"datasource variable {uid} defaults to {default!r}, not a provisioned {kind} datasource "
                        f"({dict(provisioned)})")
    return problems


def targets(dashboard: Mapping[str, Any]) -> list[Target]:
    """Every query of the dashboard with its datasource resolved to the default uid."""
    uid = dashboard["uid"]
    defaults = datasource_defaults(dashboard)
    out: list[Target] = []
    for panel in _panels(dashboard):
        for t in panel.get("targets", []):
            ds = resolved(t.get("datasource") or panel.get("datasource") or {}, defaults)
            expr = t.get("rawSql") if ds.get("type") == DsType.POSTGRES else t.get("expr")
            out.append(Target(uid, panel.get("title", ""), t.get("refId", ""), ds.get("type", ""),
                              ds.get("uid", ""), expr or "", table=t.get("format") == "table",
                              instant=bool(t.get("instant")) or t.get("queryType") == "instant"))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            ds = resolved(var.get("datasource") or {}, defaults)
            query = var["query"] if isinstance(var["query"], str) else var["query"].get("query", "")
            out.append(Target(uid, var["name"], "", ds.get("type", ""), ds.get("uid", ""), query, is_variable=True))
    return out


def _structure(dashboard: Mapping[str, Any], ctx: Context) -> Iterator[Problem]:
    uid = dashboard["uid"]
    defaults = datasource_defaults(dashboard)
    for panel in _panels(dashboard):
        title = panel.get("title", "")
        kind = panel.get("type")
        if kind not in ALLOWED_KINDS:
            yield Problem(uid, title, f"panel type {kind!r} is not allowed (use {', '.join(sorted(ALLOWED_KINDS))})")
        if kind == "row":
            continue
        if not (panel.get("description") or "").strip():
            yield Problem(uid, title, "panel has no description")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            yield Problem(uid, title, "panel has no unit")
        for key in ("maxDataPoints", "intervalFactor"):
            if key in panel:
                yield Problem(uid, title, f"legacy key {key!r} in panel JSON")
        datasources = [panel.get("datasource") or {}, *(t["datasource"] for t in panel.get("targets", [])
                                                         if t.get("datasource"))]
        for ds in datasources:
            for problem in _datasource_problems(ds, defaults, ctx.datasource_uids):
                yield Problem(uid, title, problem)
    for var in dashboard.get("templating", {}).get("list", []):
        ds = var.get("datasource")
        if ds:
            for problem in _datasource_problems(ds, defaults, ctx.datasource_uids):
                yield Problem(uid, f"${var['name']}", problem)
        if var.get("type") == "query" and ds and ds.get("type") == DsType.POSTGRES and var.get("allValue"):
            yield Problem(uid, f"${var['name']}", "SQL variables use Grafana's standard All, not a custom allValue")


def _check_variables_defined(t: Target, defined: frozenset[str]) -> list[str]:
    return [f"uses undefined variable ${name}" for name, _ in references(t.expr)
            if name not in defined and not name.startswith("__")  # $__ names are Grafana's
            and not name.isdigit()]  # $1 is a regex group (label_replace), which Grafana leaves alone


def _check_sql(t: Target, variables: frozenset[str], sql_variables: frozenset[str]) -> list[str]:
    problems = [f"variable {ref} must be written ${{name:sqlstring}} (quoted, quotes doubled)"
                for ref in sql.unsafe_references(t.expr)]
    used = {name for name, _ in references(t.expr)}
    if not t.is_variable:
        problems += [f"SQL panel ignores the dashboard variable ${name}" for name in sorted(sql_variables - used)]
    sample = {name: ["x"] for name in variables}
    try:
        sql.render(t.expr, sample, sql.TimeRange.last(timedelta(hours=1), datetime(2024, 1, 1, tzinfo=UTC)))
    except sql.SqlMacroError as exc:
        problems.append(f"SQL macro/variable expansion failed: {exc}")
    if not t.is_variable and t.expr.count("$__timeFilter(") + t.expr.count("$__unixEpochFilter(") == 0:
        problems.append("SQL panel does not filter on the dashboard time range ($__timeFilter)")
    return problems


def _check_loki_variable(t: Target, ctx: Context) -> list[str]:
    match = LOKI_LABEL_VALUES.match(t.expr)
    if not match:
        return [f"Loki variable query {t.expr!r} is not label_values(<label>)"]
    if match.group(1) not in ctx.stream_labels:
        return [f"label_values({match.group(1)}): not a stream label Alloy sets"]
    return []


def _interval_problems(dashboard: Mapping[str, Any], ctx: Context) -> Iterator[Problem]:
    """Grafana's ``$__rate_interval`` is 4 scrape intervals of the one it assumes (the panel's min interval, else
    the datasource's): a panel reading a job scraped less often must say so, or its rate windows hold too few
    samples and one missed scrape leaves a hole."""
    if not ctx.scrape_intervals:
        return
    uid = dashboard["uid"]
    catalog = ctx.catalog(uid)
    for panel in _panels(dashboard):
        if (panel.get("datasource") or {}).get("type") != DsType.PROMETHEUS or panel.get("type") == "row":
            continue
        sources = {catalog.series[name].source for t in panel.get("targets", [])
                   for name in promql.series_read(t.get("expr", ""), catalog) if name in catalog.series}
        wanted = {ctx.scrape_intervals[s] for s in sources if s in ctx.scrape_intervals}
        assumed = panel.get("interval") or ctx.datasource_interval
        if len(wanted) == 1 and assumed not in wanted:
            yield Problem(uid, panel.get("title", ""), f"reads a job scraped every {wanted.pop()} but Grafana assumes "
                          f"{assumed} for $__rate_interval: set the panel's min interval")


NOW_WORDS: Final = ("now", "last", "since", "current")


def _last_minute_alone(dashboard: Mapping[str, Any]) -> Iterator[Problem]:
    """A stat that shows its last point reads the last minute (or the last scrape) only: the user, looking at a
    range, must be told, or the stat must read the range (an instant query over ``$__range``)."""
    for panel in _panels(dashboard):
        if panel.get("type") != "stat" or (panel.get("datasource") or {}).get("type") != DsType.PROMETHEUS:
            continue
        calcs = (panel.get("options", {}).get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
        over_range = all(t.get("instant") and "$__range" in t.get("expr", "") for t in panel.get("targets", []))
        title = panel.get("title", "")
        if calcs[0] in ("last", "lastNotNull") and not over_range and not any(
                re.search(rf"\b{word}\b", title, re.I) for word in NOW_WORDS):
            yield Problem(dashboard["uid"], title, "shows the last point alone: read the time range (an instant "
                          "query over $__range) or say so in the title (now, last, since)")


def _stream_all_values(dashboard: Mapping[str, Any]) -> Iterator[Problem]:
    """A variable over a stream label that some streams lack: its All must match the empty string too, or every
    stream without the label (non-JSON services) silently drops out of every panel using it."""
    for var in dashboard.get("templating", {}).get("list", []):
        match = LOKI_LABEL_VALUES.match(str(var.get("query", "")))
        if not match or match.group(1) in EVERY_STREAM_LABELS or not var.get("includeAll"):
            continue
        all_value = var.get("allValue")
        if all_value is not None and not re.fullmatch(all_value, ""):
            yield Problem(dashboard["uid"], f"${var['name']}",
                          f"All is {all_value!r}, which drops the streams without a {match.group(1)} label "
                          f"(lines that are not JSON get only {', '.join(sorted(EVERY_STREAM_LABELS))}): use '.*'")


def validate(dashboards: Mapping[str, Mapping[str, Any]], ctx: Context) -> list[Problem]:
    """Every problem in every dashboard; an empty list means the build may write them."""
    problems: list[Problem] = []
    loki_targets: list[Target] = []
    for uid, dashboard in dashboards.items():
        problems += _structure(dashboard, ctx)
        problems += _stream_all_values(dashboard)
        problems += _last_minute_alone(dashboard)
        problems += _interval_problems(dashboard, ctx)
        variables = dashboard.get("templating", {}).get("list", [])
        defined = frozenset(v["name"] for v in variables)
        sql_variables = frozenset(v["name"] for v in variables
                                  if (v.get("datasource") or {}).get("type") == DsType.POSTGRES)
        for t in targets(dashboard):
            found = _check_variables_defined(t, defined)
            if ctx.datasource_uids.get(t.ds_uid) != t.ds_type:
                found.append(f"datasource uid {t.ds_uid!r} ({t.ds_type}) is not provisioned")
            if t.ds_type == DsType.PROMETHEUS:
                if t.is_variable:
                    found += promql.check_label_values(t.expr, ctx.catalog(uid))
                else:
                    found += promql.check(t.expr, ctx.catalog(uid), instant=t.instant)
            elif t.ds_type == DsType.POSTGRES:
                found += _check_sql(t, defined, sql_variables)
            elif t.ds_type == DsType.LOKI and t.is_variable:
                found += _check_loki_variable(t, ctx)
            elif t.ds_type == DsType.LOKI:
                loki_targets.append(t)
            else:
                found.append(f"unknown datasource type {t.ds_type!r}")
            problems += [Problem(t.dashboard, t.label, msg) for msg in found]
    if ctx.logql_parser is not None and loki_targets:
        for t, parsed in zip(loki_targets, ctx.logql_parser([t.expr for t in loki_targets]), strict=True):
            problems += [Problem(t.dashboard, t.label, msg)
                         for msg in logql.check(parsed, ctx.log_fields, ctx.stream_labels)]
    return problems
