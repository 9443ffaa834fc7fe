"""The app's metrics as the validators see them, derived from ``fastapi_lookout.metrics``.

Names and labels come from ``exposed_series()``; the kind of each series from
``CATALOG``. Queries get names through :func:`series_name`, so nothing here or
in a dashboard copies a metric name out of the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client.metrics import MetricWrapperBase

from fastapi_lookout import metrics

from . import MetricCatalog, Series


def build(specs: Iterable[metrics.MetricSpec], exposed: Mapping[str, tuple[str, ...]]) -> MetricCatalog:
    series: dict[str, Series] = {}
    families: dict[str, str] = {}
    for spec in specs:
        if spec.kind == "histogram":
            families[spec.name] = spec.kind
        for name in spec.series():
            if name not in exposed:
                continue  # a series the app does not expose (kept out so a mismatch fails)
            monotonic = spec.kind in ("counter", "histogram")
            series[name] = Series(name, frozenset(exposed[name]), monotonic, spec.name, spec.kind, "app")
    return MetricCatalog(series, families)


UP: Final = Series("up", frozenset({"job", "instance"}), False, "up", "gauge", "prometheus")
"""Prometheus' own series per scrape target: 1 when the scrape succeeded."""


def catalog() -> MetricCatalog:
    built = build(metrics.CATALOG, metrics.exposed_series())
    return MetricCatalog({**built.series, UP.name: UP}, built.families)


def _spec(metric: MetricWrapperBase) -> metrics.MetricSpec:
    family = metric.describe()[0].name
    for spec in metrics.CATALOG:
        if spec.name == family:
            return spec
    raise LookupError(f"metric {family!r} is not in fastapi_lookout.metrics.CATALOG")


def series_name(metric: MetricWrapperBase, suffix: str = "") -> str:
    """The exposed series name of a catalog metric: counters get ``_total``, histograms the suffix."""
    spec = _spec(metric)
    names = list(spec.series())
    if spec.kind == "histogram":
        if suffix not in ("_bucket", "_sum", "_count"):
            raise ValueError(f"histogram {spec.name!r} needs a suffix (_bucket, _sum or _count)")
        return f"{spec.name}{suffix}"
    if suffix:
        raise ValueError(f"{spec.kind} {spec.name!r} takes no suffix")
    return names[0]


UNOBSERVED: Final[dict[str, str]] = {}
"""Families read by no observable on purpose, each with the reason (the build names any other)."""
