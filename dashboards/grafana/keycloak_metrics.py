"""``keycloak-metrics``: logins, tokens, HTTP, JVM, database pool and caches of a stock Keycloak 26."""

from __future__ import annotations

from grafanalib import core

from ..config import Config
from ..queries import keycloak as q
from . import house as h
from . import uids

UID = uids.KEYCLOAK
LAZY = " Lazy family: shows 0 until the first event."


def _logins(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    return h.Section("Logins and tokens", [
        h.timeseries(h.observe(
            "Successful logins by realm", "event=login with an empty error, per second." + LAZY, "ops", prom,
            h.Query(q.logins(cfg), legend="{{realm}}")), width=8),
        h.timeseries(h.observe(
            "Failed logins by error and realm",
            "event=login with a non-empty error (invalid_user_credentials, user_not_found, ...)." + LAZY, "ops",
            prom, h.Query(q.login_failures(cfg), legend="{{realm}} {{error}}"),
            thresholds=h.Thresholds.of("green", (0.1, "orange"), (1, "red"))), width=8),
        h.stat(h.observe(
            "Login failure ratio", "Failed / all logins. Empty without logins: a ratio of nothing is undefined.",
            "percentunit", prom, q.login_failure_ratio(cfg),
            thresholds=h.Thresholds.of("green", (0.1, "orange"), (0.3, "red"))), width=8, height=8),
        h.timeseries(h.observe(
            "Token, refresh and logout events",
            "Code-to-token exchanges, refreshes, client logins and logouts per second." + LAZY, "ops", prom,
            h.Query(q.token_events(cfg), legend="{{event}}")), width=8),
        h.timeseries(h.observe(
            "Token event errors", "Failed token exchanges and refreshes, by event and error." + LAZY, "ops", prom,
            h.Query(q.token_event_errors(cfg), legend="{{event}} {{error}}")), width=8),
        h.timeseries(h.observe(
            "Password validations by outcome", "Password hash checks: valid, invalid or error (26.1+)." + LAZY,
            "ops", prom, h.Query(q.password_validations(cfg), legend="{{outcome}}")),
            width=8, overrides=h.color_by_name({"valid": "green", "invalid": "orange", "error": "red"})),
    ])


def _http(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    slo = cfg.slo
    return h.Section("HTTP", [
        h.timeseries(h.observe(
            "Request rate by outcome", "Requests per second by outcome class (SUCCESS, CLIENT_ERROR, ...).",
            "reqps", prom, h.Query(q.http_rate_by_outcome(cfg), legend="{{outcome}}")),
            width=8, stack=True,
            overrides=h.color_by_name({"SUCCESS": "green", "REDIRECTION": "blue", "CLIENT_ERROR": "orange",
                                       "SERVER_ERROR": "red"})),
        h.timeseries(h.observe(
            "5xx by URI", "SERVER_ERROR responses per second by URI template." + LAZY, "reqps", prom,
            h.Query(q.http_5xx_by_uri(cfg), legend="{{uri}}"),
            thresholds=h.Thresholds.of("green", (0.01, "red"))), width=8),
        h.stat(h.observe(
            "Active requests", "Requests Keycloak is serving right now.", "short", prom, q.active_requests(cfg)),
            width=4, height=8),
        h.stat(h.observe(
            f"Faster than {slo.latency_p95_seconds} s",
            f"Share of requests under the {slo.latency_p95_seconds} s bound; needs that bound in "
            "--http-metrics-slos.", "percentunit", prom, q.http_within_slo(cfg),
            thresholds=h.Thresholds.of("red", (slo.latency_quantile, "green"))), width=4, height=8),
        h.timeseries(h.observe(
            "Average latency by URI", "Mean request time per URI template (sum / count).", "s", prom,
            h.Query(q.http_avg_latency_by_uri(cfg), legend="{{uri}}")), width=12),
        h.timeseries(h.observe(
            f"Latency p{round(slo.latency_quantile * 100)}",
            "From the SLO buckets only (0.1/0.25/0.5/1 s): coarse, but exact at the bounds.", "s", prom,
            h.Query(q.http_quantile(cfg), legend=f"p{round(slo.latency_quantile * 100)}"),
            thresholds=h.Thresholds.of("green", (slo.latency_p95_seconds, "red"))), width=12),
    ])


def _jvm(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    pressure = h.Thresholds.of("green", (0.8, "orange"), (0.9, "red"))
    return h.Section("JVM", [
        h.timeseries(h.observe(
            "Memory by area", "Used and committed bytes, heap and non-heap, summed over pools; heap max dashed.",
            "bytes", prom,
            h.Query(q.heap_by_area(cfg, "used"), legend="used {{area}}"),
            h.Query(q.heap_by_area(cfg, "committed"), legend="committed {{area}}"),
            h.Query(q.heap_max(cfg), legend="heap max")), width=12),
        h.timeseries(h.observe(
            "Heap after GC", "Share of the long-lived pool still used after collection: the heap-pressure signal.",
            "percentunit", prom, h.Query(q.heap_after_gc(cfg), legend="{{pool}}"), thresholds=pressure),
            width=6),
        h.stat(h.observe(
            "GC overhead", "Share of CPU time spent in garbage collection.", "percentunit", prom,
            q.gc_overhead(cfg), thresholds=h.Thresholds.of("green", (0.05, "orange"), (0.1, "red"))),
            width=6, height=8),
        h.timeseries(h.observe(
            "GC pause time share", "Seconds paused per second, by collector.", "percentunit", prom,
            h.Query(q.gc_time_share(cfg), legend="{{gc}}")), width=8),
        h.timeseries(h.observe(
            "GC pause average / max", "Mean pause per collection and the longest recent pause.", "s", prom,
            h.Query(q.gc_pause_avg(cfg), legend="avg {{gc}}"), h.Query(q.gc_pause_max(cfg), legend="max {{gc}}")),
            width=8),
        h.timeseries(h.observe(
            "Threads by state", "JVM threads per state; many blocked threads mean lock contention.", "short", prom,
            h.Query(q.threads_by_state(cfg), legend="{{state}}"),
            h.Query(q.threads(cfg, "live"), legend="live"), h.Query(q.threads(cfg, "daemon"), legend="daemon"),
            h.Query(q.threads(cfg, "peak"), legend="peak")), width=8),
        h.timeseries(h.observe(
            "CPU", "Process and system CPU usage, 0..1 of all cores.", "percentunit", prom,
            h.Query(q.cpu(cfg, "process"), legend="process"), h.Query(q.cpu(cfg, "system"), legend="system"),
            thresholds=pressure), width=16),
        h.stat(h.observe("Uptime", "Time since the youngest Keycloak instance started.", "s", prom,
                         q.uptime(cfg)), width=8, height=8),
    ])


def _pool(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    return h.Section("Database pool (Agroal)", [
        h.timeseries(h.observe(
            "Connections", "Active, available and max-used connections; 'awaiting' threads wait for one.",
            "short", prom,
            *(h.Query(q.pool(cfg, kind), legend=f"{kind} {{{{datasource}}}}")
              for kind in ("active", "available", "max_used", "awaiting"))),
            width=12),
        h.timeseries(h.observe(
            "Blocking time", "Time threads waited for a connection (average and max), milliseconds.", "ms", prom,
            h.Query(q.pool_blocking(cfg, "average"), legend="avg {{datasource}}"),
            h.Query(q.pool_blocking(cfg, "max"), legend="max {{datasource}}"),
            thresholds=h.Thresholds.of("green", (100, "orange"), (1000, "red"))), width=12),
    ])


def _caches(cfg: Config) -> h.Section:
    prom = h.prometheus(cfg)
    return h.Section("Infinispan caches", [
        h.timeseries(h.observe(
            "Cache entries", "Approximate in-memory entries per cache and node (not a session count).", "short",
            prom, h.Query(q.cache_entries(cfg), legend="{{cache}}")), width=12),
        h.timeseries(h.observe(
            "Cache hit ratio", "hits / (hits + misses) per cache; empty for caches nobody read.", "percentunit",
            prom, h.Query(q.cache_hit_ratio(cfg), legend="{{cache}}"),
            thresholds=h.Thresholds.of("red", (0.5, "orange"), (0.8, "green"))), width=12),
    ])


def variables(cfg: Config) -> list[h.Variable]:
    prom = h.prometheus(cfg)
    return [
        *h.job_and_instance(prom, q.job_values(cfg), q.instance_values(cfg)),
    ]


def build(cfg: Config) -> core.Dashboard:
    return h.dashboard(
        UID, "Keycloak",
        "Stock Keycloak 26 metrics (management port /metrics): user events, HTTP, JVM, Agroal, Infinispan.",
        [_logins(cfg), _http(cfg), _jvm(cfg), _pool(cfg), _caches(cfg)],
        variables(cfg), tags=("keycloak", "observability-bundle"),
        links=[h.Link("FastAPI service", f"/d/{uids.FASTAPI}")],
    )
