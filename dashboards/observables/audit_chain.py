"""The audit trail's integrity: the periodic verification of its hash chain (from the service's metrics)."""

from __future__ import annotations

from fastapi_lookout import metrics as m

from ..catalogs.app import series_name
from ..config import Config, DsType
from ..queries import PANEL, RANGE, Scope
from ..queries import audit as q
from ..stack.prometheus.rules import Alert, Case, Fired, series
from . import model as o
from .audit_writer import AUDIT, FILE
from .model import Diagnosis, Observable, Query, Runbook, Thresholds

PROM = DsType.PROMETHEUS




def status(cfg: Config) -> Observable:
    labels = o.app_labels(cfg)
    broken = series_name(m.AUDIT_CHAIN_BROKEN)
    return Observable(
        name="audit_chain.status", title="Chain status, last verification",
        description=("Last periodic verification of the audit hash chain: intact, or BROKEN when a row was edited, "
                     "deleted, reordered or inserted outside the app. scripts/audit.py verify names the row."),
        unit="none", datasource=PROM, queries=(Query(q.chain_broken(cfg), instant=True),), style=o.chain_status(),
        thresholds=Thresholds.any_is("red"),
        alerts=(Alert(
            name="AuditChainBroken",
            expr=f"{q.chain_broken(cfg, o.per_instance(cfg))} == 1",
            severity="critical",
            summary="The audit trail's hash chain is broken on {{ $labels.instance }}",
            description=("The periodic audit chain verification of {{ $labels.instance }} found user_actions rows "
                         "edited, deleted, reordered or inserted, a tail cut off, or a forged checkpoint: the "
                         "audit trail after the last intact seq (audit_chain_verified_seq) cannot be trusted."),
        ),),
        cases=(
            Case("AuditChainBroken", "a verification finds tampering: pages at once",
                 (series(broken, labels, "0x5 1x5"),), "6m", (Fired({**labels, "severity": "critical"}),)),
            Case("AuditChainBroken", "every verification finds the chain intact",
                 (series(broken, labels, "0x10"),), "10m"),
            Case("AuditChainBroken", "broken, then intact again (the rows restored)",
                 (series(broken, labels, "0x2 1x2 0x6"),), "8m"),
        ),
        runbook=Runbook(
            meaning="The audit trail was altered outside the service: rows edited, deleted, reordered or inserted.",
            impact="Nothing after the last intact seq can be trusted as evidence until it is explained.",
            diagnosis=(
                Diagnosis("the kind, row id and seq (audit_chain_broken)",
                          f'{{service="{cfg.app_service}"}} | json | logger="app.audit"', "logql"),
                Diagnosis("a full walk from a trusted anchor",
                          "fastapi-lookout-audit verify --anchor <seq:row_hash kept outside the database>", "shell"),
            ),
            mitigation=("Treat it as a security incident and snapshot the database before anything else "
                        "(retention already refuses to prune a broken chain). `altered` from seq 1 on every row "
                        "after a deploy means AUDIT_HMAC_KEY changed, not tampering."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def verification_age(cfg: Config) -> Observable:
    a, labels = cfg.alerting, o.app_labels(cfg)
    verified = series_name(m.AUDIT_CHAIN_LAST_VERIFICATION)
    return Observable(
        name="audit_chain.verification_age", title="Since last verification",
        description=("Seconds since the periodic verifier last finished; it runs every "
                     "AUDIT_VERIFY_INTERVAL_SECONDS."),
        unit="s", datasource=PROM, queries=(Query(q.chain_last_verification_age(cfg)),), style=o.stat(),
        thresholds=Thresholds.of("green", (a.audit_verification_stale_seconds, "orange")),
        alerts=(Alert(
            name="AuditChainVerificationStale",
            expr=(f"{q.chain_last_verification_age(cfg, o.per_instance(cfg))} > {a.audit_verification_stale_seconds}\n"
                  f"and on (job, instance) up{{{cfg.app_selector}}} == 1"),
            for_="5m",
            severity="warning",
            summary="The audit chain of {{ $labels.instance }} was last verified {{ $value | humanizeDuration }} ago",
            description=(f"{{{{ $labels.instance }}}} is up but its periodic audit chain verification last "
                         f"completed {{{{ $value | humanizeDuration }}}} ago (threshold "
                         f"{a.audit_verification_stale_seconds}s, about 3x AUDIT_VERIFY_INTERVAL_SECONDS): "
                         "tampering would go unnoticed, and AuditChainBroken cannot fire."),
        ),),
        cases=(
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
        ),
        runbook=Runbook(
            meaning="The periodic verification of the audit chain has not completed for too long.",
            impact="Tampering would go unnoticed, and AuditChainBroken cannot fire.",
            diagnosis=(Diagnosis("failed runs by reason", q.chain_failed_verifications(cfg, o.per_instance(cfg))),),
            mitigation=("Errors (audit_chain_verification_failed warnings) name why: database down, not migrated, "
                        "permissions. No errors and no completion: the first full walk after a restart is still "
                        "running (~40,000 rows/s) or the maintenance task died (restart the service)."),
        ),
        feature=AUDIT, rule_file=FILE,
    )


def observables(cfg: Config) -> list[Observable]:
    unverified = Thresholds.of("green", (cfg.alerting.audit_unverified_rows_warning, "orange"))
    on_audit = "Its stale or broken verification has the alerts (AuditChainVerificationStale, AuditChainBroken)."
    return [
        status(cfg), verification_age(cfg),
        Observable("audit_chain.status_service", "Audit chain, last verification",
                   "Last periodic verification of the audit hash chain (details on the audit dashboard).", "none",
                   PROM, (Query(q.chain_broken(cfg, PANEL), instant=True),), o.chain_status(),
                   Thresholds.any_is("red"), alert_refs=("AuditChainBroken",), feature=AUDIT),
        Observable("audit_chain.unverified", "Unverified rows now",
                   "Rows written (chain head) but not yet verified; drains every verification interval.", "short",
                   PROM, (Query(q.chain_unverified_rows(cfg)),), o.stat(), unverified, no_alert=on_audit,
                   feature=AUDIT),
        Observable("audit_chain.unverified_service", "Unverified audit rows now",
                   "Rows written to the hash chain but not yet verified.", "short", PROM,
                   (Query(q.chain_unverified_rows(cfg, PANEL)),), o.stat(), unverified, no_alert=on_audit,
                   feature=AUDIT),
        Observable("audit_chain.failed_verifications", "Failed verifications",
                   "Verification runs that found tampering (broken) or could not read the database (error), over "
                   "the time range.", "short", PROM,
                   (Query(q.chain_failed_verifications(cfg, Scope((cfg.app_selector,), RANGE)), legend="{{result}}",
                          instant=True),), o.stat(),
                   Thresholds.any_is("red"), no_alert=on_audit, feature=AUDIT),
        Observable("audit_chain.progress", "Rows written vs verified",
                   "Highest seq written to the chain and highest seq the verifier found intact: the lines meet "
                   "after each verification.", "short", PROM,
                   (Query(q.chain_written_seq(cfg), legend="written"),
                    Query(q.chain_verified_seq(cfg), legend="verified")),
                   o.timeseries(min_zero=False), no_alert=on_audit, feature=AUDIT),
    ]
