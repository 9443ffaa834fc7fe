"""The generated dashboards load under the schema current Grafana (12, 13) writes, checked with Grafana's own types.

grafanalib stays the generator; the Grafana foundation SDK (test extra, pinned to its `main` build v0.0.21, "best
suited for Grafana >= 12", schemaVersion 42) is the validator: tests/support/grafana_schema.py decodes each
dashboard with the SDK's typed models, reports what does not round-trip (a key the schema lacks) and checks every
value against the models' types, panel options and queries included.

Where the schema is stricter than Grafana on points that do not matter, the exception is listed below with why;
anything else is a failure.
"""

from __future__ import annotations

import copy
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from dashboards.grafana import house
from tests.support.grafana_schema import Dashboard, problems

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana/dashboards").glob("*.json"))

SDK = "0.0.21"
"""grafana-foundation-sdk release the test extra pins (its PyPI version is `v0.0.21`). Never unpinned: the same
project publishes builds for Grafana 10.1..11.6 under epoch versions (`1769699998!10.1.0`), which outrank it."""

TOLERATED = {
    "$.id": "grafanalib writes `id: null`; the schema's id is an optional integer Grafana assigns on save",
    "$.timepicker.nowDelay": "grafanalib writes null for this optional string",
    "$.timepicker.time_options": (
        "grafanalib 0.7.1 writes it; the schema dropped it and Grafana's own migration to schemaVersion 41 deletes it, "
        "noting it has done nothing since Grafana 5 (apps/dashboard/pkg/migration/schemaversion/v41.go)"),
}
"""Findings Grafana does not care about, by exact path, with the reason."""

UNMODELLED_QUERIES = {
    "grafana-postgresql-datasource": (
        "the SDK has no query model for the PostgreSQL plugin (its datasource models: prometheus, loki, tempo, "
        "elasticsearch, ...); tests/dashboards/test_sql_panels.py runs every such query on a real PostgreSQL"),
}
"""Datasource types whose queries the SDK cannot type, with what checks them instead."""


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _unexplained(data: dict[str, Any]) -> list[str]:
    unmodelled = {f"$.panels[{i}]" for i, panel in enumerate(data.get("panels", []))
                  if (panel.get("datasource") or {}).get("type") in UNMODELLED_QUERIES}
    out = []
    for finding in problems(data):
        path = finding.split(":", 1)[0]
        if path in TOLERATED:
            continue
        if path.split(".targets[", 1)[0] in unmodelled and "no model" in finding:
            continue
        out.append(finding)
    return out


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_valid_under_grafanas_schema(path):
    assert _unexplained(_load(path)) == []


def test_every_tolerated_finding_still_occurs():
    """An exception nobody needs any more is removed, not kept 'just in case'."""
    seen = {finding.split(":", 1)[0] for path in DASHBOARDS for finding in problems(_load(path))}
    assert set(TOLERATED) <= seen


def test_schema_version_is_what_current_grafana_writes():
    """42: Grafana's frontend calls it the last v1 schema version (DashboardMigrator.ts, DASHBOARD_SCHEMA_VERSION)
    and the pinned SDK defaults to it. The backend has a v43 step (formatTime -> convertFieldType transformations)
    that is not in its migration table at the versions we read (schemaversion/migrations.go LATEST_VERSION = 42)."""
    assert Version(version("grafana-foundation-sdk")) == Version(SDK)
    assert house.SCHEMA_VERSION == Dashboard().schema_version == 42
    for path in DASHBOARDS:
        assert _load(path)["schemaVersion"] == house.SCHEMA_VERSION


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_already_has_the_shape_the_skipped_migrations_produce(path):
    """Declaring 42 skips Grafana's migrations 40-42 (and 43) on load, so the JSON must already be what they make:
    40 `refresh` a string; 41 no time_options (tolerated above: nothing reads it); 42 a `custom.hideFrom` override
    hiding a field from the viz hides it from the tooltip too; 43 no formatTime transformation."""
    data = _load(path)
    assert isinstance(data["refresh"], str)
    text = json.dumps(data)
    assert '"formatTime"' not in text
    for panel in data["panels"]:
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in override.get("properties", []):
                if prop.get("id") == "custom.hideFrom" and prop["value"].get("viz"):
                    assert prop["value"].get("tooltip") is True, panel["title"]


# --- the validator finds what it must ---------------------------------------------------------------------------------
def _broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(_load(ROOT / "grafana/dashboards/fastapi-metrics.json"))
    panel = next(p for p in data["panels"] if p["type"] == "timeseries")
    target = next(t for t in panel["targets"])
    match change:
        case "unknown dashboard key":
            data["panelz"] = []
        case "refresh is a number":
            data["refresh"] = 30
        case "tooltip sync out of range":
            data["graphTooltip"] = 7
        case "unknown legend mode":
            panel["options"]["legend"]["displayMode"] = "sideways"
        case "unknown panel option":
            panel["options"]["legendz"] = {}
        case "unknown prometheus query key":
            target["exprr"] = target["expr"]
        case "prometheus expr is not a string":
            target["expr"] = ["up"]
    return data


@pytest.mark.parametrize("change", [
    "unknown dashboard key", "refresh is a number", "tooltip sync out of range", "unknown legend mode",
    "unknown panel option", "unknown prometheus query key", "prometheus expr is not a string",
])
def test_the_validator_catches(change):
    assert _unexplained(_broken(change)), change
