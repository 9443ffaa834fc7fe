"""``audit-logs``: who did what, with which outcome, from PostgreSQL ``user_actions``."""

from __future__ import annotations

from typing import Any

import attr
from grafanalib import core

from ..config import Config
from ..queries import audit as q
from . import house as h
from . import uids

UID = uids.AUDIT
OUTCOME_COLORS = {q.SUCCESS: "green", q.ERROR: "red", q.PERMISSION_DENIED: "orange"}


def _sql(expr: str, table: bool = True) -> h.Query:
    return h.Query(expr, table=table)


def _event_table_overrides(cfg: Config) -> list[dict[str, Any]]:
    slo = cfg.slo
    logs_link = {
        "targetBlank": False,
        "title": "Logs of this request",
        "url": f"/d/{uids.LOGS}?var-request_id=${{__value.raw:percentencode}}&${{__url_time_range}}",
    }
    return [
        h.column("outcome", ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
                 ("mappings", h.value_colors(OUTCOME_COLORS))),
        h.column("response_status", ("custom.cellOptions", {"type": "color-text"}),
                 ("thresholds", h.Thresholds.of("green", (400, "orange"), (500, "red")).to_json())),
        h.column("duration_ms", ("unit", "ms"), ("custom.cellOptions", {"type": "color-text"}),
                 ("thresholds", h.Thresholds.of("green", (slo.audit_duration_ok_ms, "yellow"),
                                                (slo.audit_duration_warn_ms, "red")).to_json())),
        h.column("request_id", ("links", [logs_link])),
        h.column("time", ("unit", "dateTimeAsIso")),
    ]


def _overview(cfg: Config) -> h.Section:
    pg = h.postgres(cfg)
    bad = h.Thresholds.of("green", (1, "red"))
    return h.Section("Overview", [
        h.stat(h.observe("Events", "Audited requests in the time range, after the variable filters.", "short", pg,
                         _sql(q.total_events(cfg))), width=6),
        h.stat(h.observe("Errors", "Audited requests whose outcome is error (failed, not refused for a role).",
                         "short", pg, _sql(q.outcome_count(cfg, q.ERROR)), thresholds=bad), width=6),
        h.stat(h.observe("Permission denied", "Requests refused for a missing role (403).", "short", pg,
                         _sql(q.outcome_count(cfg, q.PERMISSION_DENIED)),
                         thresholds=h.Thresholds.of("green", (1, "orange"))), width=6),
        h.stat(h.observe("Users", "Distinct users (anonymous counts as one).", "short", pg,
                         _sql(q.distinct_users(cfg))), width=6),
        h.timeseries(h.observe(
            "Events over time by outcome", "Audited requests per interval: success, error, permission denied.",
            "short", pg, _sql(q.events_by_outcome(cfg), table=False)),
            width=24, bars=True, stack=True, overrides=h.color_by_name(OUTCOME_COLORS)),
    ])


def _breakdown(cfg: Config) -> h.Section:
    pg = h.postgres(cfg)
    slo = cfg.slo
    return h.Section("Breakdown", [
        h.bargauge(h.observe("Actions by type (top 20)", "Most frequent action types in the range.", "short", pg,
                             _sql(q.actions_by_type(cfg))), width=8, height=10, rows=True),
        h.bargauge(h.observe("Top users (top 15)", "Users with the most audited actions.", "short", pg,
                             _sql(q.top_users(cfg))), width=8, height=10, rows=True),
        h.bargauge(h.observe(
            "Average duration by action", "Mean response time per action type; slow actions first.", "ms", pg,
            _sql(q.avg_duration_by_action(cfg)),
            thresholds=h.Thresholds.of("green", (slo.audit_duration_ok_ms, "yellow"),
                                       (slo.audit_duration_warn_ms, "red"))),
            width=8, height=10, rows=True),
    ])


def _events(cfg: Config) -> h.Section:
    pg = h.postgres(cfg)
    overrides = _event_table_overrides(cfg)
    return h.Section("Events", [
        h.table(h.observe(
            "Recent events (last 100)",
            "Newest audited requests. request_id opens the logs of that request.", "none", pg,
            _sql(q.recent_events(cfg))), overrides=overrides, height=12),
        h.table(h.observe(
            "Failed and denied actions (last 50)", "Only error and permission_denied outcomes, newest first.",
            "none", pg, _sql(q.failed_actions(cfg))), overrides=overrides, height=10),
    ])


CHAIN_STATES = {0: ("intact", "green"), 1: ("BROKEN", "red")}


def chain_status(obs: h.Observable, width: int = 6) -> h.HousePanel:
    """A stat that says intact / BROKEN instead of 0 / 1 (also on ``fastapi-metrics``)."""
    mappings = [{"type": "value", "options": {
        str(value): {"text": text, "color": color, "index": i}
        for i, (value, (text, color)) in enumerate(CHAIN_STATES.items())}}]
    panel = h.stat(obs, width=width, text_mode="value")
    return attr.evolve(panel, defaults={**panel.defaults, "mappings": mappings})


def _integrity(cfg: Config) -> h.Section:
    """From Prometheus: the app's periodic verifier of the hash chain (``scripts/audit.py verify`` for detail)."""
    prom = h.prometheus(cfg)
    return h.Section("Integrity (hash chain)", [
        chain_status(h.observe(
            "Chain status", "Last periodic verification of the audit hash chain: intact, or BROKEN when a row was "
            "edited, deleted, reordered or inserted outside the app. scripts/audit.py verify names the row.",
            "none", prom, h.Query(q.chain_broken(cfg), instant=True), thresholds=h.Thresholds.of("green", (1, "red")))),
        h.stat(h.observe(
            "Unverified rows", "Rows written (chain head) but not yet verified; drains every verification interval.",
            "short", prom, q.chain_unverified_rows(cfg), thresholds=h.Thresholds.of("green", (10_000, "orange"))),
            width=6),
        h.stat(h.observe(
            "Since last verification", "Seconds since the periodic verifier last finished; it runs every "
            "AUDIT_VERIFY_INTERVAL_SECONDS.", "s", prom, q.chain_last_verification_age(cfg),
            thresholds=h.Thresholds.of("green", (600, "orange"))), width=6),
        h.stat(h.observe(
            "Failed verifications", "Verification runs that found tampering (broken) or could not read the "
            "database (error), in the last interval.", "short", prom,
            h.Query(q.chain_failed_verifications(cfg), legend="{{result}}"),
            thresholds=h.Thresholds.of("green", (1, "red"))), width=6),
        h.timeseries(h.observe(
            "Rows written vs verified", "Highest seq written to the chain and highest seq the verifier found "
            "intact: the lines meet after each verification.", "short", prom,
            h.Query(q.chain_written_seq(cfg), legend="written"), h.Query(q.chain_verified_seq(cfg),
                                                                         legend="verified")),
            width=24, height=6, min_zero=False),
    ])


def variables(cfg: Config) -> list[h.Variable]:
    """Multi-select with Grafana's standard All (no custom allValue), so ``:sqlstring`` lists every value."""
    pg = h.postgres(cfg)
    return [
        h.query_variable("username", "User", pg, q.username_values(cfg)),
        h.query_variable("action_type", "Action", pg, q.action_type_values(cfg)),
        h.query_variable("outcome", "Outcome", pg, q.outcome_values(cfg)),
    ]


def build(cfg: Config) -> core.Dashboard:
    return h.dashboard(
        UID, "Audit logs",
        "Audit trail of the API from PostgreSQL user_actions (read-only user); every SQL panel honours every "
        "variable. The integrity row (Prometheus) is the hash chain's verification status.",
        [_integrity(cfg), _overview(cfg), _breakdown(cfg), _events(cfg)],
        variables(cfg), tags=("audit", "observability-bundle"), time_from="now-6h", refresh="1m",
        links=[h.Link("Application logs", f"/d/{uids.LOGS}"), h.Link("FastAPI service", f"/d/{uids.FASTAPI}")],
    )
