"""The service's requests (RED), its errors and database time, its build, and whether it is scraped at all."""

from __future__ import annotations

from ..config import Config, DsType
from ..queries import TOTAL, rule
from ..queries import fastapi as q
from ..stack.prometheus import recording
from ..stack.prometheus.rules import Alert, Case, Fired, series
from ..stack.prometheus.scrape import scrape_jobs
from ..stack.prometheus.slo import number, percent, slo_alert_names
from . import model as o
from .model import Diagnosis, Observable, Query, Runbook, Thresholds

PROM = DsType.PROMETHEUS
TRAFFIC = "Traffic and latency are what the SLO alerts (burn rates) watch; a panel of its own would page twice."



def _pct(cfg: Config) -> str:
    return f"p{round(cfg.slo.latency_quantile * 100)}"


def error_ratio(cfg: Config) -> Observable:
    a = cfg.alerting
    guard = q.request_count(cfg, rule(cfg.app_selector))
    labels = o.app_labels(cfg)
    ep = {**labels, "method": "GET", "endpoint": "/api/authors"}
    ok, err = {**ep, "status_code": "200"}, {**ep, "status_code": "500"}
    name = "http_requests_total"
    warn = {"job": cfg.app_job, "severity": "warning"}
    return Observable(
        name="http.error_ratio",
        title="Error ratio (5xx)",
        description=(f"sum(5xx) / sum(all) over the dashboard's time range. Red above the error budget of the "
                     f"{cfg.slo.availability * 100:g}% availability objective."),
        unit="percentunit", datasource=PROM, queries=(Query(q.error_ratio(cfg, TOTAL), instant=True),),
        style=o.stat(),
        thresholds=Thresholds.of("green", (round(1 - cfg.slo.availability, 6), "red")),
        alerts=(Alert(
            name="AppHighErrorRatio",
            expr=(f"{recording.ERROR_RATIO}{{{cfg.app_selector}}} > {number(a.error_ratio)}\n"
                  # on (job): the recorded side may carry labels the raw side lacks (a ruler's external labels)
                  f"and on (job) {guard} >= {a.error_ratio_min_requests}"),
            for_="5m",
            severity="warning",
            summary="{{ $labels.job }} answers {{ $value | humanizePercentage }} of requests with a 5xx",
            description=(f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.job }}}}'s requests got a 5xx over "
                         f"the last 5m (threshold {percent(a.error_ratio)}, counted only with at least "
                         f"{a.error_ratio_min_requests} requests in 5m). Both sides of the ratio are summed by job."),
        ),),
        cases=(
            Case("AppHighErrorRatio", "10% of requests are 5xx",
                 (series(name, ok, "0+900x20"), series(name, err, "0+100x20")), "15m", (Fired(warn, "10%"),)),
            Case("AppHighErrorRatio", "a single 5xx a minute among 1000 requests",
                 (series(name, ok, "0+999x20"), series(name, err, "0+1x20")), "15m"),
            Case("AppHighErrorRatio", "half of a trickle of 2 requests/min fails (below the minimum traffic)",
                 (series(name, ok, "0+1x20"), series(name, err, "0+1x20")), "15m"),
        ),
        runbook=Runbook(
            meaning="A share of the service's requests fail with a server error, beyond the alert threshold.",
            impact="Users get 500s: writes may be lost on their side, reads fail; the error budget burns.",
            diagnosis=(
                Diagnosis("which endpoints and statuses fail", q.rate_by_endpoint(cfg, rule(
                    cfg.app_selector + ',status_code=~"5.."', by=("endpoint", "method")))),
                Diagnosis("the stack traces", f'{{service="{cfg.app_service}", level=~"error|critical"}} | json',
                          "logql"),
            ),
            mitigation=("Look at the error logs of the failing endpoint first: a database outage shows as 500 "
                        "on /api/authors and 503 on /health; roll back a deploy that started it."),
        ),
        rule_file="app-alerts",
    )


def error_ratio_over_time(cfg: Config) -> Observable:
    return Observable(
        name="http.error_ratio_over_time",
        title="Error ratio (5xx) over time",
        description="sum(5xx)/sum(all) over time against the error budget (dashed).",
        unit="percentunit", datasource=PROM, queries=(Query(q.error_ratio(cfg), legend="5xx ratio"),),
        style=o.timeseries(), thresholds=Thresholds.of("green", (round(1 - cfg.slo.availability, 6), "red")),
        alert_refs=slo_alert_names(cfg, "availability"),
        runbook=Runbook(
            meaning=(f"5xx answers burn the availability error budget ({cfg.slo.availability * 100:g}% over "
                     f"{cfg.alerting.slo_period_days} days) faster than it can last."),
            impact="Users see failures now; at this rate the objective is missed before the period ends.",
            diagnosis=(
                Diagnosis("which endpoints fail", q.rate_by_endpoint(cfg, rule(
                    cfg.app_selector + ',status_code=~"5.."', by=("endpoint", "method")))),
                Diagnosis("their errors, request_id included",
                          f'{{service="{cfg.app_service}", level=~"error|critical"}} | json', "logql"),
            ),
            mitigation=("Find the failing endpoint on the error-ratio panels, then its error logs (request_id "
                        "links both). A database outage shows as 500 on /api and 503 on /health."),
        ),
    )


def latency(cfg: Config) -> Observable:
    slo = cfg.slo
    return Observable(
        name="http.latency",
        title="Latency p50 / p95 / p99",
        description=(f"Quantiles over all endpoints from the request-duration histogram. The objective is "
                     f"{_pct(cfg)} < {slo.latency_p95_seconds} s (dashed line). Click an exemplar dot to open the "
                     "logs of that request."),
        unit="s", datasource=PROM,
        queries=tuple(Query(q.latency_quantile(cfg, qq), legend=f"p{round(qq * 100)}", exemplars=True)
                      for qq in q.QUANTILES),
        style=o.timeseries(), thresholds=Thresholds.of("green", (slo.latency_p95_seconds, "red")),
        alert_refs=slo_alert_names(cfg, "latency"),
        runbook=Runbook(
            meaning=(f"Too many requests take longer than {slo.latency_p95_seconds:g} s: the latency objective "
                     f"({_pct(cfg)}) burns its budget faster than it can last."),
            impact="Users wait; clients with short timeouts fail instead.",
            diagnosis=(
                Diagnosis("which endpoints are slow", q.latency_by_endpoint(cfg, rule(
                    cfg.app_selector, by=("endpoint",)))),
                *((Diagnosis("is the database the slow part", q.db_latency(cfg, rule(
                    cfg.app_selector, by=("operation",)))),) if cfg.features.database else ()),
            ),
            mitigation=("Open the per-endpoint latency panel, then requests in progress (saturation) and, where "
                        "there is one, database statement time: scale out, or fix the slow query."),
        ),
    )


def targets(cfg: Config) -> Observable:
    wait = cfg.alerting.target_down_for
    jobs = scrape_jobs(cfg)
    rules = tuple(
        Alert(
            name="TargetDown",
            expr=f"{q.targets_up(cfg, tuple(j.name for j in jobs if j.severity == severity), panel=False)} == 0",
            for_=wait,
            severity=severity,
            summary="{{ $labels.job }} target {{ $labels.instance }} is down",
            description=(f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) "
                         f"for {wait}: its metrics, and every alert computed from them, are blind."),
        )
        for severity in ("critical", "warning")
        if any(j.severity == severity for j in jobs)
    )
    cases = []
    for job in jobs:
        labels = {"job": job.name, "instance": job.target}
        cases += [
            Case("TargetDown", f"{job.name} unreachable for 10m", (series("up", labels, "0x10"),), "10m",
                 (Fired({**labels, "severity": job.severity}),)),
            Case("TargetDown", f"{job.name} up", (series("up", labels, "1x10"),), "10m"),
            Case("TargetDown", f"{job.name} misses two scrapes, shorter than for",
                 (series("up", labels, "1 0 0 1x8"),), "3m"),
        ]
    return Observable(
        name="scrape.targets_up",
        title="Scrape targets up",
        description=("1 while Prometheus scrapes the target, 0 while it fails: a 0 here blinds every panel and "
                     "alert fed by that job. One line per job and instance."),
        unit="short", datasource=PROM,
        queries=(Query(q.targets_up(cfg, tuple(j.name for j in jobs)), legend="{{job}} {{instance}}"),),
        style=o.timeseries(min_zero=False), thresholds=Thresholds.of("red", (o.AT_LEAST_ONE, "green")),
        alerts=rules, cases=tuple(cases),
        runbook=Runbook(
            meaning="Prometheus cannot scrape a target: the job's metrics stop, and its alerts go blind.",
            impact="Nothing that target exports is watched while it lasts; a down app is also unavailable.",
            diagnosis=(Diagnosis("the scrape error per target", "up == 0"),
                       Diagnosis("is the container running and healthy", "docker compose ps", "shell")),
            mitigation=("Read the target's lastError on Prometheus' /targets page: a refused connection (down), "
                        "a timeout (overloaded) or a non-200 (wrong metrics path, missing bearer token)."),
        ),
        rule_file="targets",
    )


def observables(cfg: Config) -> list[Observable]:
    slo = cfg.slo
    pct = _pct(cfg)
    return [
        Observable("http.request_rate", "Request rate",
                   "HTTP requests answered per second, every status code, on average over the time range.",
                   "reqps", PROM, (Query(q.request_rate(cfg, TOTAL), instant=True),), o.stat(), no_alert=TRAFFIC),
        error_ratio(cfg),
        Observable("http.in_progress", "Requests in progress now",
                   "Requests being served right now, summed over instances.", "short", PROM,
                   (Query(f"sum({q.in_progress(cfg)})"),), o.stat(),
                   no_alert="Saturation shows in latency first, which the latency SLO pages on."),
        Observable("http.unmatched", "Unmatched requests",
                   "Requests no route matched (404s on unknown paths) per second, on average over the time range.",
                   "reqps", PROM, (Query(q.unmatched_rate(cfg, TOTAL), instant=True),), o.stat(),
                   no_alert="Scanners and typos: noise for a pager, a trend for a review."),
        Observable("http.rate_by_endpoint", "Request rate by endpoint",
                   "Requests per second per route template and method.", "reqps", PROM,
                   (Query(q.rate_by_endpoint(cfg), legend="{{method}} {{endpoint}}"),), o.timeseries(),
                   no_alert=TRAFFIC),
        error_ratio_over_time(cfg),
        latency(cfg),
        Observable("http.latency_by_endpoint", f"Latency {pct} by endpoint",
                   "Per route template (never the raw path), filtered by the endpoint variable: finds the slow route.",
                   "s", PROM, (Query(q.latency_by_endpoint(cfg), legend="{{endpoint}}", exemplars=True),),
                   o.timeseries(), Thresholds.of("green", (slo.latency_p95_seconds, "red")), no_alert=TRAFFIC),
        Observable("http.status_classes", "Responses by status class",
                   "Responses per second by status class (a line per class that occurs); 4xx include "
                   "401/403/413/429.", "reqps", PROM, (Query(q.status_classes(cfg), legend="{{class}}xx"),),
                   o.timeseries(stack=True, colors={"2xx": "green", "3xx": "blue", "4xx": "orange", "5xx": "red"}),
                   no_alert="5xx page through AppHighErrorRatio and the availability SLO; 4xx are the clients'."),
        Observable("http.in_progress_by_endpoint", "In progress by endpoint",
                   "Concurrent requests per route template: a rising line is a stuck handler.", "short", PROM,
                   (Query(q.in_progress(cfg), legend="{{endpoint}}"),), o.timeseries(),
                   no_alert="A stuck handler shows in latency, which the latency SLO pages on."),
        Observable("http.unhandled_exceptions", "Unhandled exceptions",
                   "Exceptions that reached the error handler, by class and route.", "ops", PROM,
                   (Query(q.app_errors(cfg), legend="{{error_type}} {{handler}}"),), o.timeseries(),
                   Thresholds.of("green", (cfg.panels.unhandled_exceptions_per_second, "red")),
                   no_alert="Each one is a 500 the error-ratio alert and the availability SLO count."),
        Observable("db.latency", f"DB query {pct} by operation",
                   "Database statement latency by kind of operation (select, insert, update, delete, audit insert).",
                   "s", PROM, (Query(q.db_latency(cfg), legend="{{operation}}"),), o.timeseries(),
                   no_alert="Slow statements surface as request latency, which the latency SLO pages on.",
                   feature="database"),
        Observable("service.info", "Build running now", "Version, Python and environment of the running build.",
                   "none",
                   PROM, (Query(q.app_info(cfg), legend="{{version}} · py {{python_version}} · {{environment}}",
                                instant=True),), o.stat(text_mode="name"),
                   no_alert="Which build runs is a fact, not a condition."),
        targets(cfg),
    ]
