"""The house layer and the layout: clean panel JSON, datasources through variables, ids that ignore position."""

from __future__ import annotations

import json

import pytest

from dashboards.config import Config, DsType
from dashboards.grafana import house as h
from dashboards.grafana.layout import Layout, Row, cells, render, stable_id
from dashboards.grafana.variables import datasources
from dashboards.observables import Observables
from dashboards.observables import model as o
from dashboards.serialise import dashboard_dict


def _obs(name: str, **kw) -> o.Observable:
    base = dict(name=name, title=name.upper(), description="why", unit="s", datasource=DsType.PROMETHEUS,
                queries=(o.Query("up"),), style=o.stat(), no_alert="test")
    return o.Observable(**{**base, **kw})


def _render(rows, *observables, cfg=None):
    cfg = cfg or Config()
    known = {obs.name: obs for obs in observables}
    layout = Layout("u", "t", "d", tuple(rows), lambda c, kinds: datasources(c, sorted(kinds)))
    return dashboard_dict(render(layout, Observables(known, known), cfg, {"u"}))


def test_layout_places_left_to_right_and_wraps_at_24_columns():
    data = _render([Row("row", cells(("p0", 10, 3), ("p1", 10, 4), ("p2", 10, 5))), Row("next", cells(("q", 24)))],
                   *(_obs(f"p{i}") for i in range(3)), _obs("q"))
    pos = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in data["panels"]]
    assert pos == [(0, 0, 24, 1), (0, 1, 10, 3), (10, 1, 10, 4), (0, 5, 10, 5), (0, 10, 24, 1), (0, 11, 24, 4)]


def test_panel_ids_come_from_the_name_not_the_position():
    """Adding a panel in front changes no other panel's id (only the coordinates below it)."""
    before = _render([Row("row", cells("a", "b"))], _obs("a"), _obs("b"))
    after = _render([Row("row", cells("new", "a", "b"))], _obs("new"), _obs("a"), _obs("b"))
    ids_before = {p["title"]: p["id"] for p in before["panels"]}
    ids_after = {p["title"]: p["id"] for p in after["panels"]}
    assert {k: ids_after[k] for k in ids_before} == ids_before
    assert ids_after["A"] == stable_id("u", "a") and ids_after["NEW"] == stable_id("u", "new")


def test_an_observable_of_a_switched_off_feature_leaves_no_panel_and_no_empty_row():
    cfg = Config()
    off = Config(features=type(cfg.features)(websocket=False))
    ws = _obs("ws", feature="websocket")
    known = {"a": _obs("a"), "ws": ws}
    layout = Layout("u", "t", "d", (Row("main", cells("a")), Row("WebSocket", cells("ws"))),
                    lambda c, kinds: [])
    enabled = {k: v for k, v in known.items() if off.enabled(v.feature)}
    data = dashboard_dict(render(layout, Observables(known, enabled), off, {"u"}))
    assert [p["title"] for p in data["panels"]] == ["main", "A"]


def test_panel_json_references_datasources_through_their_variables_and_has_no_legacy_noise():
    data = _render([Row("r", cells(
        "ts", "lg", "sq"))],
        _obs("ts", queries=(o.Query("up", legend="{{instance}}", exemplars=True),), style=o.timeseries()),
        _obs("lg", datasource=DsType.LOKI, queries=(o.Query('{service="x"}'),), style=o.logs(), unit="none"),
        _obs("sq", datasource=DsType.POSTGRES, queries=(o.Query("SELECT 1", table=True),), style=o.table(),
             unit="none"))
    text = json.dumps(data)
    assert data["schemaVersion"] == h.SCHEMA_VERSION
    for noise in ("maxDataPoints", "intervalFactor", '"graph"', '"span"', '"rows"'):
        assert noise not in text
    panels = [p for p in data["panels"] if p["type"] != "row"]
    assert [p["type"] for p in panels] == ["timeseries", "logs", "table"]
    assert [p["datasource"]["uid"] for p in panels] == ["${prometheus_datasource}", "${loki_datasource}",
                                                         "${postgres_datasource}"]
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["postgres_datasource"] == {
        "current": {"text": "postgres-audit", "value": "postgres-audit"}, "hide": 0,
        "label": "PostgreSQL data source", "name": "postgres_datasource", "options": [],
        "query": "grafana-postgresql-datasource", "refresh": 1, "regex": "", "type": "datasource"}
    assert panels[0]["targets"][0]["exemplar"] is True
    assert panels[1]["targets"][0]["queryType"] == "range"


def test_generated_dashboards_use_only_allowed_panel_types(built):
    kinds = {p["type"] for d in built.values() for p in d["panels"]}
    assert kinds <= {"row", "timeseries", "stat", "table", "bargauge", "piechart", "logs"}


def test_latency_panels_have_exemplars(built):
    latency = [p for p in built["fastapi-metrics"]["panels"] if p["title"].startswith("Latency")]
    assert latency
    assert all(t["exemplar"] for p in latency for t in p["targets"])


def test_job_and_instance_follow_the_dashboard_linter_template_rules(built):
    """Multi-select with All, from the Prometheus datasource variable, labelled Job / Instance; the job's All is
    the config's job (not the linter's .+, which in a shared Prometheus would mix in other services)."""
    for uid, job in (("fastapi-metrics", "fastapi-app"), ("keycloak-metrics", "keycloak")):
        variables = {v["name"]: v for v in built[uid]["templating"]["list"]}
        for name, all_value in (("job", job), ("instance", ".+")):
            var = variables[name]
            assert (var["type"], var["multi"], var["includeAll"], var["allValue"], var["label"]) == (
                "query", True, True, all_value, name.title())
            assert var["datasource"] == {"type": "prometheus", "uid": "${prometheus_datasource}"}
            assert var["refresh"] == 2
        assert variables["prometheus_datasource"]["label"] == "Prometheus data source"


@pytest.mark.parametrize(("selector", "all_value"), [
    ('job="shop"', "shop"), ('job="shop.eu"', "shop\\\\.eu"), ('job=~"shop-.*"', "shop-.*"),
    ('job="a",env="prod"', ".+"),
])
def test_the_job_variables_all_is_what_the_selector_admits(selector, all_value):
    from dashboards.grafana.variables import job_all_value

    assert job_all_value(selector) == all_value
