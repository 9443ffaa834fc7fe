"""Keycloak's JVM, database pool and caches (stock Keycloak 26 metrics, management port)."""

from __future__ import annotations

from ..catalogs import keycloak as kc
from ..config import Config, DsType
from ..queries import keycloak as q
from ..queries import rule
from ..stack.prometheus.rules import Alert, Case, Fired, series
from ..stack.prometheus.slo import number, percent
from . import model as o
from .model import Diagnosis, Observable, Query, Runbook, Thresholds

PROM = DsType.PROMETHEUS
KEYCLOAK = "keycloak"
FILE = "keycloak-alerts"
CAPACITY = "Capacity to read on a dashboard; what hurts users pages through heap, GC and pool alerts."


def _inst(cfg: Config) -> tuple[dict[str, str], dict[str, str]]:
    labels = {"job": cfg.keycloak_job, "instance": cfg.prometheus.keycloak_target}
    return labels, dict(labels)


def heap(cfg: Config) -> Observable:
    a = cfg.alerting
    family = kc.family("jvm_memory_usage_after_gc_percent")
    labels, inst = _inst(cfg)
    pool = {**labels, "area": "heap", "pool": "long-lived"}
    after_gc = q.heap_after_gc(cfg, rule(cfg.keycloak_selector, by=("job", "instance")))
    shared = {"name": "KeycloakHeapPressure",
              "summary": "Keycloak {{ $labels.instance }} heap is {{ $value | humanizePercentage }} full after GC"}
    return Observable(
        name="keycloak.heap_after_gc", title="Heap after GC",
        description="Share of the long-lived pool still used after collection: the heap-pressure signal.",
        unit="percentunit", datasource=PROM, queries=(Query(q.heap_after_gc(cfg), legend="{{pool}}"),),
        style=o.timeseries(),
        thresholds=Thresholds.of("green", (a.keycloak_heap_warning, "orange"), (a.keycloak_heap_critical, "red")),
        alerts=(
            Alert(expr=f"{after_gc} > {number(a.keycloak_heap_warning)}", for_="10m", severity="warning",
                  description=(f"{{{{ $value | humanizePercentage }}}} of the long-lived heap pool is still used "
                               f"after garbage collection on {{{{ $labels.instance }}}} (warning at "
                               f"{percent(a.keycloak_heap_warning)})."), **shared),
            Alert(expr=f"{after_gc} > {number(a.keycloak_heap_critical)}", for_="5m", severity="critical",
                  description=(f"{{{{ $value | humanizePercentage }}}} of the long-lived heap pool is still used "
                               f"after garbage collection on {{{{ $labels.instance }}}} (critical at "
                               f"{percent(a.keycloak_heap_critical)}): an OutOfMemoryError is near."), **shared),
        ),
        cases=(
            Case("KeycloakHeapPressure", "85% after GC warns",
                 (series(family, pool, "0.85x20"),), "15m", (Fired({**inst, "severity": "warning"}, "85%"),)),
            Case("KeycloakHeapPressure", "95% after GC pages (and warns, inhibited by Alertmanager)",
                 (series(family, pool, "0.95x20"),), "15m",
                 (Fired({**inst, "severity": "warning"}, "95%"), Fired({**inst, "severity": "critical"}, "95%"))),
            Case("KeycloakHeapPressure", "50% after GC", (series(family, pool, "0.5x20"),), "15m"),
        ),
        runbook=Runbook(
            meaning="Keycloak's heap stays full even after garbage collection.",
            impact="Logins slow down in GC pauses, then fail when the JVM runs out of memory.",
            diagnosis=(Diagnosis("heap used by area", q.heap_by_area(cfg, "used", rule(
                cfg.keycloak_selector, by=("instance", "area")))),),
            mitigation=("A steady climb is a leak or too many sessions (cache entries): raise the heap "
                        "(JAVA_OPTS_KC_HEAP) or add a node."),
        ),
        feature=KEYCLOAK, rule_file=FILE,
    )


def gc_overhead(cfg: Config) -> Observable:
    a, p = cfg.alerting, cfg.panels
    family = kc.family("jvm_gc_overhead")
    labels, inst = _inst(cfg)
    return Observable(
        name="keycloak.gc_overhead", title="GC overhead now",
        description="Share of CPU time spent in garbage collection, as the JVM reports it now.",
        unit="percentunit", datasource=PROM, queries=(Query(q.gc_overhead(cfg)),), style=o.stat(),
        thresholds=Thresholds.of("green", (p.keycloak_gc_overhead_warning, "orange"), (a.keycloak_gc_overhead, "red")),
        alerts=(Alert(
            name="KeycloakGcOverhead",
            expr=(f"{q.gc_overhead(cfg, rule(cfg.keycloak_selector, by=('job', 'instance')))} "
                  f"> {number(a.keycloak_gc_overhead)}"),
            for_="15m",
            severity="warning",
            summary="Keycloak {{ $labels.instance }} spends {{ $value | humanizePercentage }} of its CPU in GC",
            description=(f"The JVM of {{{{ $labels.instance }}}} spent {{{{ $value | humanizePercentage }}}} of its "
                         f"CPU time collecting garbage (threshold {percent(a.keycloak_gc_overhead)}): requests "
                         "stall during pauses."),
        ),),
        cases=(
            Case("KeycloakGcOverhead", "30% of CPU in GC",
                 (series(family, labels, "0.3x30"),), "20m", (Fired({**inst, "severity": "warning"}, "30%"),)),
            Case("KeycloakGcOverhead", "2% of CPU in GC", (series(family, labels, "0.02x30"),), "20m"),
        ),
        runbook=Runbook(
            meaning="Keycloak spends a large share of its CPU collecting garbage.",
            impact="Requests stall during pauses: logins and token refreshes slow down.",
            diagnosis=(Diagnosis("pause time per collector", q.gc_time_share(cfg, rule(
                cfg.keycloak_selector, by=("instance", "gc")))),),
            mitigation="Usually the heap is too small for the load: see KeycloakHeapPressure and raise the heap.",
        ),
        feature=KEYCLOAK, rule_file=FILE,
    )


def pool(cfg: Config) -> Observable:
    p = cfg.panels
    family = kc.family("agroal_awaiting_count")
    labels, inst = _inst(cfg)
    waiting = q.pool(cfg, "awaiting", rule(cfg.keycloak_selector, by=("job", "instance", "datasource")))
    return Observable(
        name="keycloak.pool", title="Connections",
        description="Active, available and max-used connections; 'awaiting' threads wait for one.",
        unit="short", datasource=PROM,
        queries=tuple(Query(q.pool(cfg, kind), legend=f"{kind} {{{{datasource}}}}")
                      for kind in ("active", "available", "max_used", "awaiting")),
        style=o.timeseries(),
        alerts=(Alert(
            name="KeycloakDbPoolWaiters",
            expr=f"{waiting} > 0",
            for_="5m",
            severity="warning",
            summary="Keycloak {{ $labels.instance }} threads wait for a database connection",
            description=("{{ $value }} threads of {{ $labels.instance }} have waited for a connection of the "
                         "Agroal pool {{ $labels.datasource }} for 5m: logins slow down or time out."),
        ),),
        cases=(
            Case("KeycloakDbPoolWaiters", "3 threads wait for 10 minutes",
                 (series(family, {**labels, "datasource": "default"}, "3x20"),), "10m",
                 (Fired({**inst, "datasource": "default", "severity": "warning"}, "3"),)),
            Case("KeycloakDbPoolWaiters", "waiters for 2 minutes, then none",
                 (series(family, {**labels, "datasource": "default"}, "0x4 2x2 0x14"),), "10m"),
        ),
        runbook=Runbook(
            meaning="Keycloak's threads wait for a database connection from its pool.",
            impact="Logins slow down or time out while the pool is exhausted.",
            diagnosis=(Diagnosis("blocking time", q.pool_blocking(cfg, "max", rule(
                cfg.keycloak_selector, by=("instance", "datasource")))),),
            mitigation=(f"Active connections at the maximum mean the pool is too small (KC_DB_POOL_MAX_SIZE) or "
                        f"the database is slow: check PostgreSQL's activity and locks (blocking above "
                        f"{p.keycloak_pool_blocking_ms_warning:g} ms is already felt)."),
        ),
        feature=KEYCLOAK, rule_file=FILE,
    )


def observables(cfg: Config) -> list[Observable]:
    p = cfg.panels
    cpu = Thresholds.of("green", (p.keycloak_cpu_warning, "orange"), (p.keycloak_cpu_critical, "red"))

    def kc_obs(*args: object, **kwargs: object) -> Observable:
        return Observable(*args, feature=KEYCLOAK, **kwargs)  # type: ignore[arg-type]

    return [
        kc_obs("keycloak.memory", "Memory by area",
               "Used and committed bytes, heap and non-heap, summed over pools; heap max dashed.", "bytes", PROM,
               (Query(q.heap_by_area(cfg, "used"), legend="used {{area}}"),
                Query(q.heap_by_area(cfg, "committed"), legend="committed {{area}}"),
                Query(q.heap_max(cfg), legend="heap max")), o.timeseries(), no_alert=CAPACITY),
        heap(cfg),
        gc_overhead(cfg),
        kc_obs("keycloak.gc_time_share", "GC pause time share", "Seconds paused per second, by collector.",
               "percentunit", PROM, (Query(q.gc_time_share(cfg), legend="{{gc}}"),), o.timeseries(),
               alert_refs=("KeycloakGcOverhead",)),
        kc_obs("keycloak.gc_pauses", "GC pause average / max",
               "Mean pause per collection and the longest recent pause.",
               "s", PROM, (Query(q.gc_pause_avg(cfg), legend="avg {{gc}}"),
                           Query(q.gc_pause_max(cfg), legend="max {{gc}}")), o.timeseries(),
               alert_refs=("KeycloakGcOverhead",)),
        kc_obs("keycloak.threads", "Threads by state", "JVM threads per state; many blocked threads mean lock "
               "contention.", "short", PROM,
               (Query(q.threads_by_state(cfg), legend="{{state}}"), Query(q.threads(cfg, "live"), legend="live"),
                Query(q.threads(cfg, "daemon"), legend="daemon"), Query(q.threads(cfg, "peak"), legend="peak")),
               o.timeseries(), no_alert=CAPACITY),
        kc_obs("keycloak.cpu", "CPU", "Process and system CPU usage, 0..1 of all cores.", "percentunit", PROM,
               (Query(q.cpu(cfg, "process"), legend="process"), Query(q.cpu(cfg, "system"), legend="system")),
               o.timeseries(), cpu, no_alert=CAPACITY),
        kc_obs("keycloak.uptime", "Uptime now", "Time since the youngest Keycloak instance started.", "s", PROM,
               (Query(q.uptime(cfg)),), o.stat(),
               no_alert="A restart is visible here; a down Keycloak is TargetDown."),
        pool(cfg),
        kc_obs("keycloak.pool_blocking", "Blocking time",
               "Time threads waited for a connection (average and max), milliseconds.", "ms", PROM,
               (Query(q.pool_blocking(cfg, "average"), legend="avg {{datasource}}"),
                Query(q.pool_blocking(cfg, "max"), legend="max {{datasource}}")), o.timeseries(),
               Thresholds.of("green", (p.keycloak_pool_blocking_ms_warning, "orange"),
                             (p.keycloak_pool_blocking_ms_critical, "red")),
               alert_refs=("KeycloakDbPoolWaiters",)),
        kc_obs("keycloak.cache_entries", "Cache entries",
               "Approximate in-memory entries per cache and node (not a session count).", "short", PROM,
               (Query(q.cache_entries(cfg), legend="{{cache}}"),), o.timeseries(), no_alert=CAPACITY),
        kc_obs("keycloak.cache_hit_ratio", "Cache hit ratio",
               "hits / (hits + misses) per cache; empty for caches nobody read.", "percentunit", PROM,
               (Query(q.cache_hit_ratio(cfg), legend="{{cache}}"),), o.timeseries(),
               Thresholds.of("red", (p.keycloak_cache_hit_ratio_critical, "orange"),
                             (p.keycloak_cache_hit_ratio_warning, "green")), no_alert=CAPACITY),
    ]
