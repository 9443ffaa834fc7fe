"""PromQL and LogQL of the ``fastapi-metrics`` dashboard."""

from __future__ import annotations

from fastapi_lookout import metrics as m

from ..catalogs import logs as contract
from ..catalogs.app import series_name as s
from ..config import Config
from . import RATE, audit, label_values, or_zero, prom_selector, quantile
from .logs import app_stream

QUANTILES = (0.5, 0.95, 0.99)
ENDPOINT = 'endpoint=~"$endpoint"'


def _rate(series: str, *matchers: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({series}{prom_selector(*matchers)}[{RATE}]))"


def _increase(series: str) -> str:
    return f"sum(increase({series}{prom_selector()}[{RATE}]))"


# --- variables ----------------------------------------------------------------------
def job_values(cfg: Config) -> str:
    """The job variable only offers jobs the config's app selector admits."""
    return label_values(f"{s(m.APP_INFO)}{{{cfg.app_selector}}}", "job")


def instance_values(cfg: Config) -> str:
    return label_values(f'{s(m.APP_INFO)}{{job=~"$job"}}', "instance")


def endpoint_values(cfg: Config) -> str:
    return label_values(f"{s(m.HTTP_REQUESTS)}{prom_selector()}", "endpoint")


# --- RED -------------------------------------------------------------------------------
def request_rate(cfg: Config) -> str:
    return _rate(s(m.HTTP_REQUESTS))


def status_rate(cfg: Config, status_class: str) -> str:
    """Rate of one status class (``"5"`` -> 5xx)."""
    return _rate(s(m.HTTP_REQUESTS), f'status_code=~"{status_class}.."')


def error_ratio(cfg: Config) -> str:
    """sum(5xx)/sum(all): one ratio for the service, never each 5xx series divided by itself."""
    return f"({status_rate(cfg, '5')} or on() vector(0)) / {request_rate(cfg)}"


def latency_quantile(cfg: Config, q: float) -> str:
    return quantile(q, s(m.HTTP_REQUEST_DURATION, "_bucket") + prom_selector())


def latency_by_endpoint(cfg: Config) -> str:
    return quantile(cfg.slo.latency_quantile, s(m.HTTP_REQUEST_DURATION, "_bucket") + prom_selector(ENDPOINT),
                    "endpoint")


def rate_by_endpoint(cfg: Config) -> str:
    return _rate(s(m.HTTP_REQUESTS), ENDPOINT, by="endpoint, method")


def in_progress(cfg: Config) -> str:
    return f"sum by (endpoint) ({s(m.HTTP_REQUESTS_IN_PROGRESS)}{prom_selector()})"


def unmatched_rate(cfg: Config) -> str:
    """Requests no route matched (scanners, typos): one series, however many paths."""
    return or_zero(_rate(s(m.HTTP_REQUESTS), f'endpoint="{m.UNMATCHED_ENDPOINT}"'))


def app_errors(cfg: Config) -> str:
    return or_zero(_rate(s(m.APP_ERRORS), by="error_type, handler"))


def db_latency(cfg: Config) -> str:
    return quantile(cfg.slo.latency_quantile, s(m.DB_QUERY_DURATION, "_bucket") + prom_selector(), "operation")


def app_info(cfg: Config) -> str:
    return f"max by (version, python_version, environment) ({s(m.APP_INFO)}{prom_selector()})"


# --- WebSocket ------------------------------------------------------------------------------
def ws_active(cfg: Config) -> str:
    return f"sum({s(m.WS_CONNECTIONS_ACTIVE)}{prom_selector()})"


def ws_connections_by_status(cfg: Config) -> str:
    return _rate(s(m.WS_CONNECTIONS), by="status")


def ws_messages_received(cfg: Config) -> str:
    return _rate(s(m.WS_MESSAGES_RECEIVED))


def ws_messages_sent(cfg: Config) -> str:
    return _rate(s(m.WS_MESSAGES_SENT))


def ws_processing_by_pkg(cfg: Config) -> str:
    return quantile(cfg.slo.latency_quantile, s(m.WS_MESSAGE_PROCESSING_DURATION, "_bucket") + prom_selector(),
                    "pkg_id")


# --- protection ---------------------------------------------------------------------------------
def rate_limit_hits(cfg: Config) -> str:
    return _rate(s(m.RATE_LIMIT_HITS), by="limit_type")


def auth_attempts(cfg: Config) -> str:
    return _rate(s(m.AUTH_ATTEMPTS), by="status")


# --- audit writer -------------------------------------------------------------------------------
def audit_queue(cfg: Config) -> str:
    return f"sum({s(m.AUDIT_QUEUE_SIZE)}{prom_selector()})"


def audit_written(cfg: Config) -> str:
    return _rate(s(m.AUDIT_EVENTS_WRITTEN))


def audit_enqueued(cfg: Config) -> str:
    return _rate(s(m.AUDIT_EVENTS_ENQUEUED))


def audit_failures(cfg: Config) -> str:
    return _increase(s(m.AUDIT_WRITE_FAILURES))


def audit_dropped(cfg: Config) -> str:
    return _increase(s(m.AUDIT_EVENTS_DROPPED))


def audit_spooled(cfg: Config) -> str:
    return _increase(s(m.AUDIT_EVENTS_SPOOLED))


def audit_batch_latency(cfg: Config) -> str:
    return quantile(cfg.slo.latency_quantile, s(m.AUDIT_BATCH_DURATION, "_bucket") + prom_selector())


def audit_last_write_age(cfg: Config) -> str:
    return f"time() - max({s(m.AUDIT_LAST_WRITE)}{prom_selector()})"


def audit_chain_broken(cfg: Config) -> str:
    return audit.chain_broken(cfg, prom_selector())


def audit_chain_unverified(cfg: Config) -> str:
    return audit.chain_unverified_rows(cfg, prom_selector())


def audit_pruned(cfg: Config) -> str:
    return _increase(s(m.AUDIT_ROWS_PRUNED))


# --- logs (Loki) ----------------------------------------------------------------------------------
def recent_errors(cfg: Config) -> str:
    return f"{app_stream(cfg, levels=contract.ERROR_LEVELS)} | json"


def rate_limit_events(cfg: Config) -> str:
    return f'{app_stream(cfg)} |= "{contract.RATELIMIT_MESSAGE}" | json | logger="{contract.RATELIMIT_LOGGER}"'
