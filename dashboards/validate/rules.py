"""The build's gate for rules: every expression parsed and checked against the catalogs before anything is written.

Reuses the dashboards' PromQL checker (``dashboards.validate.promql``): every
selector names a series of the app or Keycloak catalog (or a recording defined
earlier, whose labels are those its expression keeps), matchers and ``by``
labels exist, counters are read only through ``rate``/``increase``. Rules add:
every ``job`` matcher names a scraped job and the job that exports the series;
recording names follow ``level:metric:operations``; alerts carry a known
severity, summary, description and runbook link; every alert has a case where
it fires and one where it stays silent; the latency SLI's ``le`` is a real
bucket boundary (otherwise it selects nothing and the SLO can never burn).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import promql_parser as pp

from fastapi_lookout import metrics

from ..catalogs import MetricCatalog, Series
from ..catalogs import app as app_catalog
from ..catalogs import keycloak as keycloak_catalog
from ..config import Config
from ..stack.prometheus.rules import (
    SEVERITIES,
    Alert,
    RuleFile,
    parse_duration,
    rule_for,
    template_problems,
)
from ..stack.prometheus.scrape import scrape_jobs
from . import promql

RECORDING_NAME: Final = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
PROMETHEUS_SERIES: Final = MetricCatalog(
    {"up": Series("up", frozenset(), False, "up", "gauge", "prometheus")}, {}
)
"""Series Prometheus writes itself for every target."""
REQUIRED_ANNOTATIONS: Final = ("summary", "description", "runbook", "runbook_url")


def catalog() -> MetricCatalog:
    return app_catalog.catalog() | keycloak_catalog.catalog() | PROMETHEUS_SERIES


def selectors(node: pp.Expr) -> Iterator[pp.VectorSelector]:
    if isinstance(node, pp.VectorSelector):
        yield node
    elif isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, pp.AggregateExpr):
        yield from selectors(node.expr)
        if isinstance(node.param, pp.Expr):
            yield from selectors(node.param)
    elif isinstance(node, pp.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield from selectors(node.expr)


def _job_problems(ast: pp.Expr, cat: MetricCatalog, cfg: Config) -> list[str]:
    scraped = {job.name for job in scrape_jobs(cfg)}
    exporter = {"app": cfg.app_job, "keycloak": cfg.keycloak_job}
    problems = []
    for sel in selectors(ast):
        jobs = [m.value for m in sel.matchers.matchers if m.name == "job" and str(m.op) == "MatchOp.Equal"]
        alternatives = [m.value.split("|") for m in sel.matchers.matchers
                        if m.name == "job" and str(m.op) == "MatchOp.Re"]
        for job in jobs + [name for names in alternatives for name in names]:
            if job not in scraped:
                problems.append(f"job {job!r} is not scraped by prometheus.yml (jobs: {', '.join(sorted(scraped))})")
        series = cat.series.get(sel.name or "")
        expected = exporter.get(series.source) if series is not None else None
        if expected is not None and jobs != [expected]:
            problems.append(f"{sel.name} is exported by job {expected!r}: select it with job=\"{expected}\"")
    return problems


def _expression(expr: str, cat: MetricCatalog, cfg: Config) -> tuple[frozenset[str] | None, list[str]]:
    """Labels of the result and problems, like the dashboards' checker (ranges are the rule's own)."""
    try:
        ast = pp.parse(expr)
    except (ValueError, RuntimeError) as exc:
        return None, [f"PromQL does not parse: {exc}"]
    problems: list[str] = []
    labels = promql._Walker(cat, problems).labels(ast, ctx=promql.VALUE)
    return labels, problems + _job_problems(ast, cat, cfg)


def rule_problems(files: Sequence[RuleFile], cfg: Config) -> list[str]:
    base = catalog()
    recorded: dict[str, Series] = {}
    problems: list[str] = []
    names: dict[str, str] = {}

    def where(f: RuleFile, name: str) -> str:
        return f"prometheus/rules/{f.stem}.yml {name}"

    # recordings first, in file order: an alert anywhere may read any recording
    for f in files:
        for rec in f.recordings():
            at = where(f, rec.record)
            if not RECORDING_NAME.match(rec.record):
                problems.append(f"{at}: recording name is not level:metric:operations")
            if rec.record in base.series:
                problems.append(f"{at}: recording shadows a catalog series")
            labels, found = _expression(rec.expr, MetricCatalog({**base.series, **recorded}, base.families), cfg)
            problems += [f"{at}: {p}" for p in found]
            if labels is None and not found:
                problems.append(f"{at}: cannot tell which labels the expression keeps")
            key = f"{rec.record}{sorted(rec.labels.items())}"
            if key in names:
                problems.append(f"{at}: recorded twice (also in {names[key]})")
            names[key] = at
            previous = recorded.get(rec.record)
            keep = (labels or frozenset()) | frozenset(rec.labels) | (previous.labels if previous else frozenset())
            recorded[rec.record] = Series(rec.record, keep, False, rec.record, "recording", "recording")
    full = MetricCatalog({**base.series, **recorded}, base.families)
    for f in files:
        for alert in f.alerts():
            at = where(f, alert.name)
            problems += [f"{at}: {p}" for p in _alert_problems(alert, full, cfg)]
        problems += [f"prometheus/tests/{f.stem}.yml: {p}" for p in _case_problems(f)]
    problems += _slo_problems(cfg)
    return problems


def _alert_problems(alert: Alert, cat: MetricCatalog, cfg: Config) -> list[str]:
    _, problems = _expression(alert.expr, cat, cfg)
    if alert.severity not in SEVERITIES:
        problems.append(f"severity {alert.severity!r} is not one of {', '.join(SEVERITIES)}")
    annotations = alert.all_annotations()
    problems += [f"annotation {k!r} is missing or empty" for k in REQUIRED_ANNOTATIONS if not annotations.get(k)]
    for key, text in annotations.items():
        problems += [f"annotation {key}: {p}" for p in template_problems(text)]
    if alert.for_:
        try:
            parse_duration(alert.for_)
        except ValueError as exc:
            problems.append(f"for: {exc}")
    return problems


def _case_problems(f: RuleFile) -> list[str]:
    problems = []
    alerts = f.alerts()
    for name in sorted({a.name for a in alerts}):
        mine = [c for c in f.cases if c.alert == name]
        if not any(c.fires for c in mine):
            problems.append(f"alert {name} has no case where it fires")
        if all(c.fires for c in mine):
            problems.append(f"alert {name} has no case where it must stay silent")
    for case in f.cases:
        if case.alert not in {a.name for a in alerts}:
            problems.append(f"case {case.name!r} names alert {case.alert!r}, which this file does not define")
            continue
        for fired in case.fired:
            try:
                rule_for(alerts, case.alert, fired.labels)
            except ValueError as exc:
                problems.append(f"case {case.name!r}: {exc}")
    return problems


def _slo_problems(cfg: Config) -> list[str]:
    threshold = cfg.slo.latency_p95_seconds
    if threshold not in metrics.LATENCY_BUCKETS:
        bounds = ", ".join(f"{b:g}" for b in metrics.LATENCY_BUCKETS)
        return [f"slo.latency_p95_seconds {threshold:g} is not a bucket boundary of http_request_duration_seconds "
                f"({bounds}): the latency SLI would select no series"]
    return []


def problems_or_error(build: Callable[[Config], Sequence[RuleFile]], cfg: Config) -> list[str]:
    """Run a rule-file builder; a spec it refuses (``ValueError``) is a build problem, not a crash."""
    try:
        files = build(cfg)
    except ValueError as exc:
        return [f"prometheus rules: {exc}"]
    return rule_problems(files, cfg)
