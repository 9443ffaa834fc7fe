"""The review's findings that need no Prometheus to catch: the build refuses each of them by name."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from dashboards.config import Config
from dashboards.grafana import artifacts as grafana
from dashboards.grafana import provisioning, uids
from dashboards.validate import logql, templates
from dashboards.validate.panels import validate


def problems(built, static_context, uid, change):
    dashboard = copy.deepcopy(built[uid])
    change(dashboard)
    return [str(p) for p in validate({uid: dashboard}, static_context)]


def _panel(dashboard, title):
    return next(p for p in dashboard["panels"] if p["title"] == title)


def test_a_stat_that_shows_the_last_minute_alone_must_say_so(built, static_context):
    def old_dropped_rows(d):
        panel = _panel(d, "Dropped rows")
        panel["targets"][0] |= {"expr": 'sum(increase(audit_events_dropped_total{job=~"$job",instance=~"$instance"}'
                                        "[$__rate_interval]))", "instant": False}

    assert problems(built, static_context, uids.FASTAPI, old_dropped_rows) == [
        "fastapi-metrics / Dropped rows: shows the last point alone: read the time range (an instant query "
        "over $__range) or say so in the title (now, last, since)"]


def test_a_keycloak_panel_without_its_scrape_interval_is_refused(built, static_context):
    ctx = dataclasses.replace(static_context, scrape_intervals={"app": "15s", "keycloak": "30s"},
                              datasource_interval="15s")

    def forget_interval(d):
        _panel(d, "Heap after GC").pop("interval")

    assert [str(p) for p in validate({uids.KEYCLOAK: built[uids.KEYCLOAK]}, ctx)] == []
    found = [str(p) for p in validate({uids.KEYCLOAK: _changed(built[uids.KEYCLOAK], forget_interval)}, ctx)]
    assert found == ["keycloak-metrics / Heap after GC: reads a job scraped every 30s but Grafana assumes "
                     "15s for $__rate_interval: set the panel's min interval"]


def _changed(dashboard, change):
    dashboard = copy.deepcopy(dashboard)
    change(dashboard)
    return dashboard


def test_the_level_variables_all_must_keep_streams_without_a_level(built, static_context):
    def old_level(d):
        next(v for v in d["templating"]["list"] if v["name"] == "level")["allValue"] = ".+"

    assert problems(built, static_context, uids.LOGS, old_level) == [
        "application-logs / $level: All is '.+', which drops the streams without a level label (lines that are not "
        "JSON get only container, service): use '.*'"]


def test_the_request_id_link_must_match_the_label_not_the_line(monkeypatch):
    real = provisioning.datasources

    def regex_on_the_line(cfg):
        data = real(cfg)
        loki = next(d for d in data["datasources"] if d["type"] == "loki")
        loki["jsonData"]["derivedFields"][0] = {"name": "request_id", "matcherRegex": r'"request_id":\s*"([^"]+)"',
                                                "url": "x"}
        return data

    assert grafana.check_provisioning(Config()) == []
    monkeypatch.setattr(provisioning, "datasources", regex_on_the_line)
    assert grafana.check_provisioning(Config()) == [
        "datasource loki: derived field 'request_id' must match the structured-metadata label (matcherType: label): "
        "logs panels rewrite lines with line_format, so a regex on the line finds nothing there"]


@pytest.fixture(scope="module")
def node(node_logql):
    return None


def _logql_problems(query: str) -> list[str]:
    (parsed,) = logql.parse_batch([query])
    return logql.check(parsed, {"user_id", "endpoint", "level", "message", "status_code"})


def test_a_metric_query_over_logs_must_name_its_json_fields(node):
    bare = 'sum by (service) (count_over_time({service=~".+"} | json | user_id=~".*" [1m]))'
    named = 'sum by (service) (count_over_time({service=~".+"} | json user_id | user_id=~".*" [1m]))'
    assert _logql_problems(bare) == ["a metric query parses every field of every line with a bare | json: name the "
                                     "fields it needs (| json a, b)"]
    assert _logql_problems(named) == []
    assert _logql_problems('sum(count_over_time({service="a"} | json user_id | endpoint="/x" [1m]))') == [
        "filter on 'endpoint', which no | json stage extracts"]


def test_a_broken_line_format_template_fails_the_build(node):
    assert _logql_problems('{service="a"} | json | line_format "{{.endpoint}} {{ .status_code"') == [
        "line_format template '{{.endpoint}} {{ .status_code': '{{' is never closed at position 14"]


@pytest.mark.parametrize(("template", "reason"), [
    ("{{.a}} }}", "'}}' without an opening '{{'"),
    ("{{ .a {{ .b }}", "'{{' inside an action"),
    ("{{ .a | upper }}", "is not a single field reference"),
    ("{{ printf \"%s\" .a }}", "is not a single field reference"),
    ("{{ a }}", "is not a single field reference"),
])
def test_the_template_parser_refuses_what_it_does_not_know(template, reason):
    with pytest.raises(templates.TemplateError, match=reason.replace("|", r"\|")):
        templates.fields(template)


def test_the_template_parser_reads_the_subset_we_write():
    assert templates.fields("{{.status_code}} {{ .method }} {{- .endpoint -}} took {{.duration_ms}}ms") == [
        "status_code", "method", "endpoint", "duration_ms"]
