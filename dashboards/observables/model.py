"""The observable: one typed definition of a signal, from which every artifact about it is rendered.

An observable says what it shows (title, the question its description
answers, unit), how (its queries, pure functions of the config, and its panel
style), when to worry (thresholds read from the config), and either the
alerts that page or ticket on it, with the promtool cases proving they fire
and stay silent, or why it has none. Its runbook (meaning, impact, diagnosis
queries, mitigation) is written once here and rendered into the runbook page,
the alert's annotations and the dashboard docs.

Definitions are data: nothing is checked when one is built. ``problems()``
lists what is wrong, by name, and the build reports every problem of every
observable at once instead of stopping at the first traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..config import Config, DsType
from ..queries import Scope, rule
from ..stack.prometheus.rules import Alert, Case

__all__ = [
    "NEUTRAL",
    "Diagnosis",
    "Feature",
    "Link",
    "Observable",
    "PanelStyle",
    "Query",
    "Runbook",
    "Step",
    "Thresholds",
    "app_labels",
    "per_instance",
]

Feature = Literal["websocket", "audit", "auth", "rate_limit", "database", "keycloak"]
"""A field of ``config.Features``: an observable of a switched-off feature renders nothing."""


# --- what a panel reads ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    """One target. ``expr`` is PromQL, LogQL or SQL, depending on the observable's datasource."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    """SQL: table format instead of time series; Prometheus: table format for instant data."""
    exemplars: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    color: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Explicit threshold steps; the first is the base (value ``None``). Values come from the config."""

    steps: tuple[Step, ...]

    @classmethod
    def of(cls, base: str, *steps: tuple[float, str]) -> Thresholds:
        return cls((Step(base), *(Step(color, value) for value, color in steps)))

    @classmethod
    def any_is(cls, color: str) -> Thresholds:
        """Green at zero, ``color`` from the first one: for counts where a single event matters."""
        return cls.of("green", (AT_LEAST_ONE, color))

    def to_json(self) -> dict[str, Any]:
        return {"mode": "absolute", "steps": [{"color": s.color, "value": s.value} for s in self.steps]}


AT_LEAST_ONE: Final = 1
"""The one threshold that is not a setting: "any event" (a dropped audit row, a broken chain)."""
NEUTRAL: Final = Thresholds.of("green")
"""For panels where no value is good or bad (traffic, counts)."""


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class PanelStyle:
    """How the panel draws: a house panel kind and its options (see ``grafana.house``)."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


def timeseries(**options: Any) -> PanelStyle:
    return PanelStyle("timeseries", options)


def stat(**options: Any) -> PanelStyle:
    return PanelStyle("stat", options)


def bargauge(**options: Any) -> PanelStyle:
    return PanelStyle("bargauge", options)


def piechart(**options: Any) -> PanelStyle:
    return PanelStyle("piechart", options)


def table(**options: Any) -> PanelStyle:
    return PanelStyle("table", options)


def logs(**options: Any) -> PanelStyle:
    return PanelStyle("logs", options)


def chain_status() -> PanelStyle:
    """A stat reading intact / BROKEN instead of 0 / 1."""
    return PanelStyle("chain_status")


# --- what to do about it ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A query to run while the alert fires, and what its answer tells."""

    what: str
    query: str
    language: Literal["promql", "logql", "sql", "shell"] = "promql"


@dataclass(frozen=True, slots=True)
class Runbook:
    meaning: str
    """What the signal means when it is bad."""
    impact: str
    """What users, operators or auditors lose while it lasts."""
    diagnosis: tuple[Diagnosis, ...]
    mitigation: str

    def first_lines(self) -> str:
        """What an alert carries in its ``runbook`` annotation: useful even with no link that resolves."""
        return f"{self.meaning} First: {self.mitigation.split('. ')[0].rstrip('.')}."


# --- the unit -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Observable:
    name: str
    """Stable identity (``http.error_ratio``): panel ids, doc anchors and placements derive from it."""
    title: str
    description: str
    """The question the panel answers, and how to read it."""
    unit: str
    datasource: DsType
    queries: tuple[Query, ...]
    style: PanelStyle
    thresholds: Thresholds = NEUTRAL
    alerts: tuple[Alert, ...] = ()
    cases: tuple[Case, ...] = ()
    """promtool cases of ``alerts``: each alert needs one where it fires and one where it stays silent."""
    alert_refs: tuple[str, ...] = ()
    """Alerts defined elsewhere (SLO burn rates, from their SLO spec) that this panel shows."""
    no_alert: str = ""
    """Why nothing pages on this signal; required when it has no alert."""
    runbook: Runbook | None = None
    """Required when it has alerts."""
    feature: Feature | None = None
    rule_file: str = ""
    """``prometheus/rules/<rule_file>.yml``, where its alerts go."""
    links: tuple[Link, ...] = ()

    def alert_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*(a.name for a in self.alerts), *self.alert_refs)))

    def problems(self) -> list[str]:
        """Everything that keeps this definition from rendering honestly, each naming the observable."""
        out = []
        if not self.name.strip() or self.name != self.name.strip().lower():
            out.append("needs a lower-case name")
        if not self.title.strip():
            out.append("has no title")
        if not self.description.strip():
            out.append("has no description: say what question the panel answers and how to read it")
        if not self.unit.strip():
            out.append("has no unit (use 'none' or 'short' for plain numbers)")
        if not self.queries:
            out.append("has no query")
        if not self.thresholds.steps or self.thresholds.steps[0].value is not None:
            out.append("thresholds must start with a base step (value None)")
        if self.alerts and self.runbook is None:
            out.append("has alerts but no runbook")
        if self.alerts and not self.rule_file:
            out.append("has alerts but no rule_file to put them in")
        if not self.alert_names() and not self.no_alert.strip():
            out.append("has neither an alert nor a stated reason why not (no_alert)")
        if self.alert_names() and self.no_alert:
            out.append("has alerts and a no_alert reason: which is it?")
        return [f"observable {self.name or '?'}: {p}" for p in out]


# --- field overrides (data, rendered as Grafana writes them) ----------------------------
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


def app_labels(cfg: Config) -> dict[str, str]:
    """The labels of the app's series in promtool cases: its job and its one target."""
    return {"job": cfg.app_job, "instance": cfg.prometheus.app_target}


def per_instance(cfg: Config) -> Scope:
    """The alert scope of a per-process signal: the app's series, by job and instance."""
    return rule(cfg.app_selector, by=("job", "instance"))
