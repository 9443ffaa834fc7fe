"""Log panels (LogQL over Loki): volume and errors, lines by kind, and the service's own errors."""

from __future__ import annotations

from ..config import Config, DsType
from ..grafana import uids
from ..queries import fastapi as service
from ..queries import logs as q
from . import model as o
from .model import Link, Observable, Query, Thresholds

LOKI = DsType.LOKI
READ = "Lines to read while investigating; what pages is counted in metrics (error ratio, SLOs, rate limits)."


def observables(cfg: Config) -> list[Observable]:
    link = Link("Application logs", f"/d/{uids.LOGS}?var-service={cfg.app_service}&${{__url_time_range}}")
    return [
        Observable("logs.volume", "Log volume by service and level",
                   "Lines per interval for the selected services, levels and fields.", "short", LOKI,
                   (Query(q.volume_by_service_level(cfg), legend="{{service}} {{level}}"),),
                   o.timeseries(bars=True, stack=True), no_alert=READ),
        Observable("logs.levels", "Level distribution", "Share of lines per level over the whole time range.",
                   "short", LOKI, (Query(q.level_distribution(cfg), legend="{{level}}", instant=True),),
                   o.piechart(colors={"debug": "blue", "info": "green", "warning": "orange", "error": "red",
                                      "critical": "purple"}), no_alert=READ),
        Observable("logs.error_rate", "Error rate by service", "Error and critical lines per second, per service.",
                   "short", LOKI, (Query(q.error_rate_by_service(cfg), legend="{{service}}"),), o.timeseries(),
                   Thresholds.of("green", (cfg.panels.log_errors_per_second, "red")), no_alert=READ),
        Observable("logs.top_error_services", "Top services by errors",
                   "Services with the most error and critical lines in the range.", "short", LOKI,
                   (Query(q.top_services_by_errors(cfg), legend="{{service}}", instant=True),), o.bargauge(),
                   Thresholds.any_is("red"), no_alert=READ),
        Observable("logs.errors", "Error logs", "Error and critical lines with their exception, newest first.",
                   "none", LOKI, (Query(q.error_logs(cfg)),), o.logs(), no_alert=READ),
        Observable("logs.http", "HTTP request logs", "One access line per request: status, route, time, ids.", "none",
                   LOKI, (Query(q.http_request_logs(cfg)),), o.logs(), no_alert=READ),
        Observable("logs.websocket", "WebSocket logs", "Connections, rejections, messages and disconnects.", "none",
                   LOKI, (Query(q.websocket_logs(cfg)),), o.logs(), no_alert=READ, feature="websocket"),
        Observable("logs.rate_limits", "Rate-limit events", "Requests refused by a rate limit, with the limit type.",
                   "none", LOKI, (Query(q.rate_limit_logs(cfg)),), o.logs(), no_alert=READ, feature="rate_limit"),
        Observable("logs.auth_failures", "Auth failures", "Refused tokens and missing roles, with the reason.", "none",
                   LOKI, (Query(q.auth_failure_logs(cfg)),), o.logs(), no_alert=READ, feature="auth"),
        Observable("logs.all", "All matching lines",
                   "Every line the filters select; set request_id to follow one request.", "none", LOKI,
                   (Query(q.all_lines(cfg)),), o.logs(), no_alert=READ),
        Observable("logs.service_errors", "Recent errors", "The app's error and critical lines, newest first.",
                   "none", LOKI, (Query(service.recent_errors(cfg)),), o.logs(), no_alert=READ, links=(link,)),
        Observable("logs.service_rate_limits", "Rate-limit events", "One line per request refused by a rate limit.",
                   "none", LOKI, (Query(service.rate_limit_events(cfg)),), o.logs(), no_alert=READ, links=(link,),
                   feature="rate_limit"),
    ]
