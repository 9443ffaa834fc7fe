"""Queries as pure functions of the config: ``def request_rate(cfg: Config) -> str``.

They are tested and validated without building a panel. Shared helpers live
here; one module per dashboard holds its queries.
"""

from __future__ import annotations

RATE = "$__rate_interval"
"""The only range PromQL panels use: Grafana keeps it >= 4 scrape intervals."""


def prom_selector(*matchers: str) -> str:
    """Every Prometheus panel filters on the ``job``/``instance`` variables, plus its own matchers."""
    return "{" + ",".join(('job=~"$job"', 'instance=~"$instance"', *matchers)) + "}"


def label_values(selector_metric: str, label: str) -> str:
    return f"label_values({selector_metric}, {label})"


def or_zero(expr: str) -> str:
    """For lazy families: show 0 rather than "No data" before the first event."""
    return f"({expr}) or on() vector(0)"


def quantile(q: float, bucket_selector: str, *by: str) -> str:
    labels = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({labels}) (rate({bucket_selector}[{RATE}])))"
