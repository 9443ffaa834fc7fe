"""``application-logs``: the app's JSON lines in Loki, filtered by stream labels and ``| json`` fields."""

from __future__ import annotations

from grafanalib import core

from fastapi_lookout.metrics import HTTP_METHODS, HTTP_REQUESTS, OTHER_METHOD

from ..catalogs.app import series_name
from ..config import Config
from ..queries import label_values
from ..queries import logs as q
from . import house as h
from . import uids

UID = uids.LOGS
MATCH_ALL = ".*"
"""All for field filters: also matches lines that lack the field (Loki sees an empty label)."""
ANY_STREAM = ".+"
"""All for stream labels: Loki needs at least one matcher that cannot match the empty string."""


def _overview(cfg: Config) -> h.Section:
    lk = h.loki(cfg)
    return h.Section("Volume and errors", [
        h.timeseries(h.observe(
            "Log volume by service and level", "Lines per interval for the selected services, levels and fields.",
            "short", lk, h.Query(q.volume_by_service_level(cfg), legend="{{service}} {{level}}")),
            width=16, bars=True, stack=True),
        h.piechart(h.observe(
            "Level distribution", "Share of lines per level over the whole time range.", "short", lk,
            h.Query(q.level_distribution(cfg), legend="{{level}}", instant=True)),
            overrides=h.color_by_name({"debug": "blue", "info": "green", "warning": "orange", "error": "red",
                                       "critical": "purple"})),
        h.timeseries(h.observe(
            "Error rate by service", "Error and critical lines per second, per service.", "short", lk,
            h.Query(q.error_rate_by_service(cfg), legend="{{service}}"),
            thresholds=h.Thresholds.of("green", (0.1, "red"))), width=16),
        h.bargauge(h.observe(
            "Top services by errors", "Services with the most error and critical lines in the range.", "short", lk,
            h.Query(q.top_services_by_errors(cfg), legend="{{service}}", instant=True),
            thresholds=h.Thresholds.of("green", (1, "red"))), width=8),
        h.logs(h.observe("Error logs", "Error and critical lines with their exception, newest first.", "none", lk,
                         q.error_logs(cfg)), height=12),
    ])


def _by_kind(cfg: Config) -> h.Section:
    lk = h.loki(cfg)
    return h.Section("Lines by kind", [
        h.logs(h.observe("HTTP request logs", "One access line per request: status, route, time, ids.", "none", lk,
                         q.http_request_logs(cfg)), width=24, height=12),
        h.logs(h.observe("WebSocket logs", "Connections, rejections, messages and disconnects.", "none", lk,
                         q.websocket_logs(cfg)), width=12, height=10),
        h.logs(h.observe("Rate-limit events", "Requests refused by a rate limit, with the limit type.", "none", lk,
                         q.rate_limit_logs(cfg)), width=12, height=10),
        h.logs(h.observe("Auth failures", "Refused tokens and missing roles, with the reason.", "none", lk,
                         q.auth_failure_logs(cfg)), width=12, height=10),
        h.logs(h.observe("All matching lines", "Every line the filters select; set request_id to follow one request.",
                         "none", lk, q.all_lines(cfg)), width=12, height=10),
    ])


def variables(cfg: Config) -> list[h.Variable]:
    lk = h.loki(cfg)
    prom = h.prometheus(cfg)
    requests = f"{series_name(HTTP_REQUESTS)}{{{cfg.app_selector}}}"
    # endpoint and status values come from the app's metrics: the same route templates the logs carry
    return [
        h.query_variable("service", "Service", lk, q.service_values(cfg), all_value=ANY_STREAM),
        h.query_variable("level", "Level", lk, q.level_values(cfg), all_value=ANY_STREAM),
        h.textbox("user_id", "User id"),
        h.query_variable("endpoint", "Endpoint", prom, label_values(requests, "endpoint"), all_value=MATCH_ALL),
        h.custom_variable("method", "Method", [*sorted(HTTP_METHODS), OTHER_METHOD], all_value=MATCH_ALL),
        h.query_variable("status_code", "Status", prom, label_values(requests, "status_code"),
                         all_value=MATCH_ALL),
        h.textbox("request_id", "Request id"),
    ]


def build(cfg: Config) -> core.Dashboard:
    return h.dashboard(
        UID, "Application logs",
        "JSON log lines from Loki. Stream labels: service, level, environment; everything else is a | json field.",
        [_overview(cfg), _by_kind(cfg)],
        variables(cfg), tags=("logs", "observability-bundle"),
        links=[h.Link("FastAPI service", f"/d/{uids.FASTAPI}"), h.Link("Audit logs", f"/d/{uids.AUDIT}")],
    )
