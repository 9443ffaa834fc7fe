"""``docs/dashboards/<uid>.md``: what each panel asks, how it is computed, how to read it, what pages on it."""

from __future__ import annotations

from ..config import Config
from ..grafana.layout import Layout
from ..observables import collect
from ..observables.model import NEUTRAL, Observable, Thresholds
from ..stack.prometheus.rules import runbook_anchor

LANGUAGE = {"prometheus": "promql", "loki": "logql", "grafana-postgresql-datasource": "sql"}


def reading(thresholds: Thresholds) -> str:
    """The colour steps in words: "green below 0.005, red from 0.005"."""
    if thresholds == NEUTRAL:
        return "No value is good or bad in itself: read it against its own history."
    steps = thresholds.steps
    parts = [f"{steps[0].color} below {steps[1].value:g}"]
    parts += [f"{s.color} from {s.value:g}" for s in steps[1:]]
    return "Colours: " + ", ".join(parts) + "."


def panel(obs: Observable) -> list[str]:
    lines = [f'### {obs.title} <a id="{obs.name}"></a>', "", obs.description, "",
             f"- unit: `{obs.unit}`; observable `{obs.name}`", f"- {reading(obs.thresholds)}"]
    if obs.alert_names():
        alerts = ", ".join(f"[{a}](../runbooks.md#{runbook_anchor(a)})" for a in obs.alert_names())
        lines.append(f"- alerts: {alerts}")
    else:
        lines.append(f"- no alert: {obs.no_alert}")
    language = LANGUAGE[str(obs.datasource)]
    lines += ["", f"```{language}"]
    for q in obs.queries:
        if q.legend and language != "sql":
            lines.append(f"# {q.legend}")
        lines.append(q.expr)
    lines += ["```", ""]
    return lines


def render(cfg: Config, layout: Layout, header: str) -> bytes:
    observables = collect(cfg).enabled
    lines = [f"<!-- {header} -->", "", f"# {layout.title} (`{layout.uid}`)", "", layout.describe(cfg), "",
             f"Open it at `/d/{layout.uid}`. Every panel below, row by row; queries as the dashboard sends them "
             "(Grafana replaces the `$variables`).", ""]
    for row in layout.rows:
        present = [observables[c.name] for c in row.cells if c.name in observables]
        if not present:
            continue
        lines += [f"## {row.title}", ""]
        for obs in present:
            lines += panel(obs)
    return "\n".join(lines).encode()
