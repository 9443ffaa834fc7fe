"""What the build requires of the observables as a whole: complete definitions, every catalog metric and
log field observed (or deliberately not, with a reason), every alert shown on a panel and given a runbook,
every placement resolvable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..catalogs import MetricCatalog
from ..config import DsType
from ..observables import Observables
from ..observables.model import Observable
from . import promql


def _texts(obs: Observable) -> list[str]:
    return [*(q.expr for q in obs.queries), *(a.expr for a in obs.alerts)]


def metrics_read(observables: Iterable[Observable], catalog: MetricCatalog) -> set[str]:
    """Catalog families some observable reads, in a panel query or an alert."""
    families = set()
    for obs in observables:
        if obs.datasource is not DsType.PROMETHEUS:
            continue
        for text in _texts(obs):
            for name in promql.series_read(text, catalog):
                series = catalog.series.get(name)
                if series is not None:
                    families.add(series.family)
    return families


def unobserved_metrics(observables: Iterable[Observable], catalog: MetricCatalog,
                       deliberate: Mapping[str, str]) -> list[str]:
    """Families no observable reads and no reason excuses, and stale excuses. Every defined observable counts,
    whatever the features: a family of a switched-off feature is still observed where it exists."""
    read = metrics_read(observables, catalog)
    families = {s.family for s in catalog.series.values()}
    problems = [f"metric {f} is read by no observable: add one, or list it as deliberately unobserved with a "
                f"reason" for f in sorted(families - read - set(deliberate))]
    problems += [f"metric {f} is listed as unobserved but observable(s) read it: drop it from the list"
                 for f in sorted(read & set(deliberate))]
    problems += [f"metric {f} is listed as unobserved but is not in the catalog" for f in sorted(set(deliberate)
                                                                                                    - families)]
    return problems


def fields_read(observables: Iterable[Observable], fields: Iterable[str]) -> set[str]:
    texts = [t for o in observables if o.datasource is DsType.LOKI for t in _texts(o)]
    return {f for f in fields if any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", t) for t in texts)}


def unobserved_fields(observables: Iterable[Observable], fields: Iterable[str],
                      deliberate: Mapping[str, str]) -> list[str]:
    fields = set(fields)
    read = fields_read(observables, fields)
    problems = [f"log field {f} is read by no observable: add one, or list it as deliberately unobserved with a "
                f"reason" for f in sorted(fields - read - set(deliberate))]
    problems += [f"log field {f} is listed as unobserved but observable(s) read it: drop it from the list"
                 for f in sorted(read & set(deliberate))]
    return problems


def alert_links(observables: Observables, alerts: Iterable[str], placed: set[str]) -> list[str]:
    """Every alert belongs to an observable drawn on a dashboard, and has a runbook."""
    problems = []
    for alert in sorted(set(alerts)):
        shown = [o for o in observables if alert in o.alert_names() and o.name in placed]
        if not shown:
            problems.append(f"alert {alert} is shown by no panel: define it in (or reference it from) an "
                            "observable placed on a dashboard")
        owner = observables.owner_of(alert)
        if owner is None or owner.runbook is None:
            problems.append(f"alert {alert} has no runbook")
    return problems


def unplaced(observables: Observables, placed: set[str]) -> list[str]:
    return [f"observable {name} is placed on no dashboard" for name in sorted(set(observables.enabled) - placed)]
