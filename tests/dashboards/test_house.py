from __future__ import annotations

import json

import pytest

from dashboards.config import Config
from dashboards.grafana import house as h
from dashboards.serialise import dashboard_dict


def _obs(**kw):
    base = dict(title="T", description="why", unit="s", queries=(h.Query("up"),),
                datasource=h.prometheus(Config()))
    return h.Observable(**{**base, **kw})


@pytest.mark.parametrize(("field", "message"), [("description", "no description"), ("unit", "no unit")])
def test_a_panel_without_description_or_unit_cannot_be_built(field, message):
    with pytest.raises(ValueError, match=message):
        _obs(**{field: "  "})


def test_a_panel_without_query_cannot_be_built():
    with pytest.raises(ValueError, match="no query"):
        _obs(queries=())


def test_layout_places_left_to_right_and_wraps_at_24_columns():
    panels = [h.stat(_obs(title=f"p{i}"), width=10, height=3 + i) for i in range(3)]
    placed = h.layout([h.Section("row", panels), h.Section("next", [h.stat(_obs(), width=24)])])
    pos = [(p.gridPos.x, p.gridPos.y, p.gridPos.w, p.gridPos.h) for p in placed]
    assert pos == [(0, 0, 24, 1), (0, 1, 10, 3), (10, 1, 10, 4), (0, 5, 10, 5), (0, 10, 24, 1), (0, 11, 24, 4)]
    assert [p.id for p in placed] == [1, 2, 3, 4, 5, 6]


def test_panel_json_has_datasource_refs_and_no_legacy_noise():
    cfg = Config()
    dash = h.dashboard("u", "t", "d", [h.Section("r", [
        h.timeseries(_obs(queries=(h.Query("up", legend="{{instance}}", exemplars=True),))),
        h.logs(h.Observable("L", "lines", "none", (h.Query('{service="x"}'),), h.loki(cfg))),
        h.table(h.Observable("S", "result set", "none", (h.Query("SELECT 1", table=True),), h.postgres(cfg))),
    ])])
    data = dashboard_dict(dash)
    text = json.dumps(data)
    assert data["schemaVersion"] == 39
    for noise in ("maxDataPoints", "intervalFactor", '"graph"', '"span"', '"rows"'):
        assert noise not in text
    panels = [p for p in data["panels"] if p["type"] != "row"]
    assert [p["type"] for p in panels] == ["timeseries", "logs", "table"]
    for panel in panels:
        assert set(panel["datasource"]) == {"type", "uid"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0] == {"color": "green", "value": None}
    assert panels[0]["targets"][0]["exemplar"] is True
    assert panels[1]["targets"][0]["queryType"] == "range"
    assert panels[2]["targets"][0] == {
        "datasource": {"type": "grafana-postgresql-datasource", "uid": "postgres-audit"}, "editorMode": "code",
        "format": "table", "rawQuery": True, "rawSql": "SELECT 1", "refId": "A"}


def test_generated_dashboards_use_only_allowed_panel_types(built):
    kinds = {p["type"] for d in built.values() for p in d["panels"]}
    assert kinds <= {"row", "timeseries", "stat", "table", "bargauge", "piechart", "logs"}


def test_latency_panels_have_exemplars(built):
    latency = [p for p in built["fastapi-metrics"]["panels"] if p["title"].startswith("Latency")]
    assert latency
    assert all(t["exemplar"] for p in latency for t in p["targets"])
