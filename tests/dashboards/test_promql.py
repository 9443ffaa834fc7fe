"""The PromQL checker: real parser, catalog names and labels, counter and histogram rules."""

from __future__ import annotations

import dataclasses

import pytest

from dashboards.catalogs import app as app_catalog
from dashboards.catalogs import keycloak as keycloak_catalog
from dashboards.config import Config
from dashboards.grafana import artifacts as grafana
from dashboards.grafana import uids
from dashboards.queries import fastapi as fq
from dashboards.queries import keycloak as kq
from dashboards.validate import promql
from dashboards.validate.panels import validate
from fastapi_lookout import metrics

APP = app_catalog.catalog()
KC = keycloak_catalog.catalog()
SEL = '{job=~"$job",instance=~"$instance"}'


def test_every_generated_panel_passes(built, static_context):
    assert [str(p) for p in validate(built, static_context)] == []


def test_queries_are_pure_functions_of_the_config():
    cfg = Config()
    assert fq.request_rate(cfg) == f"sum(rate(http_requests_total{SEL}[$__rate_interval]))"
    assert fq.error_ratio(cfg) == (
        f'(sum(rate(http_requests_total{{job=~"$job",instance=~"$instance",status_code=~"5.."}}[$__rate_interval]))'
        f" or on() vector(0)) / sum(rate(http_requests_total{SEL}[$__rate_interval]))"
    )
    assert fq.latency_quantile(cfg, 0.99) == (
        f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"
    )
    other = dataclasses.replace(cfg, app_selector='job="shop"')
    assert fq.job_values(other) == 'label_values(app_info{job="shop"}, job)'


def test_renaming_a_metric_in_the_catalog_breaks_validation(built, static_context, monkeypatch):
    renamed = tuple(
        dataclasses.replace(s, name="http_requests_renamed") if s.name == "http_requests" else s
        for s in metrics.CATALOG
    )
    monkeypatch.setattr(metrics, "CATALOG", renamed)
    exposed = {name: labels for spec in renamed for name, labels in spec.series().items()}
    monkeypatch.setattr(metrics, "exposed_series", lambda: exposed)
    ctx = dataclasses.replace(static_context, catalogs={**static_context.catalogs, "*": app_catalog.catalog()})
    problems = [str(p) for p in validate(built, ctx)]
    assert any(
        p.startswith("fastapi-metrics / panel 'Request rate' [A]: unknown metric 'http_requests_total'")
        for p in problems
    ), problems


def test_keycloak_panels_are_checked_against_the_keycloak_catalog(built, static_context):
    families = tuple(f for f in keycloak_catalog.FAMILIES if f.name != "jvm_gc_overhead")
    ctx = dataclasses.replace(static_context, catalogs={**static_context.catalogs, uids.KEYCLOAK:
                                                        keycloak_catalog.catalog(families)})
    problems = [str(p) for p in validate(built, ctx)]
    assert problems == ["keycloak-metrics / panel 'GC overhead now' [A]: unknown metric 'jvm_gc_overhead' "
                        "(not in the app or Keycloak catalog)"]


def test_an_app_metric_on_the_keycloak_dashboard_fails():
    assert promql.check("sum(app_info)", KC) == [
        "unknown metric 'app_info' (not in the app or Keycloak catalog)"]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (f"sum by (foo) (rate(http_requests_total{SEL}[$__rate_interval]))",
         "sum by/without label 'foo' does not exist on the series beneath it"),
        ('rate(http_requests_total{path="/x"}[$__rate_interval])',
         "label 'path' does not exist on http_requests_total"),
        ("http_request_duration_seconds", "is a histogram family queried by its bare name"),
        ("sum(http_requests_total)", "counter 'http_requests_total' must be read through rate()"),
        ("http_request_duration_seconds_count", "counter 'http_request_duration_seconds_count' must be read"),
        ("rate(http_requests_total[5m])", "range [5m] must be [$__rate_interval]"),
        ("rate(ws_connections_active[$__rate_interval])", "'ws_connections_active' is a gauge, not a counter"),
        ("sum by (le) (rate(http_requests_total[$__rate_interval]))", "label 'le' does not exist"),
        ("histogram_quantile(0.9, sum(rate(http_request_duration_seconds_bucket[$__rate_interval])))",
         "needs the 'le' label"),
        ("sum(rate(http_requests_total[$__rate_interval])) / on(pod) sum(rate(http_requests_total[$__rate_interval]))",
         "on/ignoring label 'pod' exists on neither side"),
        ("sum(rate(http_requests_total[$__rate_interval]", "PromQL does not parse"),
        ("keycloak_logins_total", "unknown metric 'keycloak_logins_total'"),
    ],
)
def test_bad_queries_fail_with_a_clear_reason(query, problem):
    problems = promql.check(query, APP | KC)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "query",
    [
        "sum by (area) (jvm_memory_used_bytes)",
        'sum(rate(keycloak_user_events_total{error!=""}[$__rate_interval])) or on() vector(0)',
        "rate(agroal_acquire_count_total[$__rate_interval])",
        "agroal_active_count",  # a gauge despite its suffix: read as a value
        'sum(rate(http_server_requests_seconds_bucket{le="0.25"}[$__rate_interval]))',
    ],
)
def test_keycloak_families_follow_their_type_not_their_suffix(query):
    assert promql.check(query, KC) == []


def test_agroal_count_gauges_are_not_counters():
    assert "is a gauge, not a counter" in promql.check("rate(agroal_active_count[$__rate_interval])", KC)[0]


def test_grafana_variables_are_replaced_before_parsing():
    query = 'sum(rate(http_requests_total{job=~"${job:regex}",instance=~"$instance"}[${__rate_interval}]))'
    assert promql.check(query, APP) == []


def test_job_and_instance_are_always_allowed_le_only_on_buckets():
    assert promql.check(f"sum by (job, instance) (rate(ws_messages_sent_total{SEL}[$__rate_interval]))", APP) == []
    assert "label 'le'" in promql.check('rate(ws_messages_sent_total{le="1"}[$__rate_interval])', APP)[0]


def test_keycloak_dashboard_never_filters_on_kubernetes_labels(built):
    text = str(built[uids.KEYCLOAK])
    for label in ("namespace", "pod", "container"):
        assert f"{label}=" not in text


def test_lazy_keycloak_families_default_to_zero():
    cfg = Config()
    for query in (kq.logins(cfg), kq.login_failures(cfg), kq.token_events(cfg), kq.password_validations(cfg),
                  kq.http_5xx_by_uri(cfg)):
        assert query.endswith("or on() vector(0)")
    assert 'error!=""' in kq.login_failures(cfg)


def test_label_values_variables_are_checked():
    assert promql.check_label_values('label_values(app_info{job="x"}, version)', APP) == []
    assert promql.check_label_values("label_values(app_info, pod)", APP) == ["label 'pod' does not exist on app_info"]
    assert "unknown metric" in promql.check_label_values("label_values(nope, job)", APP)[0]


def test_the_build_context_uses_the_real_catalogs(cfg):
    ctx = grafana.context(cfg)
    assert ctx.catalog(uids.KEYCLOAK).series.keys() == KC.series.keys()
    assert ctx.catalog(uids.FASTAPI).series.keys() == {*metrics.exposed_series(), "up"}
