"""The one configuration object every dashboard, query, rule and stack file reads.

Selectors, datasource uids, label values, thresholds, SLO numbers and the
feature switches live here and nowhere else (kubernetes-mixin style), so
pointing the bundle at another service is a YAML override (``load``), not a
search-and-replace. Field docstrings are the documentation of each key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import yaml


class DsType(StrEnum):
    """Grafana datasource plugin ids."""

    PROMETHEUS = "prometheus"
    LOKI = "loki"
    POSTGRES = "grafana-postgresql-datasource"


@dataclass(frozen=True, slots=True)
class Features:
    """What the service has. A feature switched off leaves no panel, row, variable, rule, alert, promtool
    case, scrape job, datasource or compose service behind: a service without it would show them empty."""

    websocket: bool = True
    """WebSocket endpoints instrumented with the ws_* metrics."""
    audit: bool = True
    """The audit trail (fastapi_lookout.audit): the audit-logs dashboard, the writer and chain panels and
    alerts, the PostgreSQL audit datasource."""
    auth: bool = True
    """Bearer-token authentication counted in auth_attempts_total."""
    rate_limit: bool = True
    """Rate limits counted in rate_limit_hits_total."""
    database: bool = True
    """SQL statements timed by fastapi_lookout.db_timing (db_query_duration_seconds)."""
    keycloak: bool = True
    """Keycloak as the identity provider: its dashboard, scrape job, alerts, realm and compose service."""


@dataclass(frozen=True, slots=True)
class Datasources:
    prometheus: str = "prometheus"
    loki: str = "loki"
    postgres_audit: str = "postgres-audit"


@dataclass(frozen=True, slots=True)
class Slo:
    availability: float = 0.995
    """Target ratio of non-5xx responses."""
    latency_quantile: float = 0.95
    """The quantile the latency objective is stated for (and per-endpoint panels show)."""
    latency_p95_seconds: float = 0.25
    """Latency objective at ``latency_quantile``; a bucket boundary of the latency histograms."""
    audit_duration_ok_ms: float = 500.0
    audit_duration_warn_ms: float = 1000.0


@dataclass(frozen=True, slots=True)
class Audit:
    database: str = "app"
    reader_user: str = "grafana_reader"
    password_env: str = "GRAFANA_DB_PASSWORD"
    host: str = "postgres:5432"


@dataclass(frozen=True, slots=True)
class Endpoints:
    prometheus_url: str = "http://prometheus:9090"
    loki_url: str = "http://loki:3100"


@dataclass(frozen=True, slots=True)
class Loki:
    """Loki single binary (loki/loki.yml) and its object-storage variant (loki/loki-s3.yml)."""

    retention_period: str = "720h"
    """Lines older than this are deleted by the compactor; must be a non-zero duration."""
    ingestion_rate_mb: float = 4.0
    ingestion_burst_size_mb: float = 8.0
    per_stream_rate_limit_mb: float = 3.0
    max_label_names_per_series: int = 8
    """Alloy sets four stream labels and Loki adds `service_name`; anything beyond is a pipeline bug."""
    storage: str = "filesystem"
    """Backend of loki/loki.yml: `filesystem` (the `/loki` volume) or `s3`; loki-s3.yml is always `s3`."""
    s3_endpoint: str = "minio:9000"
    s3_bucket: str = "loki"
    s3_region: str = "us-east-1"
    s3_insecure: bool = True
    """Plain HTTP to the endpoint (an in-cluster MinIO); false for AWS S3."""
    memberlist_join: str = "loki-memberlist:7946"
    """Ring peers of the scale-out variant (a headless service resolving to every Loki)."""


@dataclass(frozen=True, slots=True)
class Images:
    """Pinned image tags of docker-compose.yml (never `latest`): each the newest stable release of its line when it
    was last checked, with that release's date.

    Renovate (renovate.json) proposes new tags for these lines; docker-compose.yml is generated from them, so
    update here, never there. A release on a new major or minor line fails tests/stack/test_upstream_configs.py
    until the generated configs are checked against that release's sources; README "Versions" records what was
    checked and how. Each upstream pin's docstring starts "<name> <version>, released <YYYY-MM-DD>": Renovate's
    regex finds the pins by it."""

    app: str = "fastapi-observability-bundle:0.1.0"
    """This repository's reference service, built by compose: not an upstream release, not tracked by Renovate."""
    postgres: str = "postgres:18.6"
    """PostgreSQL 18.6, released 2026-08-13 (18.5 was never released). The 18 image keeps its cluster in
    /var/lib/postgresql/18/docker and declares the volume at /var/lib/postgresql, where compose mounts it; a volume
    written by 16 needs pg_upgrade or a dump and restore."""
    keycloak: str = "quay.io/keycloak/keycloak:26.8.0"
    """Keycloak 26.8.0, released 2026-10-01; fixes the CVEs published against 26.2 up to then. Since 26.7 it waits up
    to 1 s + 10 s for requests on shutdown: compose gives it a longer stop grace period."""
    prometheus: str = "prom/prometheus:v3.14.0"
    """Prometheus 3.14.0, released 2026-08-17. `--storage.tsdb.retention.time` is deprecated since 3.8 (the config
    file's storage.tsdb.retention replaces it) but still read; compose keeps the flag while CI's promtool is 2.42."""
    alertmanager: str = "prom/alertmanager:v0.34.0"
    """Alertmanager 0.34.0, released 2026-08-16."""
    loki: str = "grafana/loki:3.7.6"
    """Loki 3.7.6, released 2026-08-05. Distroless since 3.6: no shell and no wget, so compose's healthcheck runs
    `loki -health`."""
    alloy: str = "grafana/alloy:v1.19.2"
    """Alloy 1.19.2, released 2026-08-29 (first seen that day; patch of 1.19.0, 2026-08-20). Since 1.18 Docker
    discovery and loki.source.docker use the Moby client, which the Docker Engine 29 report (grafana/alloy#5610)
    was about."""
    grafana: str = "grafana/grafana:13.2.0"
    """Grafana 13.2.0, released 2026-08-18. Classic file provisioning is unchanged; the /api/* HTTP API the
    publisher uses is deprecated since 13 and still served."""


@dataclass(frozen=True, slots=True)
class Ports:
    """Host ports docker-compose publishes (on ``bind_address``); containers keep their defaults."""

    bind_address: str = "127.0.0.1"
    app: int = 8000
    keycloak: int = 8080
    prometheus: int = 9090
    alertmanager: int = 9093
    loki: int = 3100
    alloy: int = 12345
    grafana: int = 3000


@dataclass(frozen=True, slots=True)
class Stack:
    """The runnable stack: Loki, Alloy, Keycloak realm, PostgreSQL init and docker-compose."""

    loki: Loki = field(default_factory=Loki)
    images: Images = field(default_factory=Images)
    ports: Ports = field(default_factory=Ports)
    reference_service: bool = True
    """The app is this repository's reference service: compose builds its image with its settings, its traffic
    generator and the alert sink that logs alerts. False for your own service: compose runs `images.app` with
    only `ENVIRONMENT` set (keep your own settings in a compose override file), no traffic generator, and
    Alertmanager sends to `alerting.*_webhook_url`."""
    app_health_path: str = "/health"
    """The app's health endpoint (compose's healthcheck, which every dependant waits on)."""
    app_environment: str = "demo"
    """`ENVIRONMENT` of the app in compose (its `environment` log field and Loki label)."""
    keycloak_realm: str = "demo"
    keycloak_client_id: str = "authors-app"
    app_db_user: str = "app"
    """Owner of the audit database (`audit.database`); runs the migrations."""
    keycloak_db: str = "keycloak"
    """Database and role of Keycloak in the same PostgreSQL."""


@dataclass(frozen=True, slots=True)
class Prometheus:
    """prometheus/prometheus.yml and its remote_write variant (dashboards/stack/prometheus/scrape.py)."""

    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    app_scrape_interval: str = "15s"
    keycloak_scrape_interval: str = "30s"
    app_target: str = "app:8000"
    keycloak_target: str = "keycloak:9000"
    keycloak_metrics_path: str = "/metrics"
    """Follows Keycloak's `--http-relative-path` (`/auth` gives `/auth/metrics`)."""
    self_target: str = "localhost:9090"
    alertmanager_target: str = "alertmanager:9093"
    """Scraped as a job and the address alerts are sent to."""
    alloy_target: str = "alloy:12345"
    self_job: str = "prometheus"
    alertmanager_job: str = "alertmanager"
    alloy_job: str = "alloy"
    app_metrics_token_file: str = ""
    """Bearer token file for the app's scrape when its `METRICS_TOKEN` is set; empty: no auth."""
    remote_write_url: str = "http://mimir:9009/api/v1/push"
    """Mimir/Thanos-receive push URL of prometheus-remote-write.yml; empty: that variant writes nowhere."""
    remote_write_tenant: str = ""
    """`X-Scope-OrgID` header for a multi-tenant Mimir; empty: no header."""
    cluster: str = "observability-bundle"
    """`cluster` external label of the remote_write variant (tells senders apart in shared storage; Mimir's HA
    tracker reads it as the HA pair's name)."""
    replica_label: str = "replica"
    """External label of the remote_write variant that tells the replicas of one HA pair apart (both scrape the
    same targets). The store must deduplicate by it: Mimir's HA tracker (`ha_replica_label`), Thanos
    (`--query.replica-label`), or VictoriaMetrics (drop it, plus `-dedup.minScrapeInterval`); see
    docs/scale-out.md. Empty: no replica label (one Prometheus per cluster)."""
    replica: str = "${PROMETHEUS_REPLICA}"
    """Its value. The default is read from each replica's environment at start: Prometheus 3 expands `${VAR}` in
    external labels (the pinned image), 2.x only with `--enable-feature=expand-external-labels`; an unset
    variable gives an empty value, which is no label at all. A literal value means one rendered file per
    replica."""
    drop_replica_label: bool = False
    """True: `write_relabel_configs` drop the replica label before sending, for a store that merges identical
    series by time only (VictoriaMetrics with `-dedup.minScrapeInterval` and no relabeling of its own). False:
    the label travels and the store deduplicates by it (Mimir's HA tracker needs it)."""


@dataclass(frozen=True, slots=True)
class Alerting:
    """Alert thresholds, SLO alerting and Alertmanager routing (dashboards/stack/prometheus/)."""

    docs_base_url: str = ""
    """Where the generated docs/ folder is browsable (e.g. your repository's `.../blob/main/docs`): each alert's
    `runbook_url` is then `<docs_base_url>/runbooks.md#<alert>`. Empty: `runbook_url` opens the alert's panel in
    Grafana (`grafana_url`), and the alert's `runbook` annotation carries the runbook's first lines."""
    grafana_url: str = "http://localhost:3000"
    """Grafana as the people who get the alerts reach it (links in alerts point here)."""
    target_down_for: str = "5m"
    error_ratio: float = 0.05
    """5xx share of the app's requests over 5 m that warns."""
    error_ratio_min_requests: int = 20
    """Requests needed in those 5 m before the ratio means anything."""
    rate_limit_hits_per_minute: float = 60.0
    auth_failures_per_minute: float = 30.0
    keycloak_failed_logins_per_minute: float = 12.0
    keycloak_failed_login_ratio: float = 0.5
    keycloak_min_logins: int = 20
    """Login attempts needed in 5 m before the failed-login ratio means anything."""
    keycloak_heap_warning: float = 0.8
    keycloak_heap_critical: float = 0.9
    keycloak_gc_overhead: float = 0.1
    audit_queue_warning: int = 1000
    audit_queue_critical: int = 5000
    audit_stall_seconds: int = 300
    audit_verification_stale_seconds: int = 300
    """Age of the last completed audit chain verification that warns: 3x the app's
    AUDIT_VERIFY_INTERVAL_SECONDS (default 60) plus a margin; raise it with the interval."""
    slo_period_days: int = 30
    slo_min_requests: int = 100
    """Requests a burn-rate alert's long window must hold before it may fire (no 3 a.m. page for one error)."""
    slo_excluded_endpoints: str = "/health"
    """Regex of `endpoint` values outside the SLIs (probes); empty: none."""
    pager_webhook_url: str = "http://alert-webhook:8080/pager"
    ticket_webhook_url: str = "http://alert-webhook:8080/ticket"
    webhook_url_dir: str = ""
    """When set, receivers read their URL from `<dir>/pager` and `<dir>/ticket` (`url_file`, Alertmanager >= 0.26)."""
    audit_unverified_rows_warning: int = 10_000
    """Rows written to the hash chain but not yet verified that turn the panel orange (a verifier falling behind)."""
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


@dataclass(frozen=True, slots=True)
class PanelThresholds:
    """Colour steps of panels that have no alert of their own (those with one read `alerting`)."""

    unhandled_exceptions_per_second: float = 0.001
    http_client_error_status: int = 400
    http_server_error_status: int = 500
    keycloak_failed_logins_per_second_warning: float = 0.1
    keycloak_failed_logins_per_second_critical: float = 1.0
    keycloak_login_failure_ratio_warning: float = 0.1
    keycloak_login_failure_ratio_critical: float = 0.3
    keycloak_5xx_per_second: float = 0.01
    keycloak_cpu_warning: float = 0.8
    keycloak_cpu_critical: float = 0.9
    keycloak_gc_overhead_warning: float = 0.05
    keycloak_pool_blocking_ms_warning: float = 100.0
    keycloak_pool_blocking_ms_critical: float = 1000.0
    keycloak_cache_hit_ratio_warning: float = 0.8
    """Below this the hit ratio turns orange..."""
    keycloak_cache_hit_ratio_critical: float = 0.5
    """...and below this red."""
    log_errors_per_second: float = 0.1


class _Derived(str):
    """A value computed from other fields: ``dataclasses.replace`` recomputes it instead of copying it."""

    __slots__ = ()


yaml.SafeDumper.add_representer(_Derived, yaml.representer.SafeRepresenter.represent_str)


@dataclass(frozen=True, slots=True)
class Config:
    features: Features = field(default_factory=Features)
    datasources: Datasources = field(default_factory=Datasources)
    app_job: str = "fastapi-app"
    """Scrape job of the app; every app rule and panel selects it."""
    keycloak_job: str = "keycloak"
    app_selector: str = ""
    """Restricts the app's `job` variable; panels then filter on `$job`/`$instance`. Empty: `job="<app_job>"`."""
    keycloak_selector: str = ""
    """Empty: `job="<keycloak_job>"`."""
    app_service: str = "fastapi-app"
    """Value of the Loki `service` stream label the Alloy pipeline gives the app."""
    environment: str = ""
    """Loki `environment` label value to pin; empty means any."""
    slo: Slo = field(default_factory=Slo)
    audit: Audit = field(default_factory=Audit)
    endpoints: Endpoints = field(default_factory=Endpoints)
    dashboard_folder: str = "Observability bundle"
    stack: Stack = field(default_factory=Stack)
    prometheus: Prometheus = field(default_factory=Prometheus)
    alerting: Alerting = field(default_factory=Alerting)
    panels: PanelThresholds = field(default_factory=PanelThresholds)

    def __post_init__(self) -> None:
        # Derived selectors follow their job through dataclasses.replace and YAML overrides;
        # an explicitly set selector is kept as given.
        for selector, job in (("app_selector", self.app_job), ("keycloak_selector", self.keycloak_job)):
            current = getattr(self, selector)
            if not current or isinstance(current, _Derived):
                object.__setattr__(self, selector, _Derived(f'job="{job}"'))

    def enabled(self, feature: str | tuple[str, ...] | None) -> bool:
        """Whether a feature (a field name of ``Features``) is switched on; a tuple means any of them, ``None``
        always."""
        if feature is None:
            return True
        if isinstance(feature, tuple):
            return any(self.enabled(f) for f in feature)
        return bool(getattr(self.features, feature))

    @property
    def needs_postgres(self) -> bool:
        """The stack runs a PostgreSQL: for the audit trail, Keycloak, or the reference service's own tables."""
        f = self.features
        return f.audit or f.keycloak or (f.database and self.stack.reference_service)

    @property
    def app_database(self) -> bool:
        """That PostgreSQL holds the app's database (audit tables and, for the reference service, its own)."""
        return self.features.audit or (self.features.database and self.stack.reference_service)

    def datasource_uids(self) -> dict[str, str]:
        """Type of each provisioned datasource, keyed by uid (what panels may reference)."""
        uids = {self.datasources.prometheus: str(DsType.PROMETHEUS), self.datasources.loki: str(DsType.LOKI)}
        if self.features.audit:
            uids[self.datasources.postgres_audit] = str(DsType.POSTGRES)
        return uids
