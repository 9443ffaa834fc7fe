"""A stock Keycloak 26's metrics over a history (the families of ``catalogs.keycloak``): quiet, or under attack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..catalogs import keycloak as kc
from .service import NEVER, Window
from .world import Job, World

REALM: Final = "demo"
CLIENT: Final = "authors-app"
SLOS: Final = (0.1, 0.25, 0.5, 1.0)
"""KC_HTTP_METRICS_SLOS: the only buckets Keycloak's HTTP histogram has."""
URIS: Final = ("/realms/{realm}/protocol/openid-connect/token", "/realms/{realm}/protocol/openid-connect/certs")


@dataclass(frozen=True)
class Storm:
    """A failed-login storm and the JVM trouble it brings, each a window before the end."""

    failed_logins: Window = NEVER
    heap_pressure: Window = NEVER
    gc_overhead: Window = NEVER
    pool_waiters: Window = NEVER


def _f(name: str) -> str:
    return kc.family(name)


def keycloak(world: World, job: Job, storm: Storm) -> None:
    world.up(job)
    events = "keycloak_user_events"
    base = {"client_id": CLIENT, "idp": "", "realm": REALM}
    world.counter(job, events, {**base, "event": "login", "error": ""}, lambda t: 0.2)
    world.counter(job, events, {**base, "event": "login", "error": "invalid_user_credentials"},
                  lambda t: 1.0 if storm.failed_logins(t) else 0.002)
    for event in ("code_to_token", "refresh_token", "logout", "client_login"):
        world.counter(job, events, {**base, "event": event, "error": ""}, lambda t: 0.05)
    world.counter(job, events, {**base, "event": "refresh_token", "error": "invalid_token"}, lambda t: 0.001)
    for outcome, rate in (("valid", 0.2), ("invalid", 0.002), ("error", 0.0)):
        world.counter(job, "keycloak_credentials_password_hashing_validations",
                      {"algorithm": "argon2", "hashing_strength": "5", "outcome": outcome, "realm": REALM},
                      lambda t, r=rate, o=outcome: 1.0 if o == "invalid" and storm.failed_logins(t) else r)
    _http(world, job, storm)
    _jvm(world, job, storm)
    _pool(world, job, storm)
    _caches(world, job)


def _http(world: World, job: Job, storm: Storm) -> None:
    for uri in URIS:
        for outcome, status, rate in (("SUCCESS", "200", 0.3), ("CLIENT_ERROR", "401", 0.002),
                                      ("SERVER_ERROR", "500", 0.0)):
            labels = {"method": "POST" if "token" in uri else "GET", "outcome": outcome, "status": status, "uri": uri}
            attack = outcome == "CLIENT_ERROR" and "token" in uri
            world.histogram(job, "http_server_requests_seconds", labels,
                            lambda t, r=rate, a=attack: 1.0 if a and storm.failed_logins(t) else r,
                            lambda t: 0.05, SLOS)
            world.gauge(job, _f("http_server_requests_seconds_max"), labels, lambda t: 0.08)
    world.gauge(job, _f("http_server_active_requests"), {}, lambda t: 1.0)


def _jvm(world: World, job: Job, storm: Storm) -> None:
    world.counter(job, "jvm_info", {"runtime": "OpenJDK Runtime Environment", "vendor": "Red Hat, Inc.",
                                    "version": "21.0.6"}, lambda t: 0.0, start=1.0)
    for area, pool, used, committed, top in (("heap", "G1 Old Gen", 300e6, 512e6, 1024e6),
                                             ("heap", "G1 Eden Space", 50e6, 128e6, -1.0),
                                             ("nonheap", "Metaspace", 120e6, 130e6, -1.0)):
        labels = {"area": area, "id": pool}
        world.gauge(job, _f("jvm_memory_used_bytes"), labels, lambda t, u=used: u)
        world.gauge(job, _f("jvm_memory_committed_bytes"), labels, lambda t, c=committed: c)
        world.gauge(job, _f("jvm_memory_max_bytes"), labels, lambda t, x=top: x)
    world.gauge(job, _f("jvm_memory_usage_after_gc_percent"), {"area": "heap", "pool": "long-lived"},
                lambda t: 0.95 if storm.heap_pressure(t) else 0.4)
    gc = {"action": "end of minor GC", "cause": "G1 Evacuation Pause", "gc": "G1 Young Generation"}
    world.summary(job, "jvm_gc_pause_seconds", gc, lambda t: 0.5, lambda t: 0.01)
    world.gauge(job, _f("jvm_gc_pause_seconds_max"), gc, lambda t: 0.02)
    world.gauge(job, _f("jvm_gc_overhead"), {}, lambda t: 0.3 if storm.gc_overhead(t) else 0.01)
    for name, value in (("jvm_threads_live_threads", 60.0), ("jvm_threads_daemon_threads", 40.0),
                        ("jvm_threads_peak_threads", 70.0), ("jvm_classes_loaded_classes", 21000.0),
                        ("process_cpu_usage", 0.05), ("system_cpu_usage", 0.2), ("process_files_open_files", 300.0),
                        ("system_load_average_1m", 0.5)):
        world.gauge(job, _f(name), {}, lambda t, v=value: v)
    for state, count in (("runnable", 20.0), ("waiting", 30.0), ("timed-waiting", 10.0), ("blocked", 0.0)):
        world.gauge(job, _f("jvm_threads_states_threads"), {"state": state}, lambda t, c=count: c)
    started = world.end - world.span - 3600
    world.gauge(job, _f("process_start_time_seconds"), {}, lambda t: float(started))
    world.gauge(job, _f("process_uptime_seconds"), {}, lambda t: world.end + t - started)


def _pool(world: World, job: Job, storm: Storm) -> None:
    labels = {"datasource": "default"}
    gauges: dict[str, Callable[[float], float]] = {
        "agroal_active_count": lambda t: 20.0 if storm.pool_waiters(t) else 2.0,
        "agroal_available_count": lambda t: 0.0 if storm.pool_waiters(t) else 8.0,
        "agroal_awaiting_count": lambda t: 3.0 if storm.pool_waiters(t) else 0.0,
        "agroal_max_used_count": lambda t: 20.0 if storm.pool_waiters(t) else 5.0,
        "agroal_blocking_time_average_milliseconds": lambda t: 400.0 if storm.pool_waiters(t) else 1.0,
        "agroal_blocking_time_max_milliseconds": lambda t: 2000.0 if storm.pool_waiters(t) else 5.0,
        "agroal_blocking_time_total_milliseconds": lambda t: 1000.0,
    }
    for name, value in gauges.items():
        world.gauge(job, _f(name), labels, value)
    for name in ("acquire", "creation", "destroy", "flush", "invalid", "leak_detection", "reap"):
        world.counter(job, f"agroal_{name}_count", labels, lambda t, n=name: 1.0 if n == "acquire" else 0.0)


def _caches(world: World, job: Job) -> None:
    for cache in ("realms", "users", "sessions", "authenticationSessions"):
        labels = {"cache": cache, "cache_manager": "keycloak", "node": "keycloak-0"}
        world.gauge(job, _f("vendor_statistics_approximate_entries"), labels, lambda t: 100.0)
        world.summary(job, "vendor_statistics_hit_times_seconds", labels, lambda t: 9.0, lambda t: 0.0001)
        world.summary(job, "vendor_statistics_miss_times_seconds", labels, lambda t: 0.5, lambda t: 0.0005)
