"""What the audit trail says: who did what, with which outcome (SQL over PostgreSQL ``user_actions``)."""

from __future__ import annotations

from typing import Any

from ..config import Config, DsType
from ..grafana import uids
from ..queries import audit as q
from . import model as o
from .model import Observable, Query, Thresholds

PG = DsType.POSTGRES
AUDIT = "audit"
OUTCOME_COLORS = {q.SUCCESS: "green", q.ERROR: "red", q.PERMISSION_DENIED: "orange"}
RECORD = ("A record of what users did, not a health signal: compliance reviews read it; the writer and the chain "
          "have the alerts.")


def _sql(expr: str, table: bool = True) -> tuple[Query, ...]:
    return (Query(expr, table=table),)


def _event_table_columns(cfg: Config) -> list[dict[str, Any]]:
    slo, panels = cfg.slo, cfg.panels
    logs_link = {
        "targetBlank": False,
        "title": "Logs of this request",
        "url": f"/d/{uids.LOGS}?var-request_id=${{__value.raw:percentencode}}&${{__url_time_range}}",
    }
    status = Thresholds.of("green", (panels.http_client_error_status, "orange"),
                           (panels.http_server_error_status, "red"))
    duration = Thresholds.of("green", (slo.audit_duration_ok_ms, "yellow"), (slo.audit_duration_warn_ms, "red"))
    return [
        o.column("outcome", ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
                 ("mappings", o.value_colors(OUTCOME_COLORS))),
        o.column("response_status", ("custom.cellOptions", {"type": "color-text"}), ("thresholds", status.to_json())),
        o.column("duration_ms", ("unit", "ms"), ("custom.cellOptions", {"type": "color-text"}),
                 ("thresholds", duration.to_json())),
        o.column("request_id", ("links", [logs_link])),
        o.column("time", ("unit", "dateTimeAsIso")),
    ]


def observables(cfg: Config) -> list[Observable]:
    slo = cfg.slo
    columns = _event_table_columns(cfg)
    duration = Thresholds.of("green", (slo.audit_duration_ok_ms, "yellow"), (slo.audit_duration_warn_ms, "red"))

    def audited(*args: Any, **kwargs: Any) -> Observable:
        return Observable(*args, no_alert=RECORD, feature=AUDIT, **kwargs)

    return [
        audited("audit_trail.events", "Events", "Audited requests in the time range, after the variable filters.",
                "short", PG, _sql(q.total_events(cfg)), o.stat()),
        audited("audit_trail.errors", "Errors",
                "Audited requests whose outcome is error (failed, not refused for a role).", "short", PG,
                _sql(q.outcome_count(cfg, q.ERROR)), o.stat(), Thresholds.any_is("red")),
        audited("audit_trail.denied", "Permission denied", "Requests refused for a missing role (403).", "short", PG,
                _sql(q.outcome_count(cfg, q.PERMISSION_DENIED)), o.stat(), Thresholds.any_is("orange")),
        audited("audit_trail.users", "Users", "Distinct users (anonymous counts as one).", "short", PG,
                _sql(q.distinct_users(cfg)), o.stat()),
        audited("audit_trail.events_over_time", "Events over time by outcome",
                "Audited requests per interval: success, error, permission denied.", "short", PG,
                _sql(q.events_by_outcome(cfg), table=False),
                o.timeseries(bars=True, stack=True, colors=OUTCOME_COLORS)),
        audited("audit_trail.actions_by_type", "Actions by type (top 20)", "Most frequent action types in the range.",
                "short", PG, _sql(q.actions_by_type(cfg)), o.bargauge(rows=True)),
        audited("audit_trail.top_users", "Top users (top 15)", "Users with the most audited actions.", "short", PG,
                _sql(q.top_users(cfg)), o.bargauge(rows=True)),
        audited("audit_trail.duration_by_action", "Average duration by action",
                "Mean response time per action type; slow actions first.", "ms", PG,
                _sql(q.avg_duration_by_action(cfg)), o.bargauge(rows=True), duration),
        audited("audit_trail.recent", "Recent events (last 100)",
                "Newest audited requests. request_id opens the logs of that request.", "none", PG,
                _sql(q.recent_events(cfg)), o.table(overrides=columns)),
        audited("audit_trail.failed", "Failed and denied actions (last 50)",
                "Only error and permission_denied outcomes, newest first.", "none", PG,
                _sql(q.failed_actions(cfg)), o.table(overrides=columns)),
    ]
