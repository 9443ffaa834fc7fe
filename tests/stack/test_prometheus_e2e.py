"""End to end: a real Prometheus loads the generated config and rules, scrapes the real app (on PostgreSQL),
the Keycloak stand-in and a real Alertmanager; traffic with auth failures and a database outage raises the
expected alerts, the healthy-path ones stay silent, and the critical one reaches the pager webhook.

Only the config object changes for the test (1 s intervals, local targets, fast Alertmanager grouping);
rules, thresholds and ``for`` durations are the generated ones, so slow alerts are asserted as pending.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboards.config import Config
from dashboards.stack.prometheus import artifacts
from tests.stack.test_alertmanager import AlertmanagerServer, WebhookSink, fast_config
from tests.support import prometheus as prom
from tests.support.app_process import AppProcess
from tests.support.binaries import free_port, require, which
from tests.support.keycloak_exporter import KeycloakExporter
from tests.support.postgres import PostgresServer
from tests.support.traffic import ALL_ROLES

pytestmark = pytest.mark.realserver
CFG = Config()
UNLIMITED = {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_BURST": "1000000",
             "RATE_LIMIT_IP_PER_MINUTE": "1000000", "RATE_LIMIT_IP_BURST": "1000000"}
AUTH_FAILURES = 300
"""401s sent: rate()*60 over the rules' 5 m window must pass alerting.auth_failures_per_minute (30)."""
OUTAGE_REQUESTS = 150


def local_config(cfg: Config, *, app: str, keycloak: str, prometheus: str, alertmanager: str) -> Config:
    p = dataclasses.replace(
        cfg.prometheus, scrape_interval="1s", evaluation_interval="1s", app_scrape_interval="1s",
        keycloak_scrape_interval="1s", app_target=app, keycloak_target=keycloak, self_target=prometheus,
        alertmanager_target=alertmanager, alloy_target=f"127.0.0.1:{free_port()}")
    return dataclasses.replace(cfg, prometheus=p)



def list_authors(client: httpx.Client, token: str) -> int:
    return client.get("/api/authors", headers={"Authorization": f"Bearer {token}"}).status_code


def alerts(server: prom.PrometheusServer) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{server.url}/api/v1/alerts", timeout=5) as response:
        return json.loads(response.read())["data"]["alerts"]


def rules(server: prom.PrometheusServer) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{server.url}/api/v1/rules", timeout=5) as response:
        return [r for g in json.loads(response.read())["data"]["groups"] for r in g["rules"]]


def wait_alerts(server: prom.PrometheusServer, expected: dict[str, dict[str, str]],
                timeout: float = 45.0) -> list[dict[str, Any]]:
    """Until an alert with each name (and those labels) is pending or firing."""
    deadline = time.monotonic() + timeout
    while True:
        found = alerts(server)
        missing = [name for name, labels in expected.items()
                   if not any(a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()
                              for a in found)]
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"alerts {missing} not raised; raised: "
                               f"{[(a['labels']['alertname'], a['state']) for a in found]}")
        time.sleep(0.25)


def test_generated_rules_raise_the_expected_alerts_on_the_real_app(
        postgres_server: PostgresServer, postgres_db: str, tmp_path: Path):
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    require("Alertmanager", which("prometheus-alertmanager") or which("alertmanager"),
            "apt-get install prometheus-alertmanager")
    started = time.monotonic()
    sink = WebhookSink()
    env = {"DATABASE_URL": postgres_server.url(postgres_db), "AUDIT_QUEUE_MAX_SIZE": "20",
           "AUDIT_RETRY_MAX_SECONDS": "1", **UNLIMITED}
    try:
        with (AppProcess(env, workdir=tmp_path) as app, KeycloakExporter() as keycloak,
              AlertmanagerServer(fast_config(sink)) as am):
            server = prom.PrometheusServer({})
            cfg = local_config(fast_config(sink), app=f"127.0.0.1:{app.port}", keycloak=keycloak.target,
                              prometheus=f"127.0.0.1:{server.port}", alertmanager=f"127.0.0.1:{am.port}")
            (server.root / "prometheus.yml").write_bytes(artifacts.prometheus_yml(cfg))
            (server.root / "rules").mkdir()
            for stem in artifacts.BUILDERS:
                (server.root / "rules" / f"{stem}.yml").write_bytes(artifacts.rules_yml(cfg, stem))
            server.jobs = {job: [] for job in (cfg.app_job, cfg.keycloak_job, cfg.prometheus.self_job,
                                               cfg.prometheus.alertmanager_job)}
            with server:
                server.wait_scraped(samples=2)
                admin = app.token("alice", ALL_ROLES)
                with app.client() as client:
                    healthy = [list_authors(client, admin) for _ in range(10)]
                    assert set(healthy) == {200}
                    failed = [client.get("/api/authors").status_code for _ in range(AUTH_FAILURES)]
                    assert set(failed) == {401}
                    postgres_server.stop()
                    try:
                        outage = [list_authors(client, admin)]
                        # The 500 series is new: rate() ignores the value it is first scraped with, so the
                        # burst must come after Prometheus holds the series.
                        server.wait_for(f'http_requests_total{{{cfg.app_selector},status_code="500"}}',
                                        what="the first 500 scraped")
                        outage += [list_authors(client, admin) for _ in range(OUTAGE_REQUESTS)]
                    finally:
                        postgres_server.start()
                assert set(outage) == {500}, outage

                raised = wait_alerts(server, {
                    "AppHighErrorRatio": {"job": cfg.app_job, "severity": "warning"},
                    "AppAvailabilityBudgetBurn": {"job": cfg.app_job, "severity": "critical", "long_window": "1h"},
                    "AppAuthFailuresHigh": {"job": cfg.app_job},
                    "AuditEventsDropped": {"job": cfg.app_job, "severity": "critical"},
                })
                paged = sink.wait_for("pager", lambda got: any(
                    a["labels"]["alertname"] == "AuditEventsDropped" for a in got))
                evaluated = rules(server)

        by_name = {(a["labels"]["alertname"], a["labels"].get("job")): a for a in raised}
        assert by_name[("AuditEventsDropped", cfg.app_job)]["state"] == "firing"  # no `for`: any drop pages
        assert by_name[("AppHighErrorRatio", cfg.app_job)]["state"] in ("pending", "firing")
        healthy_jobs = (cfg.app_job, cfg.keycloak_job, cfg.prometheus.self_job, cfg.prometheus.alertmanager_job)
        assert [a["labels"] for a in raised
                if a["labels"]["alertname"] == "TargetDown" and a["labels"]["job"] in healthy_jobs] == []
        assert not any(a["labels"]["alertname"] == "AuditWriterStalled" for a in raised)
        assert all(a["labels"]["severity"] == "critical" for a in paged)
        assert [r["name"] for r in evaluated if r.get("health") != "ok"] == []  # every rule evaluates cleanly
        assert time.monotonic() - started < 90
    finally:
        sink.close()
