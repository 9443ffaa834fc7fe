"""prometheus.yml and its remote_write variant: promtool accepts both; jobs come from the one config object."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dashboards.config import Config, load_config
from dashboards.stack.prometheus import artifacts, scrape
from tests.stack.test_prometheus_rules import promtool, render_prometheus

CFG = Config()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_prometheus(CFG, tmp_path_factory.mktemp("prom"))


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-remote-write.yml"])
def test_promtool_accepts_the_config_and_finds_every_rule_file(rendered: Path, name: str):
    result = promtool("check", "config", name, cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(artifacts.BUILDERS)} rule files found" in result.stdout


def _jobs(data: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in data["scrape_configs"]}


def test_scrape_jobs_intervals_and_targets():
    data = scrape.prometheus_config(CFG)
    jobs = _jobs(data)
    assert list(jobs) == ["fastapi-app", "keycloak", "prometheus", "alertmanager", "alloy"]
    assert (jobs["fastapi-app"]["scrape_interval"], jobs["fastapi-app"]["static_configs"]) == (
        "15s", [{"targets": ["app:8000"]}])
    assert (jobs["keycloak"]["scrape_interval"], jobs["keycloak"]["metrics_path"],
            jobs["keycloak"]["static_configs"]) == ("30s", "/metrics", [{"targets": ["keycloak:9000"]}])
    assert jobs["alertmanager"]["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert jobs["alloy"]["static_configs"] == [{"targets": ["alloy:12345"]}]
    assert data["rule_files"] == ["rules/*.yml"]
    assert data["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert "remote_write" not in data


def test_the_dashboards_selectors_name_the_scraped_jobs():
    jobs = _jobs(scrape.prometheus_config(CFG))
    assert CFG.app_selector == f'job="{CFG.app_job}"' and CFG.app_job in jobs
    assert CFG.keycloak_selector == f'job="{CFG.keycloak_job}"' and CFG.keycloak_job in jobs


def test_renaming_the_app_job_moves_scrape_rules_and_panels_together(tmp_path: Path):
    path = tmp_path / "site.yml"
    path.write_text("app_job: shop\nkeycloak_job: sso\n")
    cfg = load_config(path)
    assert (cfg.app_selector, cfg.keycloak_selector) == ('job="shop"', 'job="sso"')
    assert {"shop", "sso"} <= set(_jobs(scrape.prometheus_config(cfg)))
    rules = b"".join(artifacts.rules_yml(cfg, stem) for stem in artifacts.BUILDERS).decode()
    assert 'job="fastapi-app"' not in rules and 'job="keycloak"' not in rules
    assert 'http_requests_total{job="shop"' in rules and 'jvm_gc_overhead{job="sso"}' in rules
    assert artifacts.check_rules(cfg) == []


def test_an_explicit_selector_is_kept_and_a_derived_one_follows_its_job():
    explicit = dataclasses.replace(CFG, keycloak_selector='job="kc-idle"')
    assert dataclasses.replace(explicit, keycloak_job="other").keycloak_selector == 'job="kc-idle"'
    assert dataclasses.replace(CFG, app_job="shop").app_selector == 'job="shop"'


def test_a_metrics_token_file_adds_bearer_auth_to_the_app_job_only():
    cfg = dataclasses.replace(CFG, prometheus=dataclasses.replace(CFG.prometheus,
                                                                  app_metrics_token_file="/run/secrets/metrics"))
    jobs = _jobs(scrape.prometheus_config(cfg))
    assert jobs["fastapi-app"]["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics"}
    assert all("authorization" not in job for name, job in jobs.items() if name != "fastapi-app")


def test_remote_write_variant_pushes_to_the_configured_url_with_bounded_queues():
    data = scrape.remote_write_config(CFG)
    (target,) = data["remote_write"]
    assert target["url"] == CFG.prometheus.remote_write_url == "http://mimir:9009/api/v1/push"
    assert target["queue_config"]["max_shards"] == 50 and target["queue_config"]["capacity"] == 10000
    assert target["metadata_config"]["send"] is True
    assert data["global"]["external_labels"] == {"cluster": "observability-bundle", "replica": "${PROMETHEUS_REPLICA}"}
    assert {k: v for k, v in data.items() if k not in ("global", "remote_write", "alerting")} == {
        k: v for k, v in scrape.prometheus_config(CFG).items() if k not in ("global", "alerting")}


def test_remote_write_tenant_header_and_empty_url_turns_it_off():
    tenant = dataclasses.replace(CFG, prometheus=dataclasses.replace(CFG.prometheus, remote_write_tenant="team-a"))
    assert scrape.remote_write_config(tenant)["remote_write"][0]["headers"] == {"X-Scope-OrgID": "team-a"}
    off = dataclasses.replace(CFG, prometheus=dataclasses.replace(CFG.prometheus, remote_write_url=""))
    assert "remote_write" not in scrape.remote_write_config(off)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"scrape_interval": "15 s"}, "prometheus.scrape_interval: '15 s' is not a duration"),
        ({"remote_write_url": "mimir:9009"}, "prometheus.remote_write_url must be an http(s) URL"),
        ({"alloy_job": "fastapi-app"}, "scrape job names must be unique"),
        ({"self_job": "prom.self"}, "scrape job name 'prom.self' must match"),
    ],
)
def test_bad_prometheus_settings_fail_the_build(change: dict, problem: str):
    cfg = dataclasses.replace(CFG, prometheus=dataclasses.replace(CFG.prometheus, **change))
    assert any(problem in p for p in artifacts.check_config(cfg)), artifacts.check_config(cfg)


def test_generated_yaml_is_deterministic_and_headed():
    first, second = artifacts.prometheus_yml(CFG), artifacts.prometheus_yml(Config())
    assert first == second
    assert first.startswith(b"# Generated by scripts/build_dashboards.py")
    assert yaml.safe_load(first) == scrape.prometheus_config(CFG)
