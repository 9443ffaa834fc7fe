"""``audit-logs``: who did what, with which outcome, from PostgreSQL ``user_actions``; the chain's integrity."""

from __future__ import annotations

from ..config import Config, DsType
from ..observables.model import Link
from ..queries import audit as q
from . import uids
from .house import Datasource
from .layout import Layout, Row, cells
from .variables import Variable, datasources, query_variable


def variables(cfg: Config, kinds: set[DsType]) -> list[Variable]:
    """SQL variables are multi-select with Grafana's standard All (no custom allValue), so ``:sqlstring``
    lists every value."""
    pg = Datasource(DsType.POSTGRES)
    return [
        *datasources(cfg, [DsType.PROMETHEUS, DsType.POSTGRES]),
        query_variable("username", "User", pg, q.username_values(cfg)),
        query_variable("action_type", "Action", pg, q.action_type_values(cfg)),
        query_variable("outcome", "Outcome", pg, q.outcome_values(cfg)),
    ]


LAYOUT = Layout(
    uid=uids.AUDIT,
    title="Audit logs",
    description=("Audit trail of the API from PostgreSQL user_actions (read-only user); every SQL panel honours "
                 "every variable. The integrity row (Prometheus) is the hash chain's verification status."),
    rows=(
        Row("Integrity (hash chain)", cells(
            ("audit_chain.status", 6), ("audit_chain.unverified", 6), ("audit_chain.verification_age", 6),
            ("audit_chain.failed_verifications", 6), ("audit_chain.progress", 24, 6))),
        Row("Overview", cells(
            ("audit_trail.events", 6), ("audit_trail.errors", 6), ("audit_trail.denied", 6), ("audit_trail.users", 6),
            ("audit_trail.events_over_time", 24))),
        Row("Breakdown", cells(("audit_trail.actions_by_type", 8, 10), ("audit_trail.top_users", 8, 10),
                               ("audit_trail.duration_by_action", 8, 10))),
        Row("Events", cells(("audit_trail.recent", 24, 12), ("audit_trail.failed", 24, 10))),
    ),
    variables=variables,
    tags=("audit", "observability-bundle"),
    scrape_interval=lambda cfg: cfg.prometheus.app_scrape_interval,
    time_from="now-6h",
    refresh="1m",
    links=(Link("Application logs", f"/d/{uids.LOGS}"), Link("FastAPI service", f"/d/{uids.FASTAPI}")),
    feature="audit",
)
