"""prometheus/prometheus.yml and prometheus-remote-write.yml: scrape jobs, rule files, Alertmanager.

Job names come from the config object the dashboards read (``app_job``,
``keycloak_job``), so a rule or panel can only select a job that is scraped.
Exemplars need ``--enable-feature=exemplar-storage`` on the command line;
they are not a config-file setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ...config import Config

RULE_FILES: Final = "rules/*.yml"
"""Relative to the config file's directory (``/etc/prometheus`` in the container)."""


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    name: str
    target: str
    severity: str
    """Severity of this job's TargetDown alert."""
    interval: str = ""
    """Empty: the global scrape interval."""
    metrics_path: str = "/metrics"
    token_file: str = ""


def scrape_jobs(cfg: Config) -> tuple[ScrapeJob, ...]:
    p = cfg.prometheus
    keycloak = (ScrapeJob(cfg.keycloak_job, p.keycloak_target, "critical", p.keycloak_scrape_interval,
                          metrics_path=p.keycloak_metrics_path),) if cfg.features.keycloak else ()
    return (
        ScrapeJob(cfg.app_job, p.app_target, "critical", p.app_scrape_interval, token_file=p.app_metrics_token_file),
        *keycloak,
        ScrapeJob(p.self_job, p.self_target, "warning"),
        ScrapeJob(p.alertmanager_job, p.alertmanager_target, "warning"),
        ScrapeJob(p.alloy_job, p.alloy_target, "warning"),
    )


def _scrape_config(job: ScrapeJob) -> dict[str, Any]:
    out: dict[str, Any] = {"job_name": job.name}
    if job.interval:
        out["scrape_interval"] = job.interval
    out["metrics_path"] = job.metrics_path
    if job.token_file:
        out["authorization"] = {"type": "Bearer", "credentials_file": job.token_file}
    out["static_configs"] = [{"targets": [job.target]}]
    return out


def prometheus_config(cfg: Config) -> dict[str, Any]:
    p = cfg.prometheus
    return {
        "global": {"scrape_interval": p.scrape_interval, "evaluation_interval": p.evaluation_interval},
        "rule_files": [RULE_FILES],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [p.alertmanager_target]}]}]},
        "scrape_configs": [_scrape_config(job) for job in scrape_jobs(cfg)],
    }


QUEUE: Final = {
    "capacity": 10000,
    "min_shards": 1,
    "max_shards": 50,
    "max_samples_per_send": 2000,
    "batch_send_deadline": "5s",
    "min_backoff": "30ms",
    "max_backoff": "5s",
}
"""Prometheus' defaults made explicit (about 2 k samples/s per shard), so a reviewer sees the bounds."""


def external_labels(cfg: Config) -> dict[str, str]:
    """``cluster`` names the HA pair, the replica label tells its members apart (one value per replica)."""
    p = cfg.prometheus
    return {"cluster": p.cluster, **({p.replica_label: p.replica} if p.replica_label else {})}


def remote_write_config(cfg: Config) -> dict[str, Any]:
    """The same Prometheus, also pushing every sample to Mimir/Thanos-receive (long-term, global view).

    Run as an HA pair: two replicas with the same file and a different replica label value each; the store
    keeps one copy (docs/scale-out.md). With ``drop_replica_label`` the label is removed before sending
    (``write_relabel_configs`` see the external labels), for stores that merge identical series by time.
    Alerts never carry it (``alert_relabel_configs``): both replicas evaluate the rules, and Alertmanager
    merges only alerts whose labels are identical.
    """
    p = cfg.prometheus
    base = prometheus_config(cfg)
    out: dict[str, Any] = {"global": {**base["global"], "external_labels": external_labels(cfg)}}
    out.update({k: v for k, v in base.items() if k != "global"})
    if p.replica_label:  # both replicas' alerts must be identical for Alertmanager to send one notification
        drop = [{"action": "labeldrop", "regex": p.replica_label}]
        out["alerting"] = {"alert_relabel_configs": drop, **base["alerting"]}
    if p.remote_write_url:
        target: dict[str, Any] = {"url": p.remote_write_url, "name": "long-term"}
        if p.remote_write_tenant:
            target["headers"] = {"X-Scope-OrgID": p.remote_write_tenant}
        if p.drop_replica_label and p.replica_label:
            target["write_relabel_configs"] = [{"action": "labeldrop", "regex": p.replica_label}]
        target.update({
            "send_exemplars": True,
            "queue_config": dict(QUEUE),
            "metadata_config": {"send": True, "send_interval": "1m"},
        })
        out["remote_write"] = [target]
    return out
