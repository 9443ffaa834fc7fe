"""``docs/runbooks.md`` and the runbook link and first lines every alert carries.

An alert's runbook is its observable's: meaning, impact, diagnosis queries and
mitigation, written once. ``runbook_url`` points at the alert's entry under
``alerting.docs_base_url`` when the config says where the docs are browsable;
otherwise at the alert's panel in Grafana (``alerting.grafana_url``), which
resolves wherever the stack runs. Either way the alert's ``runbook``
annotation carries the first lines, so the page is useful offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from ..config import Config
from ..grafana.artifacts import layouts
from ..grafana.layout import stable_id
from ..observables import Observables, collect
from ..observables.model import Observable
from ..stack.prometheus.rules import Alert, RunbookRef, runbook_anchor

PATH = "docs/runbooks.md"
FENCE = {"promql": "promql", "logql": "logql", "sql": "sql", "shell": "sh"}


def placement(cfg: Config, name: str) -> tuple[str, int] | None:
    """(dashboard uid, panel id) of the first dashboard that draws the observable ``name``."""
    for layout in layouts(cfg):
        if name in layout.placed:
            return layout.uid, stable_id(layout.uid, name)
    return None


def panel_url(cfg: Config, name: str) -> str | None:
    where = placement(cfg, name)
    if where is None:
        return None
    return f"{cfg.alerting.grafana_url.rstrip('/')}/d/{where[0]}?viewPanel={where[1]}"


def runbook_refs(cfg: Config) -> dict[str, RunbookRef]:
    """Alert name -> its runbook's link and first lines (only alerts whose observable has a runbook)."""
    observables = collect(cfg)
    refs = {}
    for alert in {a for o in observables for a in o.alert_names()}:
        owner = observables.owner_of(alert)
        if owner is None or owner.runbook is None:
            continue
        base = cfg.alerting.docs_base_url.rstrip("/")
        url = f"{base}/runbooks.md#{runbook_anchor(alert)}" if base else panel_url(cfg, owner.name)
        if url:
            refs[alert] = RunbookRef(url, owner.runbook.first_lines())
    return refs


def _rules(alert: str, rules: list[Alert]) -> Iterator[str]:
    for rule in rules:
        extra = ", ".join(f"{k}={v}" for k, v in rule.labels.items())
        wait = f", for {rule.for_}" if rule.for_ else ", fires at once"
        yield f"- **{rule.severity}**{wait}{f' ({extra})' if extra else ''}: `{' '.join(rule.expr.split())}`"


def entry(cfg: Config, alert: str, owner: Observable, rules: list[Alert]) -> list[str]:
    book = owner.runbook
    assert book is not None
    where = placement(cfg, owner.name)
    panel = (f"[{owner.title}](dashboards/{where[0]}.md#{quote(owner.name)})" if where else owner.title)
    lines = [f"## {alert}", "", f"Panel: {panel}. Summary: `{rules[0].summary}`" if rules else f"Panel: {panel}.", ""]
    lines += [*_rules(alert, rules), ""] if rules else []
    lines += [f"**Meaning.** {book.meaning}", "", f"**Impact.** {book.impact}", "", "**Diagnosis.**", ""]
    for step in book.diagnosis:
        lines += [f"- {step.what}:", "", f"  ```{FENCE[step.language]}", f"  {step.query}", "  ```", ""]
    lines += [f"**Mitigation.** {book.mitigation}", ""]
    return lines


def render(cfg: Config, rule_alerts: dict[str, list[Alert]], header: str) -> bytes:
    """``rule_alerts``: every alert rule by name, as written into ``prometheus/rules``."""
    observables: Observables = collect(cfg)
    lines = [f"<!-- {header} -->", "", "# Runbooks", "",
             "One entry per alert, written once in the observable that shows the signal "
             "(`dashboards/observables/`). Severity `critical` pages (Alertmanager receiver `pager`), "
             "`warning` opens a ticket (`ticket`); a critical alert inhibits the warning of the same alert and job.",
             ""]
    for alert in sorted(rule_alerts):
        owner = observables.owner_of(alert)
        if owner is not None and owner.runbook is not None:
            lines += entry(cfg, alert, owner, rule_alerts[alert])
    return "\n".join(lines).encode()
