"""``fastapi-metrics``: RED overview, WebSocket, protection, audit writer, the service's logs, scrape health."""

from __future__ import annotations

from ..config import Config, DsType
from ..observables.model import Link
from ..queries import fastapi as q
from . import uids
from .house import Datasource
from .layout import Layout, Row, cells
from .variables import Variable, datasources, job_and_instance, query_variable

AREAS = (("websocket", "WebSocket"), ("rate_limit", "rate limits"), ("auth", "authentication"),
         ("audit", "the audit writer"))


def describe(cfg: Config) -> str:
    """What this dashboard shows for this service (nothing about what it does not have)."""
    extra = [text for feature, text in AREAS if cfg.enabled(feature)]
    return "RED metrics of the service" + (f", {', '.join(extra)}" if extra else "") + ", its logs and scrape health."


def variables(cfg: Config, kinds: set[DsType]) -> list[Variable]:
    prom = Datasource(DsType.PROMETHEUS)
    return [
        *datasources(cfg, [k for k in (DsType.PROMETHEUS, DsType.LOKI) if k in kinds | {DsType.PROMETHEUS}]),
        *job_and_instance(prom, q.job_values(cfg), q.instance_values(cfg), cfg.app_selector),
        query_variable("endpoint", "Endpoint", prom, q.endpoint_values(cfg)),
    ]


LAYOUT = Layout(
    uid=uids.FASTAPI,
    title="FastAPI service",
    description=describe,
    rows=(
        Row("Requests (RED)", cells(
            ("http.request_rate", 6), ("http.error_ratio", 6), ("http.in_progress", 6), ("http.unmatched", 6),
            "http.rate_by_endpoint", "http.error_ratio_over_time", "http.latency", "http.latency_by_endpoint",
            "http.status_classes", "http.in_progress_by_endpoint", "http.unhandled_exceptions", "db.latency")),
        Row("WebSocket", cells(("ws.open", 4, 8), ("ws.connections", 10), ("ws.messages", 10), ("ws.processing", 24))),
        Row("Rate limits and authentication", cells("protection.rate_limit_hits", "protection.auth_attempts")),
        Row("Audit writer", cells(
            "audit.queue", "audit.write_failures", "audit.dropped", "audit.spooled", "audit.last_write",
            "audit.throughput", "audit.batch_latency", ("audit_chain.status_service", 6),
            ("audit_chain.unverified_service", 6), ("audit.pruned", 6), ("audit.foreign_spool", 6))),
        Row("Logs", cells(("logs.service_errors", 12, 10), ("logs.service_rate_limits", 12, 10))),
        Row("Build and scrape targets", cells(("service.info", 6, 6), ("scrape.targets_up", 18, 6))),
    ),
    variables=variables,
    tags=("fastapi", "observability-bundle"),
    scrape_interval=lambda cfg: cfg.prometheus.app_scrape_interval,
    links=(Link("Application logs", f"/d/{uids.LOGS}"), Link("Audit logs", f"/d/{uids.AUDIT}"),
           Link("Keycloak", f"/d/{uids.KEYCLOAK}")),
)
