"""Recording rules for what dashboards and alerts read often, named ``level:metric:operations``.

``level`` is the labels kept (``job``, ``job_endpoint``), ``metric`` the
series without ``_total``, ``operations`` what was applied, newest first
(``ratio_rate5m``, ``p95_5m``). Both sides of a ratio are aggregated by the
same labels, so the division matches series one to one.
"""

from __future__ import annotations

from prometheus_client.utils import floatToGoString

from fastapi_lookout import metrics

from ...catalogs.app import series_name
from ...config import Config
from .rules import ExprCase, Group, Recording, RuleFile, series

WINDOW = "5m"


def _quantile_name(q: float) -> str:
    return f"p{round(q * 100):d}"


def requests_rate(cfg: Config, by: str = "job") -> str:
    return f"sum by ({by}) (rate({series_name(metrics.HTTP_REQUESTS)}{{{cfg.app_selector}}}[{WINDOW}]))"


def errors_ratio(cfg: Config) -> str:
    """5xx share of all requests per job; 0 (not nothing) while there is traffic but no 5xx series yet."""
    requests = series_name(metrics.HTTP_REQUESTS)
    errors = f'sum by (job) (rate({requests}{{{cfg.app_selector},status_code=~"5.."}}[{WINDOW}]))'
    return f"({errors} or {requests_rate(cfg)} * 0) / {requests_rate(cfg)}"


def latency_quantile(cfg: Config, q: float, by: str) -> str:
    bucket = series_name(metrics.HTTP_REQUEST_DURATION, "_bucket")
    rate = f"rate({bucket}{{{cfg.app_selector}}}[{WINDOW}])"
    return f"histogram_quantile({floatToGoString(q)}, sum by ({by}, le) ({rate}))"


def recordings(cfg: Config) -> tuple[Recording, ...]:
    q = cfg.slo.latency_quantile
    return (
        Recording(f"job:http_requests:rate{WINDOW}", requests_rate(cfg)),
        Recording(f"job_status_code:http_requests:rate{WINDOW}", requests_rate(cfg, "job, status_code")),
        Recording(f"job_endpoint:http_requests:rate{WINDOW}", requests_rate(cfg, "job, endpoint")),
        Recording(f"job:http_requests_errors:ratio_rate{WINDOW}", errors_ratio(cfg)),
        Recording(f"job:http_request_duration_seconds:{_quantile_name(q)}_{WINDOW}", latency_quantile(cfg, q, "job")),
        Recording(f"job_endpoint:http_request_duration_seconds:p50_{WINDOW}",
                  latency_quantile(cfg, 0.5, "job, endpoint")),
        Recording(f"job_endpoint:http_request_duration_seconds:{_quantile_name(q)}_{WINDOW}",
                  latency_quantile(cfg, q, "job, endpoint")),
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
