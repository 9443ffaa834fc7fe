"""The house layer over grafanalib: one typed "observable" in, one clean panel out.

grafanalib 0.7.1 gives us Dashboard, Templating, Time and the panel base class,
but its panel and target JSON carries legacy noise (``maxDataPoints: 100``,
``intervalFactor: 2``, ``span``, string datasources) and it has no Loki target.
So panels and targets are grafanalib subclasses that emit only what Grafana 11
reads, and every default (units, thresholds, legend, datasource reference) is
applied here once instead of in each dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import attr
from grafanalib import core

from ..config import Config, DsType

GRID_COLUMNS = 24
SCHEMA_VERSION = 39


# --- datasources -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Datasource:
    """A datasource reference as Grafana stores it: by type and uid, never by name."""

    type: DsType
    uid: str

    def ref(self) -> dict[str, str]:
        return {"type": str(self.type), "uid": self.uid}


def prometheus(cfg: Config) -> Datasource:
    return Datasource(DsType.PROMETHEUS, cfg.datasources.prometheus)


def loki(cfg: Config) -> Datasource:
    return Datasource(DsType.LOKI, cfg.datasources.loki)


def postgres(cfg: Config) -> Datasource:
    return Datasource(DsType.POSTGRES, cfg.datasources.postgres_audit)


# --- the observable ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Step:
    color: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Explicit threshold steps; the first is the base (value ``None``)."""

    steps: tuple[Step, ...]

    @classmethod
    def of(cls, base: str, *steps: tuple[float, str]) -> Thresholds:
        return cls((Step(base), *(Step(color, value) for value, color in steps)))

    def to_json(self) -> dict[str, Any]:
        return {"mode": "absolute", "steps": [{"color": s.color, "value": s.value} for s in self.steps]}


NEUTRAL = Thresholds.of("green")
"""For panels where no value is good or bad (traffic, counts)."""


@dataclass(frozen=True, slots=True)
class Query:
    """One target. ``expr`` is PromQL, LogQL or SQL, depending on the panel's datasource."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    """SQL: table format instead of time series; Prometheus: table format for instant data."""
    exemplars: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Observable:
    """What a panel shows and why. A panel without description or unit cannot be built."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    datasource: Datasource
    thresholds: Thresholds = NEUTRAL
    links: tuple[Link, ...] = ()

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("an observable needs a title")
        if not self.description.strip():
            raise ValueError(f"panel {self.title!r} has no description: say what it shows and why")
        if not self.unit.strip():
            raise ValueError(f"panel {self.title!r} has no unit (use 'none' or 'short' for plain numbers)")
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query")
        if not self.thresholds.steps or self.thresholds.steps[0].value is not None:
            raise ValueError(f"panel {self.title!r}: thresholds must start with a base step")


def observe(
    title: str,
    description: str,
    unit: str,
    datasource: Datasource,
    *queries: Query | str,
    thresholds: Thresholds = NEUTRAL,
    links: Sequence[Link] = (),
) -> Observable:
    """Shorthand: bare strings become queries without legend."""
    qs = tuple(q if isinstance(q, Query) else Query(q) for q in queries)
    return Observable(title, description, unit, qs, datasource, thresholds, tuple(links))


# --- targets -------------------------------------------------------------------
def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


@attr.s
class PrometheusTarget(core.Target):
    """A Prometheus target without grafanalib's ``intervalFactor``/``step`` leftovers."""

    ds: Datasource = attr.ib(default=None)
    exemplar: bool = attr.ib(default=False)
    table: bool = attr.ib(default=False)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": self.ds.ref(),
            "editorMode": "code",
            "exemplar": self.exemplar,
            "expr": self.expr,
            "format": "table" if self.table else "time_series",
            "instant": self.instant,
            "legendFormat": self.legendFormat or "__auto",
            "range": not self.instant,
            "refId": self.refId,
        }


@attr.s
class LokiTarget(core.Target):
    """The Loki target released grafanalib lacks."""

    ds: Datasource = attr.ib(default=None)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": self.ds.ref(),
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legendFormat,
            "queryType": "instant" if self.instant else "range",
            "refId": self.refId,
        }


@attr.s
class PostgresTarget(core.SqlTarget):
    ds: Datasource = attr.ib(default=None)
    table: bool = attr.ib(default=False)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": self.ds.ref(),
            "editorMode": "code",
            "format": "table" if self.table else "time_series",
            "rawQuery": True,
            "rawSql": self.rawSql,
            "refId": self.refId,
        }


def targets(obs: Observable) -> list[core.Target]:
    out: list[core.Target] = []
    for i, q in enumerate(obs.queries):
        ref = _ref_id(i)
        ds = obs.datasource
        if ds.type is DsType.PROMETHEUS:
            out.append(PrometheusTarget(expr=q.expr, legendFormat=q.legend, refId=ref, instant=q.instant,
                                        ds=ds, exemplar=q.exemplars, table=q.table))
        elif ds.type is DsType.LOKI:
            out.append(LokiTarget(expr=q.expr, legendFormat=q.legend, refId=ref, instant=q.instant, ds=ds))
        else:
            out.append(PostgresTarget(rawSql=q.expr, refId=ref, ds=ds, table=q.table))
    return out


# --- panels ------------------------------------------------------------------------
class Kind(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"
    TABLE = "table"
    BARGAUGE = "bargauge"
    PIECHART = "piechart"
    LOGS = "logs"


@attr.s
class HousePanel(core.Panel):
    """Every visual panel: plain Grafana JSON for one of the allowed kinds, nothing legacy."""

    kind: Kind = attr.ib(default=Kind.TIMESERIES)
    obs: Observable = attr.ib(default=None)
    width: int = attr.ib(default=12)
    height: int = attr.ib(default=8)
    options: dict[str, Any] = attr.ib(factory=dict)
    custom: dict[str, Any] = attr.ib(factory=dict)
    defaults: dict[str, Any] = attr.ib(factory=dict)
    overrides: list[dict[str, Any]] = attr.ib(factory=list)

    def to_json_data(self) -> dict[str, Any]:
        obs = self.obs
        field_defaults: dict[str, Any] = {
            "color": {"mode": "palette-classic" if self.kind is Kind.TIMESERIES else "thresholds"},
            "custom": self.custom,
            "mappings": [],
            "thresholds": obs.thresholds.to_json(),
            "unit": obs.unit,
        }
        field_defaults.update(self.defaults)
        out: dict[str, Any] = {
            "datasource": obs.datasource.ref(),
            "description": obs.description,
            "fieldConfig": {"defaults": field_defaults, "overrides": self.overrides},
            "gridPos": self.gridPos,
            "id": self.id,
            "options": self.options,
            "targets": self.targets,
            "title": obs.title,
            "type": str(self.kind),
        }
        if obs.links:
            out["links"] = [{"targetBlank": False, "title": lk.title, "url": lk.url} for lk in obs.links]
        return out


@attr.s
class HouseRow(core.RowPanel):
    """A row header; rows here are never collapsed, so they hold no panels."""

    def to_json_data(self) -> dict[str, Any]:
        return {"collapsed": False, "gridPos": self.gridPos, "id": self.id, "panels": [], "title": self.title,
                "type": "row"}


def _panel(kind: Kind, obs: Observable, width: int, height: int, **parts: Any) -> HousePanel:
    return HousePanel(kind=kind, obs=obs, width=width, height=height, title=obs.title, targets=targets(obs),
                      **parts)


def timeseries(
    obs: Observable,
    *,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    bars: bool = False,
    overrides: Sequence[Mapping[str, Any]] = (),
    min_zero: bool = True,
) -> HousePanel:
    custom = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": "off" if obs.thresholds is NEUTRAL else "dashed"},
    }
    defaults: dict[str, Any] = {"min": 0} if min_zero else {}
    options = {
        "legend": {"calcs": ["mean", "max", "lastNotNull"], "displayMode": "table", "placement": "bottom",
                   "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel(Kind.TIMESERIES, obs, width, height, options=options, custom=custom, defaults=defaults,
                  overrides=[dict(o) for o in overrides])


def _reduce(calc: str, all_values: bool = False) -> dict[str, Any]:
    return {"calcs": [] if all_values else [calc], "fields": "", "values": all_values}


def stat(obs: Observable, *, width: int = 4, height: int = 4, calc: str = "lastNotNull",
         text_mode: str = "auto", decimals: int | None = None) -> HousePanel:
    options = {"colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
               "reduceOptions": _reduce(calc), "textMode": text_mode}
    defaults: dict[str, Any] = {} if decimals is None else {"decimals": decimals}
    return _panel(Kind.STAT, obs, width, height, options=options, defaults=defaults)


def bargauge(obs: Observable, *, width: int = 12, height: int = 8, rows: bool = False) -> HousePanel:
    """``rows``: one bar per table row (SQL top-N), instead of one per series."""
    options = {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
               "reduceOptions": _reduce("lastNotNull", all_values=rows)}
    return _panel(Kind.BARGAUGE, obs, width, height, options=options, defaults={"min": 0})


def piechart(obs: Observable, *, width: int = 8, height: int = 8,
             overrides: Sequence[Mapping[str, Any]] = ()) -> HousePanel:
    options = {"displayLabels": ["percent"], "legend": {"displayMode": "table", "placement": "right",
                                                          "showLegend": True, "values": ["value"]},
               "pieType": "donut", "reduceOptions": _reduce("lastNotNull"), "tooltip": {"mode": "single"}}
    return _panel(Kind.PIECHART, obs, width, height, options=options,
                  overrides=[dict(o) for o in overrides], defaults={"color": {"mode": "palette-classic"}})


def table(obs: Observable, *, width: int = 24, height: int = 10,
          overrides: Sequence[Mapping[str, Any]] = (), sort_by: str | None = None) -> HousePanel:
    options: dict[str, Any] = {"cellHeight": "sm", "footer": {"show": False}, "showHeader": True}
    if sort_by:
        options["sortBy"] = [{"desc": True, "displayName": sort_by}]
    custom = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}
    return _panel(Kind.TABLE, obs, width, height, options=options, custom=custom,
                  overrides=[dict(o) for o in overrides])


def logs(obs: Observable, *, width: int = 24, height: int = 10) -> HousePanel:
    options = {"dedupStrategy": "none", "enableLogDetails": True, "prettifyLogMessage": False,
               "showCommonLabels": False, "showLabels": False, "showTime": True, "sortOrder": "Descending",
               "wrapLogMessage": True}
    return _panel(Kind.LOGS, obs, width, height, options=options)


# --- field overrides ----------------------------------------------------------------
def color_by_name(colors: Mapping[str, str]) -> list[dict[str, Any]]:
    """Fixed colours for named series (success green, error red, ...)."""
    return [
        {"matcher": {"id": "byName", "options": name},
         "properties": [{"id": "color", "value": {"fixedColor": color, "mode": "fixed"}}]}
        for name, color in colors.items()
    ]


def column(name: str, *props: tuple[str, Any]) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": k, "value": v} for k, v in props]}


def value_colors(colors: Mapping[str, str]) -> list[dict[str, Any]]:
    """Value mappings that colour a text cell by its value."""
    options = {value: {"color": color, "index": i} for i, (value, color) in enumerate(colors.items())}
    return [{"options": options, "type": "value"}]


# --- layout ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Section:
    """A row header followed by panels placed left to right, wrapping at 24 columns."""

    title: str
    panels: Sequence[HousePanel] = field(default_factory=tuple)


def layout(sections: Sequence[Section]) -> list[core.Panel]:
    """Assign gridPos and ids; deterministic, so generated JSON is stable."""
    out: list[core.Panel] = []
    y = 0
    next_id = 1
    for section in sections:
        out.append(HouseRow(title=section.title, id=next_id, gridPos=core.GridPos(h=1, w=GRID_COLUMNS, x=0, y=y)))
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in section.panels:
            if not 0 < panel.width <= GRID_COLUMNS:
                raise ValueError(f"panel {panel.title!r}: width {panel.width} outside 1..{GRID_COLUMNS}")
            if x + panel.width > GRID_COLUMNS:
                y += line_height
                x = 0
                line_height = 0
            out.append(attr.evolve(panel, id=next_id,
                                   gridPos=core.GridPos(h=panel.height, w=panel.width, x=x, y=y)))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


# --- variables ------------------------------------------------------------------------
@attr.s
class Variable(core.Template):
    """A template variable with a datasource reference and Grafana's standard All."""

    ds: Datasource | None = attr.ib(default=None)

    def to_json_data(self) -> dict[str, Any]:
        if self.type == "textbox":
            current = {"text": self.default or "", "value": self.default or ""}
        elif self.includeAll:
            current = {"text": ["All"], "value": ["$__all"]} if self.multi else {"text": "All", "value": "$__all"}
        else:
            current = {}
        out: dict[str, Any] = {
            "current": current,
            "hide": self.hide,
            "label": self.label,
            "name": self.name,
            "options": self.options,
            "query": self.query,
            "type": self.type,
        }
        if self.type == "query":
            out |= {"datasource": self.ds.ref() if self.ds else None, "definition": self.query,
                    "refresh": 2, "regex": self.regex or "", "sort": 1}
        if self.type in ("query", "custom"):
            out |= {"includeAll": self.includeAll, "multi": self.multi}
            if self.allValue is not None:
                out["allValue"] = self.allValue
        return out


def query_variable(name: str, label: str, ds: Datasource, query: str, *, multi: bool = True,
                   include_all: bool = True, all_value: str | None = None) -> Variable:
    """Refreshed on time-range change so options match what the panels can show."""
    return Variable(name=name, label=label, query=query, ds=ds, multi=multi, includeAll=include_all,
                    allValue=all_value)


def job_and_instance(ds: Datasource, job_query: str, instance_query: str) -> list[Variable]:
    """One job (restricted by the config's selector), any of its instances."""
    return [
        query_variable("job", "Job", ds, job_query, multi=False, include_all=False),
        query_variable("instance", "Instance", ds, instance_query),
    ]


def textbox(name: str, label: str, default: str = "") -> Variable:
    return Variable(name=name, label=label, query=default, default=default, type="textbox")


def custom_variable(name: str, label: str, values: Sequence[str], *, all_value: str | None = None) -> Variable:
    options = [{"selected": False, "text": v, "value": v} for v in values]
    return Variable(name=name, label=label, query=",".join(values), type="custom", multi=True, includeAll=True,
                    allValue=all_value, options=options)


# --- dashboards --------------------------------------------------------------------------
def dashboard(
    uid: str,
    title: str,
    description: str,
    sections: Sequence[Section],
    variables: Sequence[Variable] = (),
    *,
    tags: Sequence[str] = (),
    time_from: str = "now-1h",
    refresh: str = "30s",
    links: Sequence[Link] = (),
) -> core.Dashboard:
    return core.Dashboard(
        uid=uid,
        title=title,
        description=description,
        panels=layout(sections),
        templating=core.Templating(list=list(variables)),
        time=core.Time(time_from, "now"),
        schemaVersion=SCHEMA_VERSION,
        refresh=refresh,
        tags=sorted(tags),
        timezone="utc",
        graphTooltip=1,
        editable=False,
        links=[{"asDropdown": False, "includeVars": False, "keepTime": True, "tags": [], "targetBlank": False,
                "title": lk.title, "type": "link", "url": lk.url} for lk in links],
    )
