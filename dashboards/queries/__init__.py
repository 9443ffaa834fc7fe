"""Queries as pure functions of the config and a scope: ``def request_rate(cfg, scope=PANEL) -> str``.

One function serves the panel and the rule that reads the same signal. The
scope says where the query runs: on a dashboard (``PANEL``: the ``$job`` /
``$instance`` variables, Grafana's ``$__rate_interval``, the function's own
grouping, 0 instead of "No data" for lazy families) or in a rule
(``rule(...)``: the config's job selector, a fixed window, exactly the
grouping the alert's labels need). They are tested and validated without
building a panel; one module per area holds its queries.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE = "$__rate_interval"
"""The range of every panel's rate(): Grafana keeps it >= 4 scrape intervals."""
RULE_WINDOW = "5m"


@dataclass(frozen=True, slots=True)
class Scope:
    matchers: tuple[str, ...]
    window: str
    by: tuple[str, ...] | None = None
    """None: the query's own grouping (panels); a tuple: group by exactly these labels (rules)."""
    panel: bool = True

    def sel(self, *matchers: str) -> str:
        return "{" + ",".join((*self.matchers, *matchers)) + "}"

    def group(self, *own: str) -> str:
        labels = own if self.by is None else self.by
        return f" by ({', '.join(labels)})" if labels else ""

    def or_zero(self, expr: str) -> str:
        """Lazy families show 0 on a panel rather than "No data" before the first event; rules compare the
        real series (an absent one must stay absent, not become a 0 without labels)."""
        return f"({expr}) or on() vector(0)" if self.panel else expr


PANEL = Scope(('job=~"$job"', 'instance=~"$instance"'), RATE)
"""Every Prometheus panel filters on the ``job``/``instance`` variables."""
RANGE = "$__range"
TOTAL = Scope(PANEL.matchers, RANGE)
"""A stat's instant query over the whole dashboard range: a total, or a ratio, of what the user is looking at
(never just the last minute)."""


def rule(selector: str, *, by: tuple[str, ...] = ("job",), window: str = RULE_WINDOW) -> Scope:
    """A rule's scope: the config's job selector (``job="fastapi-app"``), a fixed window, its grouping."""
    return Scope((selector,), window, by, panel=False)


def prom_selector(*matchers: str) -> str:
    return PANEL.sel(*matchers)


def label_values(selector_metric: str, label: str) -> str:
    return f"label_values({selector_metric}, {label})"


def or_zero(expr: str) -> str:
    return PANEL.or_zero(expr)


def _sum(scope: Scope, fn: str, series: str, matchers: tuple[str, ...], by: tuple[str, ...]) -> str:
    grouping = scope.group(*by)
    inner = f"{fn}({series}{scope.sel(*matchers)}[{scope.window}])"
    return f"sum{grouping} ({inner})" if grouping else f"sum({inner})"


def rate(scope: Scope, series: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    return _sum(scope, "rate", series, matchers, by)


def increase(scope: Scope, series: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    return _sum(scope, "increase", series, matchers, by)


def quantile(scope: Scope, q: float, bucket: str, *by: str, matchers: tuple[str, ...] = ()) -> str:
    """``histogram_quantile`` over ``bucket``'s rate; ``le`` is always kept beside the grouping."""
    labels = ", ".join(("le", *(by if scope.by is None else scope.by)))
    return f"histogram_quantile({q}, sum by ({labels}) (rate({bucket}{scope.sel(*matchers)}[{scope.window}])))"


def aggregate(scope: Scope, op: str, series: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    """``op`` (sum, max, min) over a gauge."""
    grouping = scope.group(*by)
    return f"{op}{grouping} ({series}{scope.sel(*matchers)})" if grouping else f"{op}({series}{scope.sel(*matchers)})"
