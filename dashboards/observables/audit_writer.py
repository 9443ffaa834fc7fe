"""The audit writer's health: its queue, its failures, lost and spooled rows, and how current the trail is."""

from __future__ import annotations

from fastapi_lookout import metrics as m

from ..catalogs.app import series_name
from ..config import Config, DsType
from ..queries import TOTAL
from ..queries import fastapi as q
from ..stack.prometheus.rules import Alert, Case, Fired, series
from . import model as o
from .model import Diagnosis, Observable, Query, Runbook, Thresholds

PROM = DsType.PROMETHEUS
AUDIT = "audit"
FILE = "audit-alerts"




def queue(cfg: Config) -> Observable:
    a, labels = cfg.alerting, o.app_labels(cfg)
    name = series_name(m.AUDIT_QUEUE_SIZE)
    raw = f"{name}{{{cfg.app_selector}}}"
    shared = {"name": "AuditQueueBacklog",
              "summary": "{{ $value }} audit rows wait in memory on {{ $labels.instance }}"}
    return Observable(
        name="audit.queue", title="Queue size now",
        description="Audit rows waiting in memory; a growing queue means the DB is slow or down.",
        unit="short", datasource=PROM, queries=(Query(q.audit_queue(cfg)),), style=o.stat(),
        thresholds=Thresholds.of("green", (a.audit_queue_warning, "orange"), (a.audit_queue_critical, "red")),
        alerts=(
            Alert(expr=f"{raw} > {a.audit_queue_warning}", for_="5m", severity="warning",
                  description=(f"{{{{ $value }}}} audit rows have been waiting to be written on "
                               f"{{{{ $labels.instance }}}} for 5m (warning above {a.audit_queue_warning})."),
                  **shared),
            Alert(expr=f"{raw} > {a.audit_queue_critical}", for_="2m", severity="critical",
                  description=(f"{{{{ $value }}}} audit rows are waiting on {{{{ $labels.instance }}}} (critical "
                               f"above {a.audit_queue_critical}): the queue is close to full, and a full queue "
                               "drops rows."), **shared),
        ),
        cases=(
            Case("AuditQueueBacklog", "2000 rows queued warns",
                 (series(name, labels, "2000x10"),), "10m", (Fired({**labels, "severity": "warning"}, "2000"),)),
            Case("AuditQueueBacklog", "6000 rows queued pages (and warns, inhibited by Alertmanager)",
                 (series(name, labels, "6000x10"),), "10m",
                 (Fired({**labels, "severity": "warning"}, "6000"), Fired({**labels, "severity": "critical"}, "6000"))),
            Case("AuditQueueBacklog", "a normal batch in flight", (series(name, labels, "0 40 0 25 0 10 0x5"),),
                 "10m"),
        ),
        runbook=Runbook(
            meaning="Audit rows pile up in the service's memory instead of reaching the database.",
            impact=("Rows in memory are lost if the process is killed; once AUDIT_QUEUE_MAX_SIZE is reached new "
                    "rows are dropped: gaps in the audit trail."),
            diagnosis=(Diagnosis("is the database failing the batches", q.audit_failures(cfg, o.per_instance(cfg))),
                       Diagnosis("batch latency", q.audit_batch_latency(cfg, o.per_instance(cfg)))),
            mitigation=("Check PostgreSQL is reachable and fast (AuditWriteFailures, batch latency); the rows "
                        "drain by themselves once it is."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def failures(cfg: Config) -> Observable:
    labels = o.app_labels(cfg)
    name = series_name(m.AUDIT_WRITE_FAILURES)
    return Observable(
        name="audit.write_failures", title="Write failures",
        description="Failed batch writes over the time range (rows are kept and retried).",
        unit="short", datasource=PROM, queries=(Query(q.audit_failures(cfg, TOTAL), instant=True),), style=o.stat(),
        thresholds=Thresholds.any_is("red"),
        alerts=(Alert(
            name="AuditWriteFailures",
            expr=f"{q.audit_failures(cfg, o.per_instance(cfg))} > 0",
            for_="5m",
            severity="warning",
            summary="The audit writer of {{ $labels.instance }} keeps failing to write batches",
            description=("{{ $value | humanize }} audit batch writes failed on {{ $labels.instance }} over the "
                         "last 5m, for 5m in a row. The rows are kept and retried, but the queue grows."),
        ),),
        cases=(
            Case("AuditWriteFailures", "one failed batch per minute for 15 minutes",
                 (series(name, labels, "0+1x15"),), "15m", (Fired({**labels, "severity": "warning"}, "5"),)),
            Case("AuditWriteFailures", "one retry that succeeded long ago",
                 (series(name, labels, "0x3 1x17"),), "20m"),
        ),
        runbook=Runbook(
            meaning="The audit writer's batches keep failing against the database; the rows are kept and retried.",
            impact="The queue grows toward its limit, after which rows are dropped.",
            diagnosis=(Diagnosis("the database error (audit_write_failed)",
                                 f'{{service="{cfg.app_service}"}} | json | logger="app.audit"', "logql"),),
            mitigation=("The error names the cause: check PostgreSQL is up and that the service's role may INSERT "
                        "into user_actions (run `fastapi-lookout-audit migrate` if the tables are missing)."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def dropped(cfg: Config) -> Observable:
    labels = o.app_labels(cfg)
    name = series_name(m.AUDIT_EVENTS_DROPPED)
    return Observable(
        name="audit.dropped", title="Dropped rows",
        description="Rows refused over the time range (queue full, or malformed): lost audit records.",
        unit="short", datasource=PROM, queries=(Query(q.audit_dropped(cfg, TOTAL), instant=True),), style=o.stat(),
        thresholds=Thresholds.any_is("red"),
        alerts=(Alert(
            name="AuditEventsDropped",
            expr=f"{q.audit_dropped(cfg, o.per_instance(cfg))} > 0",
            severity="critical",
            summary="Audit rows were lost on {{ $labels.instance }}",
            description=("{{ $value | humanize }} audit rows were dropped on {{ $labels.instance }} in the last 5m: "
                         "the audit trail has a gap. Any drop is critical."),
        ),),
        cases=(
            Case("AuditEventsDropped", "a single dropped row is critical",
                 (series(name, labels, "0x9 1x5"),), "11m", (Fired({**labels, "severity": "critical"}, "1"),)),
            Case("AuditEventsDropped", "no drops", (series(name, labels, "0x15"),), "11m"),
            Case("AuditEventsDropped", "a restart resets the counter: not a drop",
                 (series(name, labels, "5x9 0x5"),), "11m"),
        ),
        runbook=Runbook(
            meaning="Audit rows were dropped: the queue was full (a long outage, a burst) or a row was malformed.",
            impact="The audit trail has a gap that cannot be recovered: auditors must be told.",
            diagnosis=(Diagnosis("when and where (audit_events_dropped with their reasons)",
                                 f'{{service="{cfg.app_service}"}} | json | logger="app.audit"', "logql"),),
            mitigation=("Fix the cause (the database, or AUDIT_QUEUE_MAX_SIZE for bursts), then record the gap "
                        "(time range, instance) for the auditors: the rows cannot be recovered."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def last_write(cfg: Config) -> Observable:
    a, labels = cfg.alerting, o.app_labels(cfg)
    last, queued = series_name(m.AUDIT_LAST_WRITE), series_name(m.AUDIT_QUEUE_SIZE)
    return Observable(
        name="audit.last_write", title="Since last write",
        description="Seconds since the last successful batch; idle services age too.",
        unit="s", datasource=PROM, queries=(Query(q.audit_last_write_age(cfg)),), style=o.stat(),
        thresholds=Thresholds.of("green", (a.audit_stall_seconds, "orange")),
        alerts=(Alert(
            name="AuditWriterStalled",
            expr=(f"{q.audit_last_write_age(cfg, o.per_instance(cfg))} > {a.audit_stall_seconds}\n"
                  f"and {queued}{{{cfg.app_selector}}} > 0"),
            for_="2m",
            severity="critical",
            summary="The audit writer of {{ $labels.instance }} wrote nothing for {{ $value | humanizeDuration }}",
            description=(f"Audit rows are queued on {{{{ $labels.instance }}}} but the last batch was written "
                         f"{{{{ $value | humanizeDuration }}}} ago (threshold {a.audit_stall_seconds}s): the writer "
                         "is stuck or the database refuses every batch."),
        ),),
        cases=(
            Case("AuditWriterStalled", "rows queued, last write 9 minutes ago",
                 (series(last, labels, "60x10"), series(queued, labels, "50x10")), "10m",
                 (Fired({**labels, "severity": "critical"}, "9m 0s"),)),
            Case("AuditWriterStalled", "an idle service writes nothing and queues nothing",
                 (series(last, labels, "60x10"), series(queued, labels, "0x10")), "10m"),
            Case("AuditWriterStalled", "a busy writer keeps writing",
                 (series(last, labels, "0+60x10"), series(queued, labels, "50x10")), "10m"),
        ),
        runbook=Runbook(
            meaning="Rows are queued but the writer has written nothing for minutes.",
            impact="Every audited action since then exists only in memory: a crash loses them all.",
            diagnosis=(Diagnosis("failures, if any", q.audit_failures(cfg, o.per_instance(cfg))),),
            mitigation=("Failures mean the database refuses the batches (see AuditWriteFailures). No failures and "
                        "no writes means the writer died: restart the service (SIGTERM flushes or spools the "
                        "queue)."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def foreign_spool(cfg: Config) -> Observable:
    labels = o.app_labels(cfg)
    name = series_name(m.AUDIT_SPOOL_FOREIGN_ROWS)
    return Observable(
        name="audit.foreign_spool", title="Rows awaiting review now",
        description=("Spooled audit rows bound to another database, set aside at start: never replayed here "
                     "automatically; a reviewer decides where they belong."),
        unit="short", datasource=PROM, queries=(Query(q.audit_foreign_spool(cfg)),), style=o.stat(),
        thresholds=Thresholds.any_is("orange"),
        alerts=(Alert(
            name="AuditSpoolForeignRows",
            expr=f"{q.audit_foreign_spool(cfg, o.per_instance(cfg))} > 0",
            for_="15m",
            severity="warning",
            summary="{{ $value }} spooled audit rows on {{ $labels.instance }} belong to another database",
            description=("{{ $labels.instance }} found {{ $value }} spooled audit rows bound to a different database "
                         "and set them aside instead of replaying them: until a reviewer moves them they are in no "
                         "audit trail."),
        ),),
        cases=(
            Case("AuditSpoolForeignRows", "a start found 320 rows of another database",
                 (series(name, labels, "320x20"),), "20m", (Fired({**labels, "severity": "warning"}, "320"),)),
            Case("AuditSpoolForeignRows", "nothing set aside", (series(name, labels, "0x20"),), "20m"),
        ),
        runbook=Runbook(
            meaning="A spool file holds audit rows written for another database; they were set aside, not replayed.",
            impact="Those rows are in no audit trail until someone decides where they belong.",
            diagnosis=(Diagnosis("the file, its row count and both databases (audit_spool_foreign)",
                                 f'{{service="{cfg.app_service}"}} | json | logger="app.audit"', "logql"),
                       Diagnosis("what the file holds, and for which database",
                                 "fastapi-lookout-audit replay --spool FILE --dry-run", "shell")),
            mitigation=("Find the database the rows were meant for (the file names it), then replay them there: "
                        "fastapi-lookout-audit --database-url URL replay --spool FILE. Never replay them into "
                        "another database without a reviewer's decision."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def observables(cfg: Config) -> list[Observable]:
    pct = f"p{round(cfg.slo.latency_quantile * 100)}"
    healthy = "Throughput and latency of a healthy writer; its failures, backlog and stalls have alerts."
    return [
        queue(cfg), failures(cfg), dropped(cfg),
        Observable("audit.spooled", "Spooled rows", "Rows saved to the spool file at shutdown over the time range "
                   "(the DB was down then).", "short", PROM, (Query(q.audit_spooled(cfg, TOTAL), instant=True),),
                   o.stat(), Thresholds.any_is("orange"),
                   no_alert="Spooled rows are replayed at the next start: kept, not lost.", feature=AUDIT),
        last_write(cfg),
        foreign_spool(cfg),
        Observable("audit.throughput", "Rows enqueued / written",
                   "Audit rows per second into the queue and committed to PostgreSQL.", "ops", PROM,
                   (Query(q.audit_enqueued(cfg), legend="enqueued"), Query(q.audit_written(cfg), legend="written")),
                   o.timeseries(), no_alert=healthy, feature=AUDIT),
        Observable("audit.batch_latency", f"Batch latency {pct}", "Time to write one batch of audit rows.", "s",
                   PROM, (Query(q.audit_batch_latency(cfg), legend="batch"),), o.timeseries(), no_alert=healthy,
                   feature=AUDIT),
        Observable("audit.pruned", "Rows pruned", "Audit rows deleted by retention over the time range, each "
                   "range under a signed checkpoint.", "short", PROM,
                   (Query(q.audit_pruned(cfg, TOTAL), instant=True),), o.stat(),
                   no_alert="Retention pruning is intended; a pruned range stays verifiable by its checkpoint.",
                   feature=AUDIT),
    ]
