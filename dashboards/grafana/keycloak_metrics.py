"""``keycloak-metrics``: logins, tokens, HTTP, JVM, database pool and caches of a stock Keycloak 26."""

from __future__ import annotations

from ..config import Config, DsType
from ..observables.model import Link
from ..queries import keycloak as q
from . import uids
from .house import Datasource
from .layout import Layout, Row, cells
from .variables import Variable, datasources, job_and_instance


def variables(cfg: Config, kinds: set[DsType]) -> list[Variable]:
    return [*datasources(cfg, [DsType.PROMETHEUS]),
            *job_and_instance(Datasource(DsType.PROMETHEUS), q.job_values(cfg), q.instance_values(cfg),
                             cfg.keycloak_selector)]


LAYOUT = Layout(
    uid=uids.KEYCLOAK,
    title="Keycloak",
    description="Stock Keycloak 26 metrics (management port /metrics): user events, HTTP, JVM, Agroal, Infinispan.",
    rows=(
        Row("Logins and tokens", cells(
            ("keycloak.logins", 8), ("keycloak.failed_logins", 8), ("keycloak.failure_ratio", 8, 8),
            ("keycloak.token_events", 8), ("keycloak.token_errors", 8), ("keycloak.password_validations", 8))),
        Row("HTTP", cells(
            ("keycloak.http_by_outcome", 8), ("keycloak.http_5xx", 8), ("keycloak.active_requests", 4, 8),
            ("keycloak.within_slo", 4, 8), "keycloak.latency_by_uri", "keycloak.latency")),
        Row("JVM", cells(
            "keycloak.memory", ("keycloak.heap_after_gc", 6), ("keycloak.gc_overhead", 6, 8),
            ("keycloak.gc_time_share", 8), ("keycloak.gc_pauses", 8), ("keycloak.threads", 8), ("keycloak.cpu", 16),
            ("keycloak.uptime", 8, 8))),
        Row("Database pool (Agroal)", cells("keycloak.pool", "keycloak.pool_blocking")),
        Row("Infinispan caches", cells("keycloak.cache_entries", "keycloak.cache_hit_ratio")),
    ),
    variables=variables,
    tags=("keycloak", "observability-bundle"),
    links=(Link("FastAPI service", f"/d/{uids.FASTAPI}"),),
    feature="keycloak",
    scrape_interval=lambda cfg: cfg.prometheus.keycloak_scrape_interval,
)
