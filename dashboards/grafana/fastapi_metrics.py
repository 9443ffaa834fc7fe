"""``fastapi-metrics``: RED overview, WebSocket, protection, audit writer and the app's logs."""

from __future__ import annotations

from grafanalib import core

from ..config import Config
from ..queries import fastapi as q
from . import house as h
from . import uids
from .audit_logs import chain_status

UID = uids.FASTAPI


def _latency_panels(cfg: Config) -> list[h.HousePanel]:
    prom = h.prometheus(cfg)
    slo = cfg.slo
    latency_thresholds = h.Thresholds.of("green", (slo.latency_p95_seconds, "red"))
    return [
        h.timeseries(h.observe(
            "Latency p50 / p95 / p99",
            f"Quantiles over all endpoints from the request-duration histogram. The objective is p"
            f"{round(slo.latency_quantile * 100)} < {slo.latency_p95_seconds} s (dashed line). Click an exemplar "
            "dot to open the logs of that request.",
            "s", prom,
            *(h.Query(q.latency_quantile(cfg, qq), legend=f"p{round(qq * 100)}", exemplars=True) for qq in q.QUANTILES),
            thresholds=latency_thresholds,
        ), width=12),
        h.timeseries(h.observe(
            f"Latency p{round(slo.latency_quantile * 100)} by endpoint",
            "Per route template (never the raw path), filtered by the endpoint variable: finds the slow route.",
            "s", prom, h.Query(q.latency_by_endpoint(cfg), legend="{{endpoint}}", exemplars=True),
            thresholds=latency_thresholds,
        ), width=12),
    ]


def _red(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    error_budget = round(1 - cfg.slo.availability, 6)
    error_thresholds = h.Thresholds.of("green", (error_budget, "red"))
    return h.Section("Requests (RED)", [
        h.stat(h.observe("Request rate", "All HTTP requests answered per second, every status code.", "reqps",
                         prom, q.request_rate(cfg)), width=6),
        h.stat(h.observe(
            "Error ratio (5xx)",
            f"sum(5xx) / sum(all) for the service. Red above the error budget of the "
            f"{cfg.slo.availability * 100:g}% availability objective.",
            "percentunit", prom, q.error_ratio(cfg), thresholds=error_thresholds), width=6),
        h.stat(h.observe(
            "Requests in progress", "Requests being served right now, summed over instances.", "short", prom,
            f"sum({q.in_progress(cfg)})"), width=6),
        h.stat(h.observe(
            "Unmatched requests", "Requests no route matched (404s on unknown paths), collapsed into one series.",
            "reqps", prom, q.unmatched_rate(cfg)), width=6),
        h.timeseries(h.observe(
            "Request rate by endpoint", "Requests per second per route template and method.", "reqps", prom,
            h.Query(q.rate_by_endpoint(cfg), legend="{{method}} {{endpoint}}")), width=12),
        h.timeseries(h.observe(
            "Error ratio (5xx) over time", "sum(5xx)/sum(all) over time against the error budget (dashed).",
            "percentunit", prom, h.Query(q.error_ratio(cfg), legend="5xx ratio"), thresholds=error_thresholds),
            width=12),
        *_latency_panels(cfg),
        h.timeseries(h.observe(
            "Responses by status class", "Responses per second by status class; 4xx include 401/403/413/429.",
            "reqps", prom,
            *(h.Query(q.status_rate(cfg, d), legend=f"{d}xx") for d in "12345")),
            stack=True, overrides=h.color_by_name({"2xx": "green", "3xx": "blue", "4xx": "orange", "5xx": "red"})),
        h.timeseries(h.observe(
            "In progress by endpoint", "Concurrent requests per route template: a rising line is a stuck handler.",
            "short", prom, h.Query(q.in_progress(cfg), legend="{{endpoint}}"))),
        h.timeseries(h.observe(
            "Unhandled exceptions", "Exceptions that reached the error handler, by class and route.", "ops", prom,
            h.Query(q.app_errors(cfg), legend="{{error_type}} {{handler}}"),
            thresholds=h.Thresholds.of("green", (0.001, "red")))),
        h.timeseries(h.observe(
            f"DB query p{round(cfg.slo.latency_quantile * 100)} by operation",
            "Database statement latency by kind of operation (select, insert, delete, audit insert).", "s", prom,
            h.Query(q.db_latency(cfg), legend="{{operation}}"))),
    ])


def _websocket(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    return h.Section("WebSocket", [
        h.stat(h.observe("Open connections", "WebSocket connections open right now.", "short", prom,
                         q.ws_active(cfg)), width=4, height=8),
        h.timeseries(h.observe(
            "Connection attempts by status",
            "Accepted vs rejected (bad token, connection limit) per second.", "ops", prom,
            h.Query(q.ws_connections_by_status(cfg), legend="{{status}}")),
            width=10, overrides=h.color_by_name({"accepted": "green", "rejected_auth": "red",
                                                 "rejected_limit": "orange"})),
        h.timeseries(h.observe(
            "Messages", "Messages received from and sent to clients per second.", "ops", prom,
            h.Query(q.ws_messages_received(cfg), legend="received"),
            h.Query(q.ws_messages_sent(cfg), legend="sent")), width=10),
        h.timeseries(h.observe(
            f"Message processing p{round(cfg.slo.latency_quantile * 100)} by package",
            "Time to handle one message per package id ('unknown' for ids the service does not serve).", "s",
            prom, h.Query(q.ws_processing_by_pkg(cfg), legend="{{pkg_id}}", exemplars=True)), width=24),
    ])


def _protection(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    return h.Section("Rate limits and authentication", [
        h.timeseries(h.observe(
            "Rate-limit hits by type", "Requests refused with 429, by the limit that refused them.", "reqps",
            prom, h.Query(q.rate_limit_hits(cfg), legend="{{limit_type}}"))),
        h.timeseries(h.observe(
            "Auth attempts by status", "Bearer-token checks: success, or why the token was refused.", "reqps",
            prom, h.Query(q.auth_attempts(cfg), legend="{{status}}")),
            overrides=h.color_by_name({"success": "green"})),
    ])


def _audit(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    bad = h.Thresholds.of("green", (1, "red"))
    return h.Section("Audit writer", [
        h.stat(h.observe("Queue size", "Audit rows waiting in memory; a growing queue means the DB is slow or down.",
                         "short", prom, q.audit_queue(cfg), thresholds=h.Thresholds.of("green", (1000, "orange"))),
               width=4),
        h.stat(h.observe("Write failures", "Failed batch writes in the last interval (rows are kept and retried).",
                         "short", prom, q.audit_failures(cfg), thresholds=bad), width=4),
        h.stat(h.observe("Dropped rows", "Rows refused because the queue was full: lost audit records.", "short",
                         prom, q.audit_dropped(cfg), thresholds=bad), width=4),
        h.stat(h.observe("Spooled rows", "Rows saved to the spool file at shutdown because the DB was down.",
                         "short", prom, q.audit_spooled(cfg), thresholds=h.Thresholds.of("green", (1, "orange"))),
               width=4),
        h.stat(h.observe("Since last write", "Seconds since the last successful batch; idle services age too.",
                         "s", prom, q.audit_last_write_age(cfg),
                         thresholds=h.Thresholds.of("green", (300, "orange"))), width=4),
        h.stat(h.observe("App info", "Version, Python and environment of the running build.", "none", prom,
                         h.Query(q.app_info(cfg), legend="{{version}} · py {{python_version}} · {{environment}}",
                                 instant=True)),
               width=4, text_mode="name"),
        h.timeseries(h.observe(
            "Rows enqueued / written", "Audit rows per second into the queue and committed to PostgreSQL.",
            "ops", prom,
            h.Query(q.audit_enqueued(cfg), legend="enqueued"), h.Query(q.audit_written(cfg), legend="written"))),
        h.timeseries(h.observe(
            f"Batch latency p{round(cfg.slo.latency_quantile * 100)}", "Time to write one batch of audit rows.",
            "s", prom, h.Query(q.audit_batch_latency(cfg), legend="batch"))),
        chain_status(h.observe(
            "Audit chain", "Last periodic verification of the audit hash chain (details on the audit dashboard).",
            "none", prom, h.Query(q.audit_chain_broken(cfg), instant=True), thresholds=bad), width=8),
        h.stat(h.observe("Unverified audit rows", "Rows written to the hash chain but not yet verified.", "short",
                         prom, q.audit_chain_unverified(cfg), thresholds=h.Thresholds.of("green", (10_000, "orange"))),
               width=8),
        h.stat(h.observe("Rows pruned", "Audit rows deleted by retention in the last interval, under a signed "
                         "checkpoint.", "short", prom, q.audit_pruned(cfg)), width=8),
    ])


def _logs(cfg: Config) -> h.Section:
    loki = h.loki(cfg)
    link = h.Link("Application logs", f"/d/{uids.LOGS}?var-service={cfg.app_service}&${{__url_time_range}}")
    return h.Section("Logs", [
        h.logs(h.observe("Recent errors", "The app's error and critical lines, newest first.", "none", loki,
                         q.recent_errors(cfg), links=[link]), width=12, height=10),
        h.logs(h.observe("Rate-limit events", "One line per request refused by a rate limit.", "none", loki,
                         q.rate_limit_events(cfg), links=[link]), width=12, height=10),
    ])


def variables(cfg: Config) -> list[h.Variable]:
    prom = h.prometheus(cfg)
    return [
        *h.job_and_instance(prom, q.job_values(cfg), q.instance_values(cfg)),
        h.query_variable("endpoint", "Endpoint", prom, q.endpoint_values(cfg)),
    ]


def build(cfg: Config) -> core.Dashboard:
    return h.dashboard(
        UID, "FastAPI service",
        "RED metrics, WebSocket, rate limits, auth and the audit writer of the reference service.",
        [_red(cfg), _websocket(cfg), _protection(cfg), _audit(cfg), _logs(cfg)],
        variables(cfg), tags=("fastapi", "observability-bundle"),
        links=[h.Link("Application logs", f"/d/{uids.LOGS}"), h.Link("Audit logs", f"/d/{uids.AUDIT}"),
               h.Link("Keycloak", f"/d/{uids.KEYCLOAK}")],
    )
