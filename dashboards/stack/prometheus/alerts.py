"""Alerts on scrape targets, the app, Keycloak, the audit writer and its hash chain, each with the cases that prove it.

Every alert carries a ``severity`` (critical pages, warning opens a ticket),
``summary`` and ``description``; ``runbook_url`` is added later by one pass over
all rules. Each alert's cases sit next to it: at least one input where it fires
and one where it must stay silent (a single 5xx among many requests, a trickle
of traffic, a blip shorter than ``for``, a counter reset after a restart).
"""

from __future__ import annotations

from fastapi_lookout import metrics

from ...catalogs import keycloak as kc
from ...catalogs.app import series_name
from ...config import Config
from . import recording
from .rules import SEVERITIES, Alert, Case, Fired, Group, RuleFile, series
from .scrape import scrape_jobs
from .slo import number, percent


def _app(cfg: Config) -> dict[str, str]:
    return {"job": cfg.app_job, "instance": cfg.prometheus.app_target}


def _kc(cfg: Config) -> dict[str, str]:
    return {"job": cfg.keycloak_job, "instance": cfg.prometheus.keycloak_target}


# --- scrape targets ----------------------------------------------------------------------
def targets(cfg: Config) -> RuleFile:
    """TargetDown for every scrape job of prometheus.yml, one rule per severity: no rule on a job nobody
    scrapes, no scraped job without one."""
    wait = cfg.alerting.target_down_for
    jobs = scrape_jobs(cfg)
    rules = tuple(
        Alert(
            name="TargetDown",
            expr=f'up{{job=~"{"|".join(j.name for j in jobs if j.severity == severity)}"}} == 0',
            for_=wait,
            severity=severity,
            summary="{{ $labels.job }} target {{ $labels.instance }} is down",
            description=(f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) "
                         f"for {wait}: its metrics, and every alert computed from them, are blind."),
            runbook=("Is the container running and healthy (`docker compose ps`)? The target's lastError on "
                     "Prometheus' /targets page says whether it refused the connection, timed out or answered "
                     "non-200 (a wrong metrics path or a missing bearer token)."),
        )
        for severity in SEVERITIES
        if any(j.severity == severity for j in jobs)
    )
    cases = []
    for job in jobs:
        labels = {"job": job.name, "instance": job.target}
        cases += [
            Case("TargetDown", f"{job.name} unreachable for 10m", (series("up", labels, "0x10"),), "10m",
                 (Fired({**labels, "severity": job.severity}),)),
            Case("TargetDown", f"{job.name} up", (series("up", labels, "1x10"),), "10m"),
            Case("TargetDown", f"{job.name} misses two scrapes, shorter than for", (series("up", labels, "1 0 0 1x8"),),
                 "3m"),
        ]
    return RuleFile("targets", (Group("targets", rules),), tuple(cases))


# --- the app ------------------------------------------------------------------------------
def app(cfg: Config) -> RuleFile:
    a, sel = cfg.alerting, cfg.app_selector
    requests = series_name(metrics.HTTP_REQUESTS)
    limits = series_name(metrics.RATE_LIMIT_HITS)
    auth = series_name(metrics.AUTH_ATTEMPTS)
    ratio = f"job:http_requests_errors:ratio_rate{recording.WINDOW}"
    rules = (
        Alert(
            name="AppHighErrorRatio",
            expr=(f"{ratio}{{{sel}}} > {number(a.error_ratio)}\n"
                  f"and sum by (job) (increase({requests}{{{sel}}}[5m])) >= {a.error_ratio_min_requests}"),
            for_="5m",
            severity="warning",
            summary="{{ $labels.job }} answers {{ $value | humanizePercentage }} of requests with a 5xx",
            description=(f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.job }}}}'s requests got a 5xx over "
                         f"the last 5m (threshold {percent(a.error_ratio)}, counted only with at least "
                         f"{a.error_ratio_min_requests} requests in 5m). Both sides of the ratio are summed by job."),
            runbook=("Which endpoints and status codes: the fastapi-metrics error panels; the stack traces: error "
                     "logs in application-logs. A database outage shows as 500 on /api/authors and 503 on /health."),
        ),
        Alert(
            name="AppRateLimitSpike",
            expr=(f"sum by (job, limit_type) (rate({limits}{{{sel}}}[5m])) * 60 "
                  f"> {number(a.rate_limit_hits_per_minute)}"),
            for_="10m",
            severity="warning",
            summary="{{ $labels.job }} refuses requests on its {{ $labels.limit_type }} rate limit",
            description=(f"{{{{ $labels.job }}}} refused {{{{ $value | humanize }}}} requests/min on the "
                         f"{{{{ $labels.limit_type }}}} limit over the last 5m (threshold "
                         f"{a.rate_limit_hits_per_minute:g}/min)."),
            runbook=("Who hits the limit: rate-limit events in application-logs (user_id, ip). A single client "
                     "looping is a client bug or abuse; many clients mean the limits are too low for real load."),
        ),
        Alert(
            name="AppAuthFailuresHigh",
            expr=(f'sum by (job) (rate({auth}{{{sel},status!="success"}}[5m])) * 60 '
                  f"> {number(a.auth_failures_per_minute)}"),
            for_="10m",
            severity="warning",
            summary="{{ $labels.job }} rejects {{ $value | humanize }} bearer tokens per minute",
            description=(f"{{{{ $value | humanize }}}} bearer-token checks/min failed on {{{{ $labels.job }}}} over "
                         f"the last 5m (threshold {a.auth_failures_per_minute:g}/min): missing, expired, forged "
                         "tokens or forbidden roles."),
            runbook=("Which reason: auth_attempts_total by status on fastapi-metrics. `expired` from one client is "
                     "a refresh bug; `unknown_key`/`jwks_unavailable` point at Keycloak's JWKS; `invalid_signature` "
                     "from many IPs is an attack."),
        ),
    )
    labels = _app(cfg)
    ep = {**labels, "method": "GET", "endpoint": "/api/authors"}
    ok, err = {**ep, "status_code": "200"}, {**ep, "status_code": "500"}
    warn = {"job": cfg.app_job, "severity": "warning"}
    cases = (
        Case("AppHighErrorRatio", "10% of requests are 5xx",
             (series(requests, ok, "0+900x20"), series(requests, err, "0+100x20")), "15m", (Fired(warn, "10%"),)),
        Case("AppHighErrorRatio", "a single 5xx a minute among 1000 requests",
             (series(requests, ok, "0+999x20"), series(requests, err, "0+1x20")), "15m"),
        Case("AppHighErrorRatio", "half of a trickle of 2 requests/min fails (below the minimum traffic)",
             (series(requests, ok, "0+1x20"), series(requests, err, "0+1x20")), "15m"),
        Case("AppRateLimitSpike", "120 refusals/min on the user limit",
             (series(limits, {**labels, "limit_type": "user"}, "0+120x20"),
              series(limits, {**labels, "limit_type": "ip"}, "0x20")), "15m",
             (Fired({**warn, "limit_type": "user"}, "120"),)),
        Case("AppRateLimitSpike", "an occasional refusal",
             (series(limits, {**labels, "limit_type": "user"}, "0+6x20"),), "15m"),
        Case("AppAuthFailuresHigh", "60 expired tokens per minute",
             (series(auth, {**labels, "status": "success"}, "0+600x20"),
              series(auth, {**labels, "status": "expired"}, "0+60x20")), "15m", (Fired(warn, "60"),)),
        Case("AppAuthFailuresHigh", "a few failures among many successes",
             (series(auth, {**labels, "status": "success"}, "0+600x20"),
              series(auth, {**labels, "status": "missing"}, "0+6x20")), "15m"),
    )
    return RuleFile("app-alerts", (Group("app", rules),), cases)


# --- Keycloak -------------------------------------------------------------------------------
def keycloak(cfg: Config) -> RuleFile:
    a, sel = cfg.alerting, cfg.keycloak_selector
    events = kc.family("keycloak_user_events_total")
    heap = kc.family("jvm_memory_usage_after_gc_percent")
    gc = kc.family("jvm_gc_overhead")
    waiting = kc.family("agroal_awaiting_count")
    failed = f'{events}{{{sel},event="login",error!=""}}'
    logins = f'{events}{{{sel},event="login"}}'
    lazy = (" keycloak_user_events_total appears only after the first event and only with "
            "KC_EVENT_METRICS_USER_ENABLED=true (Keycloak >= 26.2): while it is absent this alert stays silent.")
    heap_rule = dict(
        name="KeycloakHeapPressure",
        summary="Keycloak {{ $labels.instance }} heap is {{ $value | humanizePercentage }} full after GC",
        runbook=("JVM heap and GC panels of keycloak-metrics: a steady climb is a leak or too many sessions "
                 "(cache entries); raise the heap (JAVA_OPTS_KC_HEAP) or add a node."),
    )
    rules = (
        Alert(
            name="KeycloakFailedLoginSpike",
            expr=f"sum by (job, realm) (rate({failed}[5m])) * 60 > {number(a.keycloak_failed_logins_per_minute)}",
            for_="5m",
            severity="warning",
            summary="Failed logins in realm {{ $labels.realm }}: {{ $value | humanize }}/min",
            description=(f"{{{{ $value | humanize }}}} failed logins/min in realm {{{{ $labels.realm }}}} over the "
                         f"last 5m (threshold {a.keycloak_failed_logins_per_minute:g}/min).{lazy}"),
            runbook=("Which error dominates (invalid_user_credentials: password guessing; user_not_found: user "
                     "enumeration) on the keycloak-metrics login panels; Keycloak's brute-force detection and "
                     "the source IPs in its event log."),
        ),
        Alert(
            name="KeycloakFailedLoginRatioHigh",
            expr=(f"sum by (job, realm) (rate({failed}[5m]))\n/ sum by (job, realm) (rate({logins}[5m])) "
                  f"> {number(a.keycloak_failed_login_ratio)}\n"
                  f"and sum by (job, realm) (increase({logins}[5m])) >= {a.keycloak_min_logins}"),
            for_="10m",
            severity="warning",
            summary="{{ $value | humanizePercentage }} of logins fail in realm {{ $labels.realm }}",
            description=(f"{{{{ $value | humanizePercentage }}}} of login attempts in realm {{{{ $labels.realm }}}} "
                         f"failed over the last 5m (threshold {percent(a.keycloak_failed_login_ratio)}, counted only "
                         f"with at least {a.keycloak_min_logins} attempts in 5m).{lazy}"),
            runbook=("Failed logins by error on keycloak-metrics. Everybody failing at once after a change points "
                     "at the realm (an identity provider, a required action, a client secret); otherwise treat "
                     "it as an attack."),
        ),
        Alert(expr=f'max by (job, instance) ({heap}{{{sel},area="heap"}}) > {number(a.keycloak_heap_warning)}',
              for_="10m", severity="warning",
              description=(f"{{{{ $value | humanizePercentage }}}} of the long-lived heap pool is still used after "
                           f"garbage collection on {{{{ $labels.instance }}}} (warning at "
                           f"{percent(a.keycloak_heap_warning)})."),
              **heap_rule),
        Alert(expr=f'max by (job, instance) ({heap}{{{sel},area="heap"}}) > {number(a.keycloak_heap_critical)}',
              for_="5m", severity="critical",
              description=(f"{{{{ $value | humanizePercentage }}}} of the long-lived heap pool is still used after "
                           f"garbage collection on {{{{ $labels.instance }}}} (critical at "
                           f"{percent(a.keycloak_heap_critical)}): an OutOfMemoryError is near."),
              **heap_rule),
        Alert(
            name="KeycloakGcOverhead",
            expr=f"max by (job, instance) ({gc}{{{sel}}}) > {number(a.keycloak_gc_overhead)}",
            for_="15m",
            severity="warning",
            summary="Keycloak {{ $labels.instance }} spends {{ $value | humanizePercentage }} of its CPU in GC",
            description=(f"The JVM of {{{{ $labels.instance }}}} spent {{{{ $value | humanizePercentage }}}} of its "
                         f"CPU time collecting garbage (threshold {percent(a.keycloak_gc_overhead)}): requests "
                         "stall during pauses."),
            runbook="Usually the heap is too small for the load: see KeycloakHeapPressure and the GC pause panel.",
        ),
        Alert(
            name="KeycloakDbPoolWaiters",
            expr=f"max by (job, instance, datasource) ({waiting}{{{sel}}}) > 0",
            for_="5m",
            severity="warning",
            summary="Keycloak {{ $labels.instance }} threads wait for a database connection",
            description=("{{ $value }} threads of {{ $labels.instance }} have waited for a connection of the "
                         "Agroal pool {{ $labels.datasource }} for 5m: logins slow down or time out."),
            runbook=("DB pool panels of keycloak-metrics: active = max means the pool is too small "
                     "(KC_DB_POOL_MAX_SIZE) or the database is slow (check PostgreSQL's activity and locks)."),
        ),
    )
    labels = _kc(cfg)
    realm = {"job": cfg.keycloak_job, "realm": "demo"}
    login = {**labels, "client_id": "authors-app", "event": "login", "realm": "demo"}
    bad = {**login, "error": "invalid_user_credentials"}
    inst = {"job": cfg.keycloak_job, "instance": cfg.prometheus.keycloak_target}
    heap_series = {**labels, "area": "heap", "pool": "long-lived"}
    cases = (
        Case("KeycloakFailedLoginSpike", "30 failed logins/min",
             (series(events, login, "0+60x20"), series(events, bad, "0+30x20")), "15m",
             (Fired({**realm, "severity": "warning"}, "30"),)),
        Case("KeycloakFailedLoginSpike", "6 failed logins/min",
             (series(events, login, "0+60x20"), series(events, bad, "0+6x20")), "15m"),
        Case("KeycloakFailedLoginSpike", "no login event yet: the lazy family is absent",
             (series("up", labels, "1x20"),), "15m"),
        Case("KeycloakFailedLoginRatioHigh", "75% of logins fail",
             (series(events, login, "0+10x20"), series(events, bad, "0+30x20")), "15m",
             (Fired({**realm, "severity": "warning"}, "75%"),)),
        Case("KeycloakFailedLoginRatioHigh", "10% of logins fail",
             (series(events, login, "0+90x20"), series(events, bad, "0+10x20")), "15m"),
        Case("KeycloakFailedLoginRatioHigh", "2 of 3 logins/min fail (below the minimum attempts)",
             (series(events, login, "0+1x20"), series(events, bad, "0+2x20")), "15m"),
        Case("KeycloakHeapPressure", "85% after GC warns",
             (series(heap, heap_series, "0.85x20"),), "15m", (Fired({**inst, "severity": "warning"}, "85%"),)),
        Case("KeycloakHeapPressure", "95% after GC pages (and warns, inhibited by Alertmanager)",
             (series(heap, heap_series, "0.95x20"),), "15m",
             (Fired({**inst, "severity": "warning"}, "95%"), Fired({**inst, "severity": "critical"}, "95%"))),
        Case("KeycloakHeapPressure", "50% after GC", (series(heap, heap_series, "0.5x20"),), "15m"),
        Case("KeycloakGcOverhead", "30% of CPU in GC",
             (series(gc, labels, "0.3x30"),), "20m", (Fired({**inst, "severity": "warning"}, "30%"),)),
        Case("KeycloakGcOverhead", "2% of CPU in GC", (series(gc, labels, "0.02x30"),), "20m"),
        Case("KeycloakDbPoolWaiters", "3 threads wait for 10 minutes",
             (series(waiting, {**labels, "datasource": "default"}, "3x20"),), "10m",
             (Fired({**inst, "datasource": "default", "severity": "warning"}, "3"),)),
        Case("KeycloakDbPoolWaiters", "waiters for 2 minutes, then none",
             (series(waiting, {**labels, "datasource": "default"}, "0x4 2x2 0x14"),), "10m"),
    )
    return RuleFile("keycloak-alerts", (Group("keycloak", rules),), cases)


# --- audit writer -----------------------------------------------------------------------------
def audit(cfg: Config) -> RuleFile:
    a, sel = cfg.alerting, cfg.app_selector
    queue = series_name(metrics.AUDIT_QUEUE_SIZE)
    failures = series_name(metrics.AUDIT_WRITE_FAILURES)
    dropped = series_name(metrics.AUDIT_EVENTS_DROPPED)
    last = series_name(metrics.AUDIT_LAST_WRITE)
    broken = series_name(metrics.AUDIT_CHAIN_BROKEN)
    verified = series_name(metrics.AUDIT_CHAIN_LAST_VERIFICATION)
    backlog = dict(
        name="AuditQueueBacklog",
        summary="{{ $value }} audit rows wait in memory on {{ $labels.instance }}",
        runbook=("Is PostgreSQL reachable and fast (audit batch duration, AuditWriteFailures)? Rows beyond "
                 "AUDIT_QUEUE_MAX_SIZE are dropped; rows in memory are lost if the process is killed."),
    )
    rules = (
        Alert(expr=f"{queue}{{{sel}}} > {a.audit_queue_warning}", for_="5m", severity="warning",
              description=(f"{{{{ $value }}}} audit rows have been waiting to be written on {{{{ $labels.instance }}}} "
                           f"for 5m (warning above {a.audit_queue_warning})."), **backlog),
        Alert(expr=f"{queue}{{{sel}}} > {a.audit_queue_critical}", for_="2m", severity="critical",
              description=(f"{{{{ $value }}}} audit rows are waiting on {{{{ $labels.instance }}}} (critical above "
                           f"{a.audit_queue_critical}): the queue is close to full, and a full queue drops rows."),
              **backlog),
        Alert(
            name="AuditWriteFailures",
            expr=f"sum by (job, instance) (increase({failures}{{{sel}}}[5m])) > 0",
            for_="5m",
            severity="warning",
            summary="The audit writer of {{ $labels.instance }} keeps failing to write batches",
            description=("{{ $value | humanize }} audit batch writes failed on {{ $labels.instance }} over the last "
                         "5m, for 5m in a row. The rows are kept and retried, but the queue grows."),
            runbook=("The app's error logs (logger app.audit, audit_write_failed) name the database error; check "
                     "PostgreSQL is up and the app's role may INSERT into user_actions."),
        ),
        Alert(
            name="AuditEventsDropped",
            expr=f"sum by (job, instance) (increase({dropped}{{{sel}}}[5m])) > 0",
            severity="critical",
            summary="Audit rows were lost on {{ $labels.instance }}",
            description=("{{ $value | humanize }} audit rows were dropped on {{ $labels.instance }} in the last 5m: "
                         "the audit trail has a gap. Any drop is critical."),
            runbook=("Rows are dropped when the queue is full (a long database outage or a burst beyond "
                     "AUDIT_QUEUE_MAX_SIZE) or malformed. Fix the cause, then record the gap (time range, instance) "
                     "for the auditors: the rows cannot be recovered."),
        ),
        Alert(
            name="AuditWriterStalled",
            expr=(f"time() - {last}{{{sel}}} > {a.audit_stall_seconds}\n"
                  f"and {queue}{{{sel}}} > 0"),
            for_="2m",
            severity="critical",
            summary="The audit writer of {{ $labels.instance }} wrote nothing for {{ $value | humanizeDuration }}",
            description=(f"Audit rows are queued on {{{{ $labels.instance }}}} but the last batch was written "
                         f"{{{{ $value | humanizeDuration }}}} ago (threshold {a.audit_stall_seconds}s): the writer "
                         "is stuck or the database refuses every batch."),
            runbook=("Check AuditWriteFailures and the app's app.audit logs. No failures and no writes means the "
                     "writer task died: restart the app (the queue is flushed or spooled on SIGTERM)."),
        ),
        Alert(
            name="AuditChainBroken",
            expr=f"max by (job, instance) ({broken}{{{sel}}}) == 1",
            severity="critical",
            summary="The audit trail's hash chain is broken on {{ $labels.instance }}",
            description=("The periodic audit chain verification of {{ $labels.instance }} found user_actions rows "
                         "edited, deleted, reordered or inserted, a tail cut off, or a forged checkpoint: the "
                         "audit trail after the last intact seq (audit_chain_verified_seq) cannot be trusted."),
            runbook=("Treat it as a security incident and keep the evidence: snapshot the database before anything "
                     "else (retention already refuses to prune a broken chain). The app's error log "
                     "`audit_chain_broken` (logger app.audit) names the kind, row id and seq; "
                     "`python scripts/audit.py verify --anchor <seq:row_hash kept outside the database>` with the "
                     "same AUDIT_HMAC_KEY confirms it from a full walk. `altered` from seq 1 on every row after a "
                     "deploy means AUDIT_HMAC_KEY changed (there is no key rotation), not tampering."),
        ),
        Alert(
            name="AuditChainVerificationStale",
            expr=(f"time() - {verified}{{{sel}}} > {a.audit_verification_stale_seconds}\n"
                  f"and on (job, instance) up{{{sel}}} == 1"),
            for_="5m",
            severity="warning",
            summary="The audit chain of {{ $labels.instance }} was last verified {{ $value | humanizeDuration }} ago",
            description=(f"{{{{ $labels.instance }}}} is up but its periodic audit chain verification last completed "
                         f"{{{{ $value | humanizeDuration }}}} ago (threshold {a.audit_verification_stale_seconds}s, "
                         "about 3x AUDIT_VERIFY_INTERVAL_SECONDS): tampering would go unnoticed, and "
                         "AuditChainBroken cannot fire."),
            runbook=("audit_chain_verifications_total{result=\"error\"} rising and the app's "
                     "`audit_chain_verification_failed` warnings name why (database down, not migrated, "
                     "permissions). No errors and no completion: the first full walk after a restart is still "
                     "running (~40,000 rows/s) or the maintenance task died (restart the app). "
                     "AUDIT_VERIFY_INTERVAL_SECONDS=0 turns verification off and this alert on; a longer interval "
                     "needs a larger alerting.audit_verification_stale_seconds."),
        ),
    )
    labels = _app(cfg)
    cases = (
        Case("AuditQueueBacklog", "2000 rows queued warns",
             (series(queue, labels, "2000x10"),), "10m", (Fired({**labels, "severity": "warning"}, "2000"),)),
        Case("AuditQueueBacklog", "6000 rows queued pages (and warns, inhibited by Alertmanager)",
             (series(queue, labels, "6000x10"),), "10m",
             (Fired({**labels, "severity": "warning"}, "6000"), Fired({**labels, "severity": "critical"}, "6000"))),
        Case("AuditQueueBacklog", "a normal batch in flight", (series(queue, labels, "0 40 0 25 0 10 0x5"),), "10m"),
        Case("AuditWriteFailures", "one failed batch per minute for 15 minutes",
             (series(failures, labels, "0+1x15"),), "15m", (Fired({**labels, "severity": "warning"}, "5"),)),
        Case("AuditWriteFailures", "one retry that succeeded long ago",
             (series(failures, labels, "0x3 1x17"),), "20m"),
        Case("AuditEventsDropped", "a single dropped row is critical",
             (series(dropped, labels, "0x9 1x5"),), "11m", (Fired({**labels, "severity": "critical"}, "1"),)),
        Case("AuditEventsDropped", "no drops", (series(dropped, labels, "0x15"),), "11m"),
        Case("AuditEventsDropped", "a restart resets the counter: not a drop",
             (series(dropped, labels, "5x9 0x5"),), "11m"),
        Case("AuditWriterStalled", "rows queued, last write 9 minutes ago",
             (series(last, labels, "60x10"), series(queue, labels, "50x10")), "10m",
             (Fired({**labels, "severity": "critical"}, "9m 0s"),)),
        Case("AuditWriterStalled", "an idle service writes nothing and queues nothing",
             (series(last, labels, "60x10"), series(queue, labels, "0x10")), "10m"),
        Case("AuditWriterStalled", "a busy writer keeps writing",
             (series(last, labels, "0+60x10"), series(queue, labels, "50x10")), "10m"),
        Case("AuditChainBroken", "a verification finds tampering: pages at once",
             (series(broken, labels, "0x5 1x5"),), "6m", (Fired({**labels, "severity": "critical"}),)),
        Case("AuditChainBroken", "every verification finds the chain intact", (series(broken, labels, "0x10"),), "10m"),
        Case("AuditChainBroken", "broken, then intact again (the rows restored)",
             (series(broken, labels, "0x2 1x2 0x6"),), "8m"),
        Case("AuditChainVerificationStale", "last verified 14 minutes ago while the app is up",
             (series(verified, labels, "60x20"), series("up", labels, "1x20")), "15m",
             (Fired({**labels, "severity": "warning"}, "14m 0s"),)),
        Case("AuditChainVerificationStale", "no verification completed since the app started",
             (series(verified, labels, "0x20"), series("up", labels, "1x20")), "15m",
             (Fired({**labels, "severity": "warning"}, "15m 0s"),)),
        Case("AuditChainVerificationStale", "verified every minute",
             (series(verified, labels, "0+60x20"), series("up", labels, "1x20")), "15m"),
        Case("AuditChainVerificationStale", "a slow walk: last verified 4 minutes ago, within the threshold",
             (series(verified, labels, "0+60x6 360x4"), series("up", labels, "1x10")), "10m"),
        Case("AuditChainVerificationStale", "the app is down (TargetDown says so)",
             (series(verified, labels, "60x20"), series("up", labels, "0x20")), "15m"),
    )
    return RuleFile("audit-alerts", (Group("audit", rules),), cases)
