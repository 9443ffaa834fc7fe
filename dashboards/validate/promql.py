"""PromQL checks with a real parser (``promql_parser``), against the metric catalogs.

Grafana variables are replaced by sentinels first (``$__rate_interval`` -> ``5m``,
``$job`` -> a string), then the AST is walked: every selector must name a
catalog series and use only its labels; ``by``/``without``/``on``/``ignoring``
labels must exist beneath them; counters are read only through
``rate``/``increase``/``irate``; ranges come from ``$__rate_interval``; a
histogram or summary is never queried by its bare family name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import promql_parser as pp

from ..catalogs import MetricCatalog
from .variables import PROM_LABEL_VALUES, substitute

ALWAYS_ALLOWED = frozenset({"job", "instance", "__name__"})
COUNTER_FUNCTIONS = frozenset({"rate", "increase", "irate"})
RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[([^\[\]]*)\]")
VALUE, RATE_ARG, ANY = "value", "rate-argument", "any"
"""Where a selector sits: read as a value, inside rate()/increase()/irate(), or in a variable query."""


def _ranges_outside_strings(query: str) -> Iterator[str]:
    blanked = _STRING.sub(lambda m: '""', query)
    for match in _RANGE.finditer(blanked):
        yield match.group(1).strip()


def check(query: str, catalog: MetricCatalog, *, instant: bool = False) -> list[str]:
    """Problems with one PromQL query (empty when it is fine). An ``instant`` target may also read the whole
    dashboard range (``[$__range]``): a total or a ratio over what the user is looking at."""
    allowed = {RATE_INTERVAL, "${__rate_interval}", *((RANGE, "${__range}") if instant else ())}
    problems = [
        f"range [{rng}] must be [{RATE_INTERVAL}] (Grafana keeps it >= 4 scrape intervals)"
        + (f", or [{RANGE}] in an instant query" if not instant else f" or [{RANGE}]")
        for rng in _ranges_outside_strings(query)
        if rng not in allowed
    ]
    try:
        ast = pp.parse(substitute(query))
    except (ValueError, RuntimeError) as exc:
        return [*problems, f"PromQL does not parse: {exc}"]
    _Walker(catalog, problems).labels(ast, ctx=VALUE)
    return problems


def series_read(query: str, catalog: MetricCatalog) -> set[str]:
    """The series names a query (or a ``label_values`` variable query) selects; empty if it does not parse."""
    match = PROM_LABEL_VALUES.match(query)
    try:
        ast = pp.parse(substitute(match.group(1) if match else query))
    except (ValueError, RuntimeError):
        return set()
    walker = _Walker(catalog, [])
    walker.labels(ast, ctx=ANY)
    return walker.names


def check_label_values(query: str, catalog: MetricCatalog) -> list[str]:
    """A variable's ``label_values(selector, label)``: the selector must be valid and carry the label."""
    match = PROM_LABEL_VALUES.match(query)
    if not match:
        return [f"variable query {query!r} is not label_values(<selector>, <label>)"]
    selector, label = match.group(1), match.group(2)
    try:
        ast = pp.parse(substitute(selector))
    except (ValueError, RuntimeError) as exc:
        return [f"PromQL does not parse: {exc}"]
    problems: list[str] = []
    available = _Walker(catalog, problems).labels(ast, ctx=ANY)
    if available is not None and label not in available:
        problems.append(f"label {label!r} does not exist on {selector.strip()}")
    return problems


class _Walker:
    """Computes the label set each sub-expression carries, recording problems on the way."""

    def __init__(self, catalog: MetricCatalog, problems: list[str]) -> None:
        self.catalog = catalog
        self.problems = problems
        self.names: set[str] = set()

    def labels(self, node: pp.Expr, ctx: str) -> frozenset[str] | None:
        """Labels of the result; ``None`` means "unknown" (no further label checks)."""
        if isinstance(node, pp.VectorSelector):
            return self._selector(node, ctx)
        if isinstance(node, pp.MatrixSelector):
            return self._selector(node.vector_selector, ctx)
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        if isinstance(node, pp.ParenExpr | pp.UnaryExpr):
            return self.labels(node.expr, ctx)
        if isinstance(node, pp.SubqueryExpr):
            self.problems.append("subqueries are not used in dashboards; use a recording rule")
            return self.labels(node.expr, ctx=VALUE)
        return frozenset()  # number and string literals

    def _selector(self, node: pp.VectorSelector, ctx: str) -> frozenset[str] | None:
        name = node.name
        if name is None:
            self.problems.append(f"selector {node} has no metric name")
            return None
        self.names.add(name)
        if name in self.catalog.families:
            self.problems.append(
                f"{name!r} is a {self.catalog.families[name]} family queried by its bare name, which "
                f"returns nothing; use {name}_bucket, {name}_count or {name}_sum"
            )
            return None
        series = self.catalog.series.get(name)
        if series is None:
            self.problems.append(f"unknown metric {name!r} (not in the app or Keycloak catalog)")
            return None
        available = series.labels | ALWAYS_ALLOWED
        for matcher in node.matchers.matchers:
            if matcher.name not in available:
                self.problems.append(
                    f"label {matcher.name!r} does not exist on {name} (labels: {', '.join(sorted(series.labels))})"
                )
        if series.monotonic and ctx == VALUE:
            self.problems.append(f"counter {name!r} must be read through rate(), increase() or irate()")
        if not series.monotonic and ctx == RATE_ARG:
            self.problems.append(f"{name!r} is a {series.family_type}, not a counter: rate() of it is meaningless")
        return available - {"__name__"}

    def _call(self, node: pp.Call) -> frozenset[str] | None:
        fn = node.func.name
        counter_fn = fn in COUNTER_FUNCTIONS
        arg_labels = [self.labels(arg, ctx=RATE_ARG if counter_fn else VALUE) for arg in node.args]
        if fn == "histogram_quantile":
            inner = arg_labels[1]
            if inner is not None and "le" not in inner:
                self.problems.append("histogram_quantile() needs the 'le' label kept by the aggregation beneath it")
            return None if inner is None else inner - {"le"}
        if fn == "label_replace":
            inner = arg_labels[0]
            dst = _unparen(node.args[1])  # the type checker guarantees a string literal, maybe parenthesised
            return None if inner is None else inner | {dst.val}
        if any(lab is None for lab in arg_labels):
            return None
        return frozenset().union(*arg_labels)  # a literal argument adds no label

    def _aggregate(self, node: pp.AggregateExpr) -> frozenset[str] | None:
        inner = self.labels(node.expr, ctx=VALUE)
        if node.param is not None:
            self.labels(node.param, ctx=VALUE)
        modifier = node.modifier
        grouping = list(modifier.labels) if modifier is not None else []
        if inner is not None:
            for label in grouping:
                if label not in inner:
                    self.problems.append(
                        f"{node.op!s} by/without label {label!r} does not exist on the series beneath it "
                        f"(available: {', '.join(sorted(inner)) or 'none'})"
                    )
        op = str(node.op)
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if modifier is None:
            return frozenset()
        if modifier.type == pp.AggModifierType.By:
            return frozenset(grouping)
        return None if inner is None else inner - set(grouping)

    def _binary(self, node: pp.BinaryExpr) -> frozenset[str] | None:
        lhs = self.labels(node.lhs, ctx=VALUE)
        rhs = self.labels(node.rhs, ctx=VALUE)
        modifier = node.modifier
        op = str(node.op)
        matching = modifier.matching if modifier is not None else None
        if matching is not None and lhs is not None and rhs is not None:
            for label in matching.labels:
                if label not in lhs | rhs:
                    self.problems.append(f"on/ignoring label {label!r} exists on neither side of '{op}'")
        if _is_literal(node.lhs):
            return rhs  # a number on the right needs no case: the parser allows no or/on() with it, so lhs below
        if op == "or":
            return None if lhs is None or rhs is None else lhs | rhs
        if matching is not None and matching.type == pp.LabelModifierType.Include and op not in ("and", "unless"):
            extra = set(modifier.group_labels or []) if modifier is not None else set()
            return frozenset(matching.labels) | extra
        return lhs


def _unparen(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _is_literal(node: object) -> bool:
    return isinstance(_unparen(node), pp.NumberLiteral | pp.StringLiteral)
