"""What a stock Keycloak 26 exports on its management port (shared/reference/keycloak.md).

Only families listed here may appear in the Keycloak dashboard; the PromQL
checker validates Keycloak panels against this exactly as app panels against
the app catalog. Names are the exposed family names (counters end in
``_total`` as Keycloak writes them); kinds follow ``# TYPE``, never a suffix:
the ``agroal_*_count`` families are gauges.

Checked against the pinned Keycloak (26.8, ``Images.keycloak``): each family is
in Keycloak's observability guides (docs/guides/observability/metrics-for-
troubleshooting-*.adoc) or comes from the Micrometer/Agroal binders Quarkus
registers; tests/stack/test_upstream_configs.py names the page of each one and
the options that turn them on. The 26.3 to 26.8 upgrading notes rename none.
Successful user events carry ``error=""``: Keycloak 26 writes empty tags
(``event-metrics-user-allow-empty-tags``, true until 27.0 per keycloak#48011),
and for Prometheus an empty label is a missing one, so ``error=""`` matches a
success whether the label is written empty or left out (as the guide's sample
shows). Keycloak 27 is to write ``none`` instead: re-check the ``error``
selectors in queries/keycloak.py before taking it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from . import MetricCatalog, Series, expand


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: str  # counter | gauge | histogram | summary
    labels: tuple[str, ...]
    lazy: bool = False
    """Absent until the first event: rate panels need ``or on() vector(0)``."""


_HTTP = ("method", "outcome", "status", "uri")
_MEM = ("area", "id")
_GC = ("action", "cause", "gc")
_POOL = ("datasource",)
_CACHE = ("cache", "cache_manager", "node")

FAMILIES: Final[tuple[Family, ...]] = (
    # user events (26.2+, or 26.1 preview); client_id and idp are opt-in tags
    Family("keycloak_user_events_total", "counter", ("client_id", "error", "event", "idp", "realm"), lazy=True),
    Family("keycloak_credentials_password_hashing_validations_total", "counter",
           ("algorithm", "hashing_strength", "outcome", "realm"), lazy=True),
    # HTTP server (histogram thanks to --http-metrics-slos)
    Family("http_server_requests_seconds", "histogram", _HTTP),
    Family("http_server_requests_seconds_max", "gauge", _HTTP),
    Family("http_server_active_requests", "gauge", ()),
    # JVM
    Family("jvm_info_total", "counter", ("runtime", "vendor", "version")),
    Family("jvm_memory_used_bytes", "gauge", _MEM),
    Family("jvm_memory_committed_bytes", "gauge", _MEM),
    Family("jvm_memory_max_bytes", "gauge", _MEM),
    Family("jvm_memory_usage_after_gc_percent", "gauge", ("area", "pool")),
    Family("jvm_gc_pause_seconds", "summary", _GC),
    Family("jvm_gc_pause_seconds_max", "gauge", _GC),
    Family("jvm_gc_overhead", "gauge", ()),
    Family("jvm_threads_live_threads", "gauge", ()),
    Family("jvm_threads_daemon_threads", "gauge", ()),
    Family("jvm_threads_peak_threads", "gauge", ()),
    Family("jvm_threads_states_threads", "gauge", ("state",)),
    Family("jvm_classes_loaded_classes", "gauge", ()),
    # process and system
    Family("process_cpu_usage", "gauge", ()),
    Family("system_cpu_usage", "gauge", ()),
    Family("process_start_time_seconds", "gauge", ()),
    Family("process_uptime_seconds", "gauge", ()),
    Family("process_files_open_files", "gauge", ()),
    Family("system_load_average_1m", "gauge", ()),
    # Agroal, Keycloak's database pool: the *_count families are gauges
    Family("agroal_active_count", "gauge", _POOL),
    Family("agroal_available_count", "gauge", _POOL),
    Family("agroal_awaiting_count", "gauge", _POOL),
    Family("agroal_max_used_count", "gauge", _POOL),
    Family("agroal_acquire_count_total", "counter", _POOL),
    Family("agroal_creation_count_total", "counter", _POOL),
    Family("agroal_destroy_count_total", "counter", _POOL),
    Family("agroal_flush_count_total", "counter", _POOL),
    Family("agroal_invalid_count_total", "counter", _POOL),
    Family("agroal_leak_detection_count_total", "counter", _POOL),
    Family("agroal_reap_count_total", "counter", _POOL),
    Family("agroal_blocking_time_average_milliseconds", "gauge", _POOL),
    Family("agroal_blocking_time_max_milliseconds", "gauge", _POOL),
    Family("agroal_blocking_time_total_milliseconds", "gauge", _POOL),
    # Infinispan caches
    Family("vendor_statistics_approximate_entries", "gauge", _CACHE),
    Family("vendor_statistics_hit_times_seconds", "summary", _CACHE),
    Family("vendor_statistics_miss_times_seconds", "summary", _CACHE),
)

BY_NAME: Final = {f.name: f for f in FAMILIES}


def family(name: str) -> str:
    """A family name, checked against the catalog (so a typo fails at import time of the query)."""
    if name not in BY_NAME:
        raise LookupError(f"{name!r} is not a Keycloak 26 family (see dashboards/catalogs/keycloak.py)")
    return name


def series(name: str, suffix: str = "") -> str:
    """An exposed series of a catalog family: ``series("jvm_gc_pause_seconds", "_sum")``."""
    fam = BY_NAME.get(name)
    if fam is None:
        raise LookupError(f"{name!r} is not a Keycloak 26 family (see dashboards/catalogs/keycloak.py)")
    full = f"{name}{suffix}"
    if full not in expand(fam.name, fam.type, fam.labels, "keycloak"):
        raise LookupError(f"{fam.type} {name!r} exposes no series {full!r}")
    return full


def catalog(families: tuple[Family, ...] = FAMILIES) -> MetricCatalog:
    out: dict[str, Series] = {}
    composite: dict[str, str] = {}
    for fam in families:
        out.update(expand(fam.name, fam.type, fam.labels, "keycloak"))
        if fam.type in ("histogram", "summary"):
            composite[fam.name] = fam.type
    return MetricCatalog(out, composite)


_LIFECYCLE = ("pool lifecycle counter: the pool panels read the gauges (active, available, awaiting, max used) and "
              "the blocking time; these explain what those show, read them in Prometheus when they do")
UNOBSERVED: Final[dict[str, str]] = {
    **{f"agroal_{kind}_count_total": _LIFECYCLE for kind in ("acquire", "creation", "destroy", "flush", "invalid",
                                                             "reap")},
    "agroal_blocking_time_total_milliseconds": _LIFECYCLE,
    "agroal_leak_detection_count_total": "needs Agroal's leak detection timeout, which Keycloak leaves off",
    "http_server_requests_seconds_max": ("the slowest request of each scrape window: the latency panels read the "
                                         "buckets, which aggregate across instances"),
    "jvm_classes_loaded_classes": "flat after start-up; a climb is a leak the heap panels show first",
    "jvm_info_total": "read by the job and instance variables (label_values), not a panel",
    "process_files_open_files": "file-descriptor exhaustion shows as errors in Keycloak's own log before here",
    "process_start_time_seconds": "the uptime panel reads process_uptime_seconds",
    "system_load_average_1m": "host load belongs to the host's own metrics; the CPU panel shows Keycloak's share",
}
"""Families read by no observable on purpose, each with the reason (the build names any other)."""
