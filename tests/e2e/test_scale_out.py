"""End to end, scaled out: two app instances, an HA pair of Prometheus, VictoriaMetrics, vmalert.

- The reference service runs as two instances on one PostgreSQL: ``single`` (one uvicorn worker) and
  ``multi`` (two workers, prometheus-client's multiprocess mode); the Keycloak stand-in is the Keycloak job.
- Two Prometheus replicas (Debian's 2.42) run the generator's remote_write variant
  (``scrape.remote_write_config``): external labels ``cluster`` and ``replica`` (``${PROMETHEUS_REPLICA}``,
  expanded from each replica's environment), every interval 1 s, only the addresses filled in.
- Both write to one VictoriaMetrics that deduplicates: the ``replica`` label is dropped at ingestion
  (``-relabelConfig``, as Mimir's HA tracker drops it) and ``-dedup.minScrapeInterval`` keeps one sample per
  interval. (The sender-side drop, ``drop_replica_label``, and a no-dedup control are in
  ``test_scale_out_dedup.py``.)

After two rounds of the full traffic mix on each instance and a real database outage, the FastAPI and
Keycloak dashboards are checked through VictoriaMetrics' query API with ``dashboards.validate.live``, request
totals must equal what was sent, and ``vmalert`` runs the generated rule files against VictoriaMetrics:
every rule loads, every recording rule records, and a tampered audit chain pages. The run's capacity
figures go to the report (``tests/support/capacity.py``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.migrations import upgrade
from dashboards.config import Config, DsType
from dashboards.grafana import artifacts as grafana
from dashboards.grafana import uids
from dashboards.stack.prometheus import artifacts as prom_artifacts
from dashboards.stack.prometheus import scrape
from dashboards.validate.live import ERROR, NO_DATA, DirectRunner, Window, check_dashboard, expand_builtins, resolve
from dashboards.validate.panels import targets
from tests.support import capacity, victoria
from tests.support import prometheus as prom
from tests.support.app_process import AppProcess
from tests.support.binaries import free_port, require
from tests.support.keycloak_exporter import KeycloakExporter
from tests.support.postgres import PostgresServer
from tests.support.traffic import ALL_ROLES, drive, rid

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[2]
CFG = Config()
APP_JOB, KEYCLOAK_JOB = CFG.app_job, CFG.keycloak_job
CLUSTER = "ci"
REPLICAS = ("a", "b")
RULE_FILES = sorted(str(p) for p in (ROOT / "prometheus" / "rules").glob("*.yml"))
PROMETHEUS_PANELS = frozenset({str(DsType.PROMETHEUS)})
NO_DATA_ALLOWED: Mapping[tuple[str, str], str] = {
    # as in test_panels_show_data.py: empty, every panel has data through the remote store too
}


@dataclass
class Scaled:
    vm: victoria.VictoriaMetricsServer
    replicas: list[victoria.PrometheusReplica]
    apps: dict[str, AppProcess]
    keycloak: KeycloakExporter
    pg: PostgresServer
    db: str
    expected_requests: int
    """What the apps had counted before the traffic (their start-up /health polls) plus every request sent."""
    at: float
    """A time (unix s) after the traffic whose samples both replicas have delivered."""
    outage_statuses: list[int] = field(default_factory=list)

    def window(self) -> Window:
        return Window.last(timedelta(minutes=5), step_seconds=2, rate_interval="10s")

    def instance(self, name: str) -> str:
        return f"127.0.0.1:{self.apps[name].port}"


# --- the stack ------------------------------------------------------------------------------------------------
def _render(own: str, *, app_targets: list[str], keycloak: str, write_url: str, nowhere: str) -> dict[str, Any]:
    """The generator's remote_write variant for this run: 1 s intervals and local addresses, nothing else.
    ``nowhere``: Alertmanager and Alloy do not run here, their jobs are down (one address for both replicas)."""
    p = dataclasses.replace(
        CFG.prometheus, scrape_interval="1s", evaluation_interval="1s", app_scrape_interval="1s",
        keycloak_scrape_interval="1s", app_target=app_targets[0], keycloak_target=keycloak, self_target=own,
        alertmanager_target=nowhere, alloy_target=nowhere, remote_write_url=write_url, cluster=CLUSTER,
    )
    config = scrape.remote_write_config(dataclasses.replace(CFG, prometheus=p))
    for job in config["scrape_configs"]:  # the config object names one app address; this run has two
        if job["job_name"] == APP_JOB:
            job["static_configs"] = [{"targets": app_targets}]
    return config


def _requests_counted(app: AppProcess) -> float:
    """http_requests_total as the app exposes it (both workers summed in multiprocess mode)."""
    text = httpx.get(f"{app.base_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("http_requests_total{"))


def _database_outage(apps: list[AppProcess], pg: PostgresServer) -> tuple[list[int], int]:
    """Real 5xx on every instance with PostgreSQL stopped; returns the statuses and how many requests were sent
    (the /health polls until every instance is healthy again included)."""
    statuses: list[int] = []
    sent = 0
    pg.stop()
    try:
        for app in apps:
            admin = app.token("erin", ALL_ROLES)  # each instance trusts its own dev issuer
            with app.client() as client:
                for path in ("/api/authors", "/api/authors/1", "/health"):
                    response = client.get(path, headers={"Authorization": f"Bearer {admin}",
                                                         "X-Correlation-ID": rid()})
                    statuses.append(response.status_code)
                    sent += 1
    finally:
        pg.start()
    deadline = time.monotonic() + 30
    for app in apps:
        with app.client() as client:
            while True:
                sent += 1
                if client.get("/health").status_code == 200:
                    break
                assert time.monotonic() < deadline, "the service did not recover from the database outage"
                time.sleep(0.1)
    return statuses, sent


def _traffic_round(apps: Mapping[str, AppProcess]) -> int:
    sent = 0
    for app in apps.values():
        sent += len(drive(app).http)
        with app.client() as client:  # a trailing slash: FastAPI's redirect, the service's only 3xx
            assert client.get("/api/authors/", headers={"X-Correlation-ID": rid()}).status_code == 307
        sent += 1
    return sent


def _app_env(pg: PostgresServer, db: str) -> dict[str, str]:
    return {"DATABASE_URL": pg.url(db), "DATABASE_MIGRATE_ON_START": "false", "AUDIT_RETRY_MAX_SECONDS": "1",
            "AUDIT_VERIFY_INTERVAL_SECONDS": "1"}


@pytest.fixture(scope="module")
def scaled(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaled]:
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    require("VictoriaMetrics", victoria.binary(), "apt-get install victoria-metrics")
    db = f"scale_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(db)
    upgrade(postgres_server.url(db))  # once, before two instances start on it
    multiproc = tmp_path_factory.mktemp("multiproc")
    apps = {
        "single": AppProcess(_app_env(postgres_server, db), workdir=tmp_path_factory.mktemp("single")),
        "multi": AppProcess({**_app_env(postgres_server, db), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
                            workers=2, workdir=tmp_path_factory.mktemp("multi")),
    }
    app_targets = [f"127.0.0.1:{a.port}" for a in apps.values()]
    nowhere = f"127.0.0.1:{free_port()}"
    with KeycloakExporter() as keycloak, victoria.VictoriaMetricsServer() as vm:
        replicas = [victoria.PrometheusReplica(
            name, lambda own: _render(own, app_targets=app_targets, keycloak=keycloak.target, write_url=vm.write_url,
                                      nowhere=nowhere))
            for name in REPLICAS]
        victoria.start_all(replicas)  # they warm up (first scrape ~6 s) while the apps start
        try:
            for app in apps.values():
                app.start()
            try:
                before = sum(_requests_counted(a) for a in apps.values())  # start-up /health polls
                vm.wait_for(f'count(up{{job="{APP_JOB}"}} == 1) == 2', timeout=60, what="both instances up in VM")
                sent = _traffic_round(apps)
                outage, during = _database_outage(list(apps.values()), postgres_server)
                sent += during + _traffic_round(apps)
                expected = before + sent
                vm.wait_for(f'sum(http_requests_total{{job="{APP_JOB}"}}) >= {expected}', timeout=60,
                            what=f"{expected} requests in VictoriaMetrics")
                vm.wait_for(  # every audit row written, on both instances, and seen
                    f'sum(audit_events_written_total{{job="{APP_JOB}"}}) >= sum(audit_events_enqueued_total'
                    f'{{job="{APP_JOB}"}}) > 0 and on() sum(audit_queue_size{{job="{APP_JOB}"}}) == 0',
                    timeout=60, what="every audit row written")
                # the 5xx series appeared last: 4 more seconds of samples, then both replicas' final word
                at = time.time() + 4
                for replica in replicas:
                    replica.wait_delivered(at + 1)
                yield Scaled(vm, replicas, apps, keycloak, postgres_server, db, int(expected), at, outage)
            finally:
                for app in apps.values():
                    if app.proc is not None and app.proc.poll() is None:
                        app.stop()
        finally:
            for replica in replicas:
                replica.stop()


# --- HA: one copy of everything ----------------------------------------------------------------------------------
def test_each_replica_sends_its_own_replica_label_from_its_environment(scaled):
    for replica in scaled.replicas:
        federated = httpx.get(f"{replica.url}/federate", params={"match[]": f'up{{job="{APP_JOB}"}}'}).text
        assert f'cluster="{CLUSTER}"' in federated and f'replica="{replica.replica}"' in federated, federated
        assert replica.config["global"]["external_labels"] == {"cluster": CLUSTER, "replica": "${PROMETHEUS_REPLICA}"}


def test_victoriametrics_keeps_one_copy_of_every_series(scaled):
    vm, local = scaled.vm, scaled.replicas[0]
    assert vm.query('count({replica!=""})') == []  # dropped at ingestion
    assert victoria.total(vm.metrics(), "vm_deduplicated_samples_total") > 0  # and the copies merged

    def per_metric(rows: list[dict[str, Any]]) -> dict[str, float]:
        return {r["metric"]["__name__"]: prom.value(r) for r in rows}

    expr = f'count by (__name__) ({{job=~"{APP_JOB}|{KEYCLOAK_JOB}",__name__!~".*:.*|ALERTS.*"}})'
    stored = per_metric(vm.query(expr, scaled.at))
    scraped = per_metric(local.query(expr, scaled.at))
    assert len(stored) > 50 and stored == scraped
    # one replica's worth of samples per interval, not two: 10 s of 1 s scrapes
    density = f'max(count_over_time(up{{job="{APP_JOB}"}}[10s]))'
    assert prom.value(vm.query(density, scaled.at)[0]) <= prom.value(local.query(density, scaled.at)[0]) + 1


def test_request_totals_equal_what_was_sent(scaled):
    expr = f'sum(http_requests_total{{job="{APP_JOB}"}})'
    assert prom.value(scaled.vm.query(expr, scaled.at)[0]) == scaled.expected_requests
    assert prom.value(scaled.replicas[1].query(expr, scaled.at)[0]) == scaled.expected_requests
    by_instance = {r["metric"]["instance"]: prom.value(r) for r in scaled.vm.query(
        f'sum by (instance) (http_requests_total{{job="{APP_JOB}"}})', scaled.at)}
    assert set(by_instance) == {scaled.instance("single"), scaled.instance("multi")}
    assert all(v > 0 for v in by_instance.values())


def test_the_two_worker_instance_counts_every_request_once_across_its_workers(scaled):
    """Its exposition is one merged view of both workers' files: VictoriaMetrics holds one series per label set
    for it (not one per worker), and its audit rows were all written."""
    multi = scaled.instance("multi")
    per_series = scaled.vm.query(f'count by (method, endpoint, status_code) '
                                 f'(http_requests_total{{instance="{multi}"}}) > 1', scaled.at)
    assert per_series == []
    written = scaled.pg.psql("SELECT count(*) FROM user_actions", db=scaled.db).stdout.strip()
    stored = scaled.vm.query(f'sum(audit_events_written_total{{job="{APP_JOB}"}})', scaled.at)
    assert int(written) == prom.value(stored[0]) > 0


# --- the dashboards through VictoriaMetrics --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, Any]]:
    return {uid: d for uid, d in grafana.dashboards(CFG).items() if uid in (uids.FASTAPI, uids.KEYCLOAK)}


def test_every_fastapi_and_keycloak_panel_shows_data_through_victoriametrics(scaled, built):
    runner = DirectRunner(prometheus=scaled.vm.url)
    results = [r for d in built.values() for r in check_dashboard(d, runner, scaled.window(), PROMETHEUS_PANELS)]
    assert {r.dashboard for r in results} == {uids.FASTAPI, uids.KEYCLOAK}
    errors = [f"{r.dashboard} / {r.panel}: {r.detail}" for r in results if r.status == ERROR]
    assert errors == []
    empty = {(r.dashboard, r.panel) for r in results if r.status == NO_DATA}
    assert empty == set(NO_DATA_ALLOWED)


def test_every_panel_query_returns_the_same_series_from_the_store_as_from_one_replica(scaled, built):
    """No panel is split (or merged) differently by the remote path: at one instant, each Prometheus query
    returns exactly the label sets the replicas' own TSDBs return (their union: each replica's self-scrape
    is its own ``prometheus`` target)."""
    window, runner = scaled.window(), DirectRunner(prometheus=scaled.vm.url)
    compared = 0
    different = {}
    for dashboard in built.values():
        variables = resolve(dashboard, runner, window)
        for target in targets(dashboard):
            if target.is_variable or target.ds_type != DsType.PROMETHEUS:
                continue
            expr = expand_builtins(variables.format(target.expr, target.ds_type), window)
            stored = _label_sets(scaled.vm.query(expr, scaled.at))
            local = set().union(*(_label_sets(r.query(expr, scaled.at)) for r in scaled.replicas))
            compared += 1
            if stored != local:
                different[f"{target.dashboard} / {target.label}"] = (sorted(stored), sorted(local))
    assert compared >= 70  # every Prometheus target of the four dashboards
    assert different == {}


# --- rules, evaluated remotely by vmalert --------------------------------------------------------------------------
def test_every_generated_rule_file_passes_vmalerts_dry_run():
    require("vmalert", victoria.vmalert_binary(), "apt-get install victoria-metrics")
    assert len(RULE_FILES) == len(prom_artifacts.stems(CFG))
    result = victoria.VMAlert.dry_run(RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


@dataclass
class Remote:
    vmalert: victoria.VMAlert
    alertmanager: victoria.FakeAlertmanager


@pytest.fixture(scope="module")
def remote(scaled: Scaled) -> Iterator[Remote]:
    require("vmalert", victoria.vmalert_binary(), "apt-get install victoria-metrics")
    with victoria.FakeAlertmanager() as am, victoria.VMAlert(
        RULE_FILES, datasource_url=scaled.vm.url, notifier_url=am.url,
    ) as vmalert:
        yield Remote(vmalert, am)


def _rules_in_files() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(Path(path).read_text())["groups"]:
            out[group["name"]] = group["rules"]
    return out


def test_vmalert_loads_every_rule_and_each_recording_rule_records_its_series(scaled, remote):
    expected = _rules_in_files()
    groups = {g["name"]: g for g in remote.vmalert.groups()}
    assert set(groups) == set(expected)
    assert {name: len(g["rules"]) for name, g in groups.items()} == {n: len(r) for n, r in expected.items()}
    records = sorted({r["record"] for rules in expected.values() for r in rules if "record" in r})
    assert len(records) >= 15
    for record in records:  # traffic of the last minutes: every ratio has a denominator, no NaN dropped
        scaled.vm.wait_for(f'count({{__name__="{record}",job="{APP_JOB}"}})', timeout=60, what=f"{record} recorded")
    failing = {r["name"]: r["lastError"] for g in remote.vmalert.groups() for r in g["rules"] if r.get("lastError")}
    assert failing == {}


def test_a_tampered_audit_chain_pages_through_vmalert(scaled, remote):
    """The fault of the promtool case (audit_chain_broken 0 -> 1), produced for real: a row inserted into
    user_actions behind the writer's back. Each instance's verifier finds it; vmalert pages once per
    instance, with no replica label and nothing doubled."""
    scaled.pg.psql(
        "INSERT INTO user_actions (timestamp, action_type, resource, outcome, response_status, duration_ms) "
        "VALUES (now(), 'forged', '/api/authors', 'success', 200, 1)", db=scaled.db)
    instances = {scaled.instance("single"), scaled.instance("multi")}

    def firing(alerts: list[dict[str, Any]]) -> bool:
        return {a["labels"].get("instance") for a in alerts
                if a["name"] == "AuditChainBroken" and a["state"] == "firing"} == instances

    alerts = [a for a in remote.vmalert.wait_alerts(firing, "AuditChainBroken firing for both instances",
                                                    kick=scaled.vm.force_flush) if a["name"] == "AuditChainBroken"]
    assert len(alerts) == 2
    for alert in alerts:
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == APP_JOB
        assert "replica" not in alert["labels"] and alert["labels"]["alertgroup"] == "audit"
        instance = alert["labels"]["instance"]
        assert alert["annotations"]["summary"] == f"The audit trail's hash chain is broken on {instance}"
    victoria.poll(lambda: {("AuditChainBroken", i) for i in instances} <= remote.alertmanager.names(),
                  "both AuditChainBroken notifications at the Alertmanager")
    scaled.vm.wait_for('count(ALERTS{alertname="AuditChainBroken",alertstate="firing"}) == 2',
                       what="vmalert's ALERTS series in VictoriaMetrics")


# --- capacity --------------------------------------------------------------------------------------------------------
def test_capacity_figures_of_this_run_are_recorded(scaled):
    vm = scaled.vm
    series = {name: prom.value(vm.query(f'scrape_samples_scraped{{instance="{scaled.instance(name)}"}}',
                                        scaled.at)[0]) for name in scaled.apps}
    keycloak = prom.value(vm.query(f'scrape_samples_scraped{{job="{KEYCLOAK_JOB}"}}', scaled.at)[0])
    remote_write = {}
    for replica in scaled.replicas:
        m = replica.metrics()
        sent_bytes = victoria.total(m, "prometheus_remote_storage_bytes_total")
        samples = victoria.total(m, "prometheus_remote_storage_samples_total")
        remote_write[replica.replica] = {"bytes": sent_bytes, "samples": samples,
                                         "bytes_per_sample": round(sent_bytes / samples, 2)}
    vmm = vm.metrics()
    figures = {
        "victoria_metrics_version": victoria.version(),
        "series_per_instance": series,
        "keycloak_stand_in_series": keycloak,
        "samples_per_second_per_instance_at_15s": {k: round(v / 15, 1) for k, v in series.items()},
        "remote_write": remote_write,
        "remote_write_queue": dict(scrape.QUEUE),
        "vm_rows_received_from_both_replicas": victoria.total(vmm, "vm_rows_inserted_total"),
        "vm_samples_merged_away_by_dedup": vmm.get('vm_deduplicated_samples_total{type="merge"}', 0.0),
        "requests_sent": scaled.expected_requests,
    }
    path = capacity.record("scale_out", figures)
    assert all(100 < v < 5000 for v in series.values()), series
    assert all(10 < r["bytes_per_sample"] < 200 for r in remote_write.values()), remote_write
    assert path.exists()


# --- helpers ---------------------------------------------------------------------------------------------------
def _label_sets(rows: list[dict[str, Any]]) -> set[tuple[tuple[str, str], ...]]:
    """Label sets of the samples that carry a value (NaN is no value: VictoriaMetrics drops it, Prometheus keeps it)."""
    return {tuple(sorted(r["metric"].items())) for r in rows if str(r["value"][1]).lower() != "nan"}
