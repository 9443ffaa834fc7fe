"""PromQL of the ``keycloak-metrics`` dashboard: only families a stock Keycloak 26 exports.

Filters use the ``job``/``instance`` variables only (a static scrape has no
namespace/pod/container). Lazy families are wrapped in ``or on() vector(0)``.
"""

from __future__ import annotations

from ..catalogs.keycloak import family as f
from ..catalogs.keycloak import series
from ..config import Config
from . import RATE, label_values, or_zero, prom_selector, quantile

USER_EVENTS = f("keycloak_user_events_total")
HTTP = "http_server_requests_seconds"
TOKEN_EVENTS = ("code_to_token", "refresh_token", "logout", "client_login")


def _sel(*matchers: str) -> str:
    return prom_selector(*matchers)


def _rate(name: str, *matchers: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({name}{_sel(*matchers)}[{RATE}]))"


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
def logins(cfg: Config) -> str:
    return or_zero(_rate(USER_EVENTS, 'event="login"', 'error=""', by="realm"))


def login_failures(cfg: Config) -> str:
    """Failed logins keep event="login" and carry a non-empty error."""
    return or_zero(_rate(USER_EVENTS, 'event="login"', 'error!=""', by="realm, error"))


def login_failure_ratio(cfg: Config) -> str:
    """Undefined without logins, honestly: no vector(0) here."""
    failed = _rate(USER_EVENTS, 'event="login"', 'error!=""')
    total = _rate(USER_EVENTS, 'event="login"')
    return f"{failed} / {total}"


def token_events(cfg: Config) -> str:
    events = "|".join(TOKEN_EVENTS)
    return or_zero(_rate(USER_EVENTS, f'event=~"{events}"', 'error=""', by="event"))


def token_event_errors(cfg: Config) -> str:
    events = "|".join(TOKEN_EVENTS)
    return or_zero(_rate(USER_EVENTS, f'event=~"{events}"', 'error!=""', by="event, error"))


def password_validations(cfg: Config) -> str:
    return or_zero(_rate(f("keycloak_credentials_password_hashing_validations_total"), by="outcome"))


# --- HTTP -------------------------------------------------------------------------------------------
def http_rate_by_outcome(cfg: Config) -> str:
    return _rate(series(HTTP, "_count"), by="outcome")


def http_5xx_by_uri(cfg: Config) -> str:
    return or_zero(_rate(series(HTTP, "_count"), 'outcome="SERVER_ERROR"', by="uri"))


def http_avg_latency_by_uri(cfg: Config) -> str:
    total = _rate(series(HTTP, "_sum"), by="uri")
    count = _rate(series(HTTP, "_count"), by="uri")
    return f"{total} / {count}"


def http_within_slo(cfg: Config) -> str:
    """Share of requests faster than the latency objective (needs that bound in --http-metrics-slos)."""
    bound = java_double(cfg.slo.latency_p95_seconds)
    fast = _rate(series(HTTP, "_bucket"), f'le="{bound}"')
    total = _rate(series(HTTP, "_bucket"), 'le="+Inf"')
    return f"{fast} / {total}"


def http_quantile(cfg: Config) -> str:
    return quantile(cfg.slo.latency_quantile, series(HTTP, "_bucket") + _sel())


def active_requests(cfg: Config) -> str:
    return f"sum({f('http_server_active_requests')}{_sel()})"


# --- JVM --------------------------------------------------------------------------------------------------
def heap_by_area(cfg: Config, kind: str) -> str:
    """``kind``: used | committed. One series per pool upstream, so sum by area."""
    return f"sum by (area) ({f(f'jvm_memory_{kind}_bytes')}{_sel()})"


def heap_max(cfg: Config) -> str:
    """Pools without a limit report -1; only positive maxima add up."""
    heap = _sel('area="heap"')
    return f"sum({f('jvm_memory_max_bytes')}{heap} > 0)"


def heap_after_gc(cfg: Config) -> str:
    heap = _sel('area="heap"')
    return f"max by (pool) ({f('jvm_memory_usage_after_gc_percent')}{heap})"


def gc_pause_avg(cfg: Config) -> str:
    total = _rate(series("jvm_gc_pause_seconds", "_sum"), by="gc")
    count = _rate(series("jvm_gc_pause_seconds", "_count"), by="gc")
    return f"{total} / {count}"


def gc_pause_max(cfg: Config) -> str:
    return f"max by (gc) ({f('jvm_gc_pause_seconds_max')}{_sel()})"


def gc_time_share(cfg: Config) -> str:
    """Seconds paused per second: the fraction of wall time spent in GC pauses."""
    return _rate(series("jvm_gc_pause_seconds", "_sum"), by="gc")


def gc_overhead(cfg: Config) -> str:
    return f"max({f('jvm_gc_overhead')}{_sel()})"


def threads_by_state(cfg: Config) -> str:
    return f"sum by (state) ({f('jvm_threads_states_threads')}{_sel()})"


def threads(cfg: Config, kind: str) -> str:
    return f"sum({f(f'jvm_threads_{kind}_threads')}{_sel()})"


def cpu(cfg: Config, scope: str) -> str:
    """``scope``: process | system (0..1 of all cores)."""
    return f"max({f(f'{scope}_cpu_usage')}{_sel()})"


def uptime(cfg: Config) -> str:
    return f"min({f('process_uptime_seconds')}{_sel()})"


# --- Agroal (database pool) -------------------------------------------------------------------------------
def pool(cfg: Config, kind: str) -> str:
    """``kind``: active | available | awaiting | max_used. Gauges, despite the _count suffix."""
    return f"sum by (datasource) ({f(f'agroal_{kind}_count')}{_sel()})"


def pool_blocking(cfg: Config, kind: str) -> str:
    """``kind``: average | max (milliseconds)."""
    return f"max by (datasource) ({f(f'agroal_blocking_time_{kind}_milliseconds')}{_sel()})"


# --- Infinispan -----------------------------------------------------------------------------------------------
def cache_entries(cfg: Config) -> str:
    return f"sum by (cache) ({f('vendor_statistics_approximate_entries')}{_sel()})"


def cache_hit_ratio(cfg: Config) -> str:
    hits = _rate(series("vendor_statistics_hit_times_seconds", "_count"), by="cache")
    misses = _rate(series("vendor_statistics_miss_times_seconds", "_count"), by="cache")
    return f"{hits} / ({hits} + {misses})"
