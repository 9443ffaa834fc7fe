"""PromQL of the service's panels and rules (RED, WebSocket, protection, audit writer), and its log panels."""

from __future__ import annotations

from fastapi_lookout import metrics as m

from ..catalogs import logs as contract
from ..catalogs.app import series_name as s
from ..config import Config
from . import PANEL, Scope, aggregate, audit, increase, label_values, quantile, rate
from .logs import app_stream

QUANTILES = (0.5, 0.95, 0.99)
ENDPOINT = 'endpoint=~"$endpoint"'


# --- variables ----------------------------------------------------------------------
def job_values(cfg: Config) -> str:
    """The job variable only offers jobs the config's app selector admits."""
    return label_values(f"{s(m.APP_INFO)}{{{cfg.app_selector}}}", "job")


def instance_values(cfg: Config) -> str:
    return label_values(f'{s(m.APP_INFO)}{{job=~"$job"}}', "instance")


def endpoint_values(cfg: Config) -> str:
    return label_values(f"{s(m.HTTP_REQUESTS)}{PANEL.sel()}", "endpoint")


# --- RED -------------------------------------------------------------------------------
def request_rate(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.HTTP_REQUESTS))


def request_count(cfg: Config, scope: Scope = PANEL) -> str:
    """Requests answered in the scope's window (a rule's minimum-traffic guard)."""
    return increase(scope, s(m.HTTP_REQUESTS))


def status_classes(cfg: Config, scope: Scope = PANEL) -> str:
    """Responses per second by status class, one series per class that really occurs (``class`` = "2" for 2xx):
    no query for a class the service never sends."""
    inner = f"rate({s(m.HTTP_REQUESTS)}{scope.sel()}[{scope.window}])"
    return f'sum by (class) (label_replace({inner}, "class", "$1", "status_code", "(.).."))'


def status_rate(cfg: Config, status_class: str, scope: Scope = PANEL) -> str:
    """Rate of one status class (``"5"`` -> 5xx)."""
    return rate(scope, s(m.HTTP_REQUESTS), f'status_code=~"{status_class}.."')


def error_ratio(cfg: Config, scope: Scope = PANEL) -> str:
    """sum(5xx)/sum(all): one ratio for the service, never each 5xx series divided by itself; 0, not
    nothing, while there is traffic but no 5xx series yet (a rule keeps its grouping labels for that)."""
    zero = "on() vector(0)" if scope.by is None else f"{request_rate(cfg, scope)} * 0"
    return f"({status_rate(cfg, '5', scope)} or {zero}) / {request_rate(cfg, scope)}"


def latency_quantile(cfg: Config, q: float, scope: Scope = PANEL) -> str:
    return quantile(scope, q, s(m.HTTP_REQUEST_DURATION, "_bucket"))


def latency_by_endpoint(cfg: Config, scope: Scope = PANEL) -> str:
    return quantile(scope, cfg.slo.latency_quantile, s(m.HTTP_REQUEST_DURATION, "_bucket"), "endpoint",
                    matchers=(ENDPOINT,) if scope.panel else ())


def rate_by_endpoint(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.HTTP_REQUESTS), *((ENDPOINT,) if scope.panel else ()), by=("endpoint", "method"))


def in_progress(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "sum", s(m.HTTP_REQUESTS_IN_PROGRESS), by=("endpoint",))


def unmatched_rate(cfg: Config, scope: Scope = PANEL) -> str:
    """Requests no route matched (scanners, typos): one series, however many paths."""
    return scope.or_zero(rate(scope, s(m.HTTP_REQUESTS), f'endpoint="{m.UNMATCHED_ENDPOINT}"'))


def app_errors(cfg: Config, scope: Scope = PANEL) -> str:
    return scope.or_zero(rate(scope, s(m.APP_ERRORS), by=("error_type", "handler")))


def db_latency(cfg: Config, scope: Scope = PANEL) -> str:
    return quantile(scope, cfg.slo.latency_quantile, s(m.DB_QUERY_DURATION, "_bucket"), "operation")


def app_info(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "max", s(m.APP_INFO), by=("version", "python_version", "environment"))


def targets_up(cfg: Config, jobs: tuple[str, ...], *, panel: bool = True) -> str:
    """Scrape health of the given jobs: 1 per target up, 0 per target down (the TargetDown signal). Every
    scraped job, whatever the dashboard's ``$job``: a target that is down has no other series to select by."""
    up = f'up{{job=~"{"|".join(jobs)}"}}'
    return f"max by (job, instance) ({up})" if panel else up


# --- WebSocket ------------------------------------------------------------------------------
def ws_active(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "sum", s(m.WS_CONNECTIONS_ACTIVE))


def ws_connections_by_status(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.WS_CONNECTIONS), by=("status",))


def ws_messages_received(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.WS_MESSAGES_RECEIVED))


def ws_messages_sent(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.WS_MESSAGES_SENT))


def ws_processing_by_pkg(cfg: Config, scope: Scope = PANEL) -> str:
    return quantile(scope, cfg.slo.latency_quantile, s(m.WS_MESSAGE_PROCESSING_DURATION, "_bucket"), "pkg_id")


# --- protection ---------------------------------------------------------------------------------
def rate_limit_hits(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.RATE_LIMIT_HITS), by=("limit_type",))


def auth_attempts(cfg: Config, scope: Scope = PANEL, *matchers: str) -> str:
    return rate(scope, s(m.AUTH_ATTEMPTS), *matchers, by=("status",))


# --- audit writer -------------------------------------------------------------------------------
def audit_queue(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "sum", s(m.AUDIT_QUEUE_SIZE))


def audit_written(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.AUDIT_EVENTS_WRITTEN))


def audit_enqueued(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, s(m.AUDIT_EVENTS_ENQUEUED))


def audit_failures(cfg: Config, scope: Scope = PANEL) -> str:
    return increase(scope, s(m.AUDIT_WRITE_FAILURES))


def audit_dropped(cfg: Config, scope: Scope = PANEL) -> str:
    return increase(scope, s(m.AUDIT_EVENTS_DROPPED))


def audit_spooled(cfg: Config, scope: Scope = PANEL) -> str:
    return increase(scope, s(m.AUDIT_EVENTS_SPOOLED))


def audit_batch_latency(cfg: Config, scope: Scope = PANEL) -> str:
    return quantile(scope, cfg.slo.latency_quantile, s(m.AUDIT_BATCH_DURATION, "_bucket"))


def audit_last_write_age(cfg: Config, scope: Scope = PANEL) -> str:
    if scope.panel:
        return f"time() - max({s(m.AUDIT_LAST_WRITE)}{scope.sel()})"
    return f"time() - {s(m.AUDIT_LAST_WRITE)}{scope.sel()}"


def audit_chain_broken(cfg: Config, scope: Scope = PANEL) -> str:
    return audit.chain_broken(cfg, scope)


def audit_chain_unverified(cfg: Config, scope: Scope = PANEL) -> str:
    return audit.chain_unverified_rows(cfg, scope)


def audit_foreign_spool(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "max" if scope.by is not None else "sum", s(m.AUDIT_SPOOL_FOREIGN_ROWS))


def audit_pruned(cfg: Config, scope: Scope = PANEL) -> str:
    return increase(scope, s(m.AUDIT_ROWS_PRUNED))


# --- logs (Loki) ----------------------------------------------------------------------------------
def recent_errors(cfg: Config) -> str:
    return f"{app_stream(cfg, levels=contract.ERROR_LEVELS)} | json"


def rate_limit_events(cfg: Config) -> str:
    return f'{app_stream(cfg)} |= "{contract.RATELIMIT_MESSAGE}" | json | logger="{contract.RATELIMIT_LOGGER}"'
