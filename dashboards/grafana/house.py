"""The house layer over grafanalib: one observable in, one clean panel out.

grafanalib 0.7.1 gives us Dashboard, Templating, Time and the panel base class,
but its panel and target JSON carries legacy noise (``maxDataPoints: 100``,
``intervalFactor: 2``, ``span``, string datasources) and it has no Loki target.
So panels and targets are grafanalib subclasses that emit only what current
Grafana reads, and every default (units, thresholds, legend, datasource
reference) is applied here once instead of in each dashboard. Datasources are
always referenced through a datasource variable, whose default is the
provisioned uid: the dashboards import into any Grafana unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import attr
from grafanalib import core

from ..config import Config, DsType
from ..observables.model import NEUTRAL, Observable, color_by_name

GRID_COLUMNS = 24
SCHEMA_VERSION = 42
"""What Grafana 12 and 13 write: the last schemaVersion of the v1 dashboard model (Grafana's DashboardMigrator.ts);
checked with the foundation SDK's types in tests/dashboards/test_grafana_schema.py."""


# --- datasources -------------------------------------------------------------
DATASOURCE_VARIABLES: Final = {
    DsType.PROMETHEUS: ("prometheus_datasource", "Prometheus data source"),
    DsType.LOKI: ("loki_datasource", "Loki data source"),
    DsType.POSTGRES: ("postgres_datasource", "PostgreSQL data source"),
}
"""One datasource variable per type a dashboard uses (named as grafana/dashboard-linter expects)."""


@dataclass(frozen=True, slots=True)
class Datasource:
    """A datasource reference as Grafana stores it: by type and, through its variable, by uid."""

    type: DsType

    @property
    def variable(self) -> str:
        return DATASOURCE_VARIABLES[self.type][0]

    def ref(self) -> dict[str, str]:
        return {"type": str(self.type), "uid": f"${{{self.variable}}}"}


def provisioned_uid(cfg: Config, kind: DsType) -> str:
    return {DsType.PROMETHEUS: cfg.datasources.prometheus, DsType.LOKI: cfg.datasources.loki,
            DsType.POSTGRES: cfg.datasources.postgres_audit}[kind]


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
    ds = Datasource(obs.datasource)
    for i, q in enumerate(obs.queries):
        ref = _ref_id(i)
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
    min_interval: str = attr.ib(default="")
    """Grafana's panel ``interval``: the scrape interval of the job it reads, when not the datasource's."""

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
            "datasource": Datasource(obs.datasource).ref(),
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
        if self.min_interval:
            out["interval"] = self.min_interval
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


CHAIN_STATES: Final = {0: ("intact", "green"), 1: ("BROKEN", "red")}


def chain_status(obs: Observable, *, width: int = 6, height: int = 4) -> HousePanel:
    """A stat that says intact / BROKEN instead of 0 / 1."""
    mappings = [{"type": "value", "options": {
        str(value): {"text": text, "color": color, "index": i}
        for i, (value, (text, color)) in enumerate(CHAIN_STATES.items())}}]
    panel = stat(obs, width=width, height=height, text_mode="value")
    return attr.evolve(panel, defaults={**panel.defaults, "mappings": mappings})


_STYLES: Final = {"timeseries": timeseries, "stat": stat, "bargauge": bargauge, "piechart": piechart,
                  "table": table, "logs": logs, "chain_status": chain_status}


def panel(obs: Observable, width: int | None = None, height: int | None = None) -> HousePanel:
    """The observable drawn in its style; ``colors`` (series name -> colour) become fixed-colour overrides."""
    options = dict(obs.style.options)
    colors = options.pop("colors", None)
    if colors:
        options["overrides"] = [*color_by_name(colors), *options.get("overrides", ())]
    size = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    return _STYLES[obs.style.kind](obs, **size, **options)
