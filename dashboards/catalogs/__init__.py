"""Machine-readable catalogs the validators check queries against.

A catalog maps every *series name* a target really exposes to its labels and
whether it is monotonic (a counter, or a histogram/summary ``_bucket``/``_count``/
``_sum``), so the PromQL checker can reject unknown names, unknown labels,
counters read without ``rate()`` and histogram families queried by bare name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    labels: frozenset[str]
    monotonic: bool
    family: str
    family_type: str  # counter | gauge | histogram | summary
    source: str  # which catalog: "app" | "keycloak"


@dataclass(frozen=True, slots=True)
class MetricCatalog:
    series: Mapping[str, Series]
    families: Mapping[str, str]
    """Histogram/summary family name -> type; queried bare they return nothing."""

    def __or__(self, other: MetricCatalog) -> MetricCatalog:
        return MetricCatalog({**self.series, **other.series}, {**self.families, **other.families})


def expand(family: str, kind: str, labels: Iterable[str], source: str) -> dict[str, Series]:
    """Series of one family as the Prometheus text format exposes them."""
    lab = frozenset(labels)
    if kind in ("counter", "gauge"):
        return {family: Series(family, lab, kind == "counter", family, kind, source)}
    out = {
        f"{family}_count": Series(f"{family}_count", lab, True, family, kind, source),
        f"{family}_sum": Series(f"{family}_sum", lab, True, family, kind, source),
    }
    if kind == "histogram":
        out[f"{family}_bucket"] = Series(f"{family}_bucket", lab | {"le"}, True, family, kind, source)
    return out
