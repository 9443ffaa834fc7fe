"""PromQL of the ``keycloak-metrics`` dashboard: only families a stock Keycloak 26 exports.

Filters use the ``job``/``instance`` variables only (a static scrape has no
namespace/pod/container). Lazy families are wrapped in ``or on() vector(0)``.
"""

from __future__ import annotations

from ..catalogs.keycloak import family as f
from ..catalogs.keycloak import series
from ..config import Config
from . import PANEL, Scope, aggregate, increase, label_values, quantile, rate

USER_EVENTS = f("keycloak_user_events_total")
HTTP = "http_server_requests_seconds"
TOKEN_EVENTS = ("code_to_token", "refresh_token", "logout", "client_login")


def java_double(value: float) -> str:
    """How Keycloak (Java) writes an ``le`` bound: 0.25 -> "0.25", 1 -> "1.0"."""
    text = repr(float(value))
    return text if "e" not in text else f"{value:.1E}"


# --- variables ----------------------------------------------------------------------------------
def job_values(cfg: Config) -> str:
    return label_values(f"{f('jvm_info_total')}{{{cfg.keycloak_selector}}}", "job")


def instance_values(cfg: Config) -> str:
    return label_values(f'{f("jvm_info_total")}{{job=~"$job"}}', "instance")


# --- user events ----------------------------------------------------------------------------------
def logins(cfg: Config, scope: Scope = PANEL) -> str:
    return scope.or_zero(rate(scope, USER_EVENTS, 'event="login"', 'error=""', by=("realm",)))


def login_failures(cfg: Config, scope: Scope = PANEL) -> str:
    """Failed logins keep event="login" and carry a non-empty error."""
    return scope.or_zero(rate(scope, USER_EVENTS, 'event="login"', 'error!=""', by=("realm", "error")))


def login_failure_ratio(cfg: Config, scope: Scope = PANEL) -> str:
    """Undefined without logins, honestly: no vector(0) here."""
    failed = rate(scope, USER_EVENTS, 'event="login"', 'error!=""')
    total = rate(scope, USER_EVENTS, 'event="login"')
    return f"{failed} / {total}"


def login_attempts(cfg: Config, scope: Scope = PANEL, *, count: bool = False) -> str:
    """Every login attempt, failed or not: per second, or (``count``) in the scope's window."""
    fn = increase if count else rate
    return fn(scope, USER_EVENTS, 'event="login"')


def token_events(cfg: Config, scope: Scope = PANEL) -> str:
    events = "|".join(TOKEN_EVENTS)
    return scope.or_zero(rate(scope, USER_EVENTS, f'event=~"{events}"', 'error=""', by=("event",)))


def token_event_errors(cfg: Config, scope: Scope = PANEL) -> str:
    events = "|".join(TOKEN_EVENTS)
    return scope.or_zero(rate(scope, USER_EVENTS, f'event=~"{events}"', 'error!=""', by=("event", "error")))


def password_validations(cfg: Config, scope: Scope = PANEL) -> str:
    return scope.or_zero(rate(scope, f("keycloak_credentials_password_hashing_validations_total"), by=("outcome",)))


# --- HTTP -------------------------------------------------------------------------------------------
def http_rate_by_outcome(cfg: Config, scope: Scope = PANEL) -> str:
    return rate(scope, series(HTTP, "_count"), by=("outcome",))


def http_5xx_by_uri(cfg: Config, scope: Scope = PANEL) -> str:
    return scope.or_zero(rate(scope, series(HTTP, "_count"), 'outcome="SERVER_ERROR"', by=("uri",)))


def http_avg_latency_by_uri(cfg: Config, scope: Scope = PANEL) -> str:
    total = rate(scope, series(HTTP, "_sum"), by=("uri",))
    count = rate(scope, series(HTTP, "_count"), by=("uri",))
    return f"{total} / {count}"


def http_within_slo(cfg: Config, scope: Scope = PANEL) -> str:
    """Share of requests faster than the latency objective (needs that bound in --http-metrics-slos)."""
    bound = java_double(cfg.slo.latency_p95_seconds)
    fast = rate(scope, series(HTTP, "_bucket"), f'le="{bound}"')
    total = rate(scope, series(HTTP, "_bucket"), 'le="+Inf"')
    return f"{fast} / {total}"


def http_quantile(cfg: Config, scope: Scope = PANEL) -> str:
    return quantile(scope, cfg.slo.latency_quantile, series(HTTP, "_bucket"))


def active_requests(cfg: Config, scope: Scope = PANEL) -> str:
    return f"sum({f('http_server_active_requests')}{scope.sel()})"


# --- JVM --------------------------------------------------------------------------------------------------
def heap_by_area(cfg: Config, kind: str, scope: Scope = PANEL) -> str:
    """``kind``: used | committed. One series per pool upstream, so sum by area."""
    return f"sum by (area) ({f(f'jvm_memory_{kind}_bytes')}{scope.sel()})"


def heap_max(cfg: Config, scope: Scope = PANEL) -> str:
    """Pools without a limit report -1; only positive maxima add up."""
    heap = scope.sel('area="heap"')
    return f"sum({f('jvm_memory_max_bytes')}{heap} > 0)"


def heap_after_gc(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "max", f("jvm_memory_usage_after_gc_percent"), 'area="heap"', by=("pool",))


def gc_pause_avg(cfg: Config, scope: Scope = PANEL) -> str:
    total = rate(scope, series("jvm_gc_pause_seconds", "_sum"), by=("gc",))
    count = rate(scope, series("jvm_gc_pause_seconds", "_count"), by=("gc",))
    return f"{total} / {count}"


def gc_pause_max(cfg: Config, scope: Scope = PANEL) -> str:
    return f"max by (gc) ({f('jvm_gc_pause_seconds_max')}{scope.sel()})"


def gc_time_share(cfg: Config, scope: Scope = PANEL) -> str:
    """Seconds paused per second: the fraction of wall time spent in GC pauses."""
    return rate(scope, series("jvm_gc_pause_seconds", "_sum"), by=("gc",))


def gc_overhead(cfg: Config, scope: Scope = PANEL) -> str:
    return aggregate(scope, "max", f("jvm_gc_overhead"))


def threads_by_state(cfg: Config, scope: Scope = PANEL) -> str:
    return f"sum by (state) ({f('jvm_threads_states_threads')}{scope.sel()})"


def threads(cfg: Config, kind: str, scope: Scope = PANEL) -> str:
    return f"sum({f(f'jvm_threads_{kind}_threads')}{scope.sel()})"


def cpu(cfg: Config, kind: str, scope: Scope = PANEL) -> str:
    """``kind``: process | system (0..1 of all cores)."""
    return f"max({f(f'{kind}_cpu_usage')}{scope.sel()})"


def uptime(cfg: Config, scope: Scope = PANEL) -> str:
    return f"min({f('process_uptime_seconds')}{scope.sel()})"


# --- Agroal (database pool) -------------------------------------------------------------------------------
def pool(cfg: Config, kind: str, scope: Scope = PANEL) -> str:
    """``kind``: active | available | awaiting | max_used. Gauges, despite the _count suffix."""
    return aggregate(scope, "sum", f(f"agroal_{kind}_count"), by=("datasource",))


def pool_blocking(cfg: Config, kind: str, scope: Scope = PANEL) -> str:
    """``kind``: average | max (milliseconds)."""
    return f"max by (datasource) ({f(f'agroal_blocking_time_{kind}_milliseconds')}{scope.sel()})"


# --- Infinispan -----------------------------------------------------------------------------------------------
def cache_entries(cfg: Config, scope: Scope = PANEL) -> str:
    return f"sum by (cache) ({f('vendor_statistics_approximate_entries')}{scope.sel()})"


def cache_hit_ratio(cfg: Config, scope: Scope = PANEL) -> str:
    hits = rate(scope, series("vendor_statistics_hit_times_seconds", "_count"), by=("cache",))
    misses = rate(scope, series("vendor_statistics_miss_times_seconds", "_count"), by=("cache",))
    return f"{hits} / ({hits} + {misses})"
