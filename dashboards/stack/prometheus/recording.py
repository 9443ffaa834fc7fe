"""Recording rules for what dashboards and alerts read often, named ``level:metric:operations``.

``level`` is the labels kept (``job``, ``job_endpoint``), ``metric`` the
series without ``_total``, ``operations`` what was applied, newest first
(``ratio_rate5m``, ``p95_5m``). Both sides of a ratio are aggregated by the
same labels, so the division matches series one to one.
"""

from __future__ import annotations

from typing import Final

from prometheus_client.utils import floatToGoString

from fastapi_lookout import metrics

from ...catalogs.app import series_name
from ...config import Config
from ...queries import RULE_WINDOW as WINDOW
from ...queries import Scope, rule
from ...queries import fastapi as q
from .rules import ExprCase, Group, Recording, RuleFile, series

ERROR_RATIO: Final = f"job:http_requests_errors:ratio_rate{WINDOW}"
"""What AppHighErrorRatio compares with its threshold."""


def _quantile_name(quantile: float) -> str:
    return f"p{round(quantile * 100):d}"


def recordings(cfg: Config) -> tuple[Recording, ...]:
    quantile = cfg.slo.latency_quantile

    def scope(*by: str) -> Scope:
        return rule(cfg.app_selector, by=by)

    return (
        Recording(f"job:http_requests:rate{WINDOW}", q.request_rate(cfg, scope("job"))),
        Recording(f"job_status_code:http_requests:rate{WINDOW}", q.request_rate(cfg, scope("job", "status_code"))),
        Recording(f"job_endpoint:http_requests:rate{WINDOW}", q.request_rate(cfg, scope("job", "endpoint"))),
        Recording(ERROR_RATIO, q.error_ratio(cfg, scope("job"))),
        Recording(f"job:http_request_duration_seconds:{_quantile_name(quantile)}_{WINDOW}",
                  q.latency_quantile(cfg, quantile, scope("job"))),
        Recording(f"job_endpoint:http_request_duration_seconds:p50_{WINDOW}",
                  q.latency_quantile(cfg, 0.5, scope("job", "endpoint"))),
        Recording(f"job_endpoint:http_request_duration_seconds:{_quantile_name(quantile)}_{WINDOW}",
                  q.latency_quantile(cfg, quantile, scope("job", "endpoint"))),
    )


def expr_cases(cfg: Config) -> tuple[ExprCase, ...]:
    app = {"job": cfg.app_job, "instance": cfg.prometheus.app_target, "method": "GET", "endpoint": "/api/authors"}
    requests = series_name(metrics.HTTP_REQUESTS)
    bucket = series_name(metrics.HTTP_REQUEST_DURATION, "_bucket")
    job = f'{{job="{cfg.app_job}"}}'
    le = floatToGoString(cfg.slo.latency_p95_seconds)
    endpoint = f'{{job="{cfg.app_job}",endpoint="/api/authors"}}'
    return (
        ExprCase("5xx ratio: both sides summed by job, 10% errors read 0.1",
                 (series(requests, {**app, "status_code": "200"}, "0+480x10"),
                  series(requests, {**app, "endpoint": "/health", "status_code": "200"}, "0+60x10"),
                  series(requests, {**app, "status_code": "500"}, "0+60x10")),
                 f"job:http_requests_errors:ratio_rate{WINDOW}", "10m", {job: 0.1}),
        ExprCase("5xx ratio reads 0, not nothing, before the first 5xx",
                 (series(requests, {**app, "status_code": "200"}, "0+60x10"),),
                 f"job:http_requests_errors:ratio_rate{WINDOW}", "10m", {job: 0.0}),
        ExprCase("request rate per job in requests per second",
                 (series(requests, {**app, "status_code": "200"}, "0+60x10"),
                  series(requests, {**app, "status_code": "404"}, "0+60x10")),
                 f"job:http_requests:rate{WINDOW}", "10m", {job: 2.0}),
        ExprCase(f"{_quantile_name(cfg.slo.latency_quantile)} per endpoint interpolates linearly inside its bucket",
                 (series(bucket, {**app, "le": le}, "0+100x10"), series(bucket, {**app, "le": "+Inf"}, "0+100x10")),
                 f"job_endpoint:http_request_duration_seconds:{_quantile_name(cfg.slo.latency_quantile)}_{WINDOW}",
                 "10m", {endpoint: cfg.slo.latency_p95_seconds * cfg.slo.latency_quantile}),
    )


def rule_file(cfg: Config) -> RuleFile:
    return RuleFile("recording", (Group("http-recording", recordings(cfg)),), expr_cases=expr_cases(cfg))
