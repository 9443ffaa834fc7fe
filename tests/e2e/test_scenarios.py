"""Every panel tells the truth over its time range: the named incident histories replayed into a real Prometheus,
every panel read as Grafana reads it and every alert evaluated as Prometheus would, against what each scenario
says they must show (dashboards/scenarios/incidents.py).

Each finding of the dashboards' review is covered twice: the scenario passes on the generated dashboards, and
the same scenario, read through the panel as it was before the fix (an "old form" probe dashboard), fails.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.config import Config
from dashboards.grafana import uids
from dashboards.scenarios import report
from dashboards.scenarios.cli import HEADER
from dashboards.scenarios.incidents import BY_NAME, SCENARIOS, Expect
from dashboards.scenarios.run import Outcome, load_dashboards, replay_all
from tests.support import prometheus as prom
from tests.support.binaries import require, which

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[2]
APP = 'job=~"$job",instance=~"$instance"'


def _panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return copy.deepcopy(next(p for p in dashboard["panels"] if p["title"] == title))


def old_forms(dashboards: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The panels as they were before the review's findings were fixed, in dashboards of their own."""
    fastapi, keycloak = dashboards[uids.FASTAPI], dashboards[uids.KEYCLOAK]
    dropped = _panel(fastapi, "Dropped rows")  # the last minute's increase, reduced to its last point
    dropped["targets"][0] |= {"expr": f"sum(increase(audit_events_dropped_total{{{APP}}}[$__rate_interval]))",
                              "instant": False, "range": True}
    ratio = _panel(fastapi, "Error ratio (5xx)")
    ratio["targets"][0] |= {"expr": f'(sum(rate(http_requests_total{{{APP},status_code=~"5.."}}[$__rate_interval])) '
                                    f"or on() vector(0)) / sum(rate(http_requests_total{{{APP}}}[$__rate_interval]))",
                            "instant": False, "range": True}
    classes = _panel(fastapi, "Responses by status class")  # one query per class, 1xx included
    classes["targets"] = [{**classes["targets"][0], "refId": chr(65 + i), "legendFormat": f"{d}xx",
                           "expr": f'sum(rate(http_requests_total{{{APP},status_code=~"{d}.."}}[$__rate_interval]))'}
                          for i, d in enumerate("12345")]
    failed = _panel(keycloak, "Failed logins by error and realm")
    failed.pop("interval")  # Grafana assumes the datasource's 15 s for a job scraped every 30 s
    audit = dashboards[uids.AUDIT]
    verifications = _panel(audit, "Failed verifications")
    verifications["targets"][0] |= {
        "expr": 'sum by (result) (increase(audit_chain_verifications_total{job="fastapi-app",'
                'result=~"broken|error"}[$__rate_interval]))', "instant": False, "range": True}
    return {"old-fastapi": {**fastapi, "uid": "old-fastapi", "panels": [dropped, ratio, classes]},
            "old-keycloak": {**keycloak, "uid": "old-keycloak", "panels": [failed]},
            "old-audit": {**audit, "uid": "old-audit", "panels": [verifications]}}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    require("Prometheus and promtool", prom.binary() and which("promtool"), "apt-get install prometheus")
    done = replay_all(Config(), ROOT, extra=old_forms(load_dashboards(ROOT)))
    return {o.scenario.name: o for o in done}


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_every_panel_and_alert_shows_what_the_scenario_says(outcomes: dict[str, Outcome], name: str):
    assert report.check(outcomes[name]) == []


def test_every_alert_fires_in_some_scenario_and_in_none_of_the_healthy_times():
    alerts = {rule["alert"] for path in (ROOT / "prometheus" / "rules").glob("*.yml")
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
    assert report.unexercised(alerts) == []
    assert all(not fired for fired in BY_NAME["healthy"].alerts.values())


def test_the_published_table_is_what_the_replay_shows(outcomes: dict[str, Outcome]):
    table = report.markdown([outcomes[s.name] for s in SCENARIOS], HEADER)
    assert (ROOT / "docs" / "scenarios.md").read_text() == table, \
        "docs/scenarios.md is stale: python scripts/check_panels.py --scenarios --write docs/scenarios.md"


# --- the review's findings: each scenario fails through the old panel ------------------------------------------
def _reads(outcome: Outcome, uid: str, title: str, expect: Expect) -> list[str]:
    reading = outcome.panels[(uid, title)]
    return report._expectation(reading, expect, outcome.end, reading.step)


def test_a_dropped_row_40_minutes_ago_is_red_not_a_green_zero(outcomes: dict[str, Outcome]):
    expect = BY_NAME["audit-outage"].panels[(uids.FASTAPI, "Dropped rows")]
    assert _reads(outcomes["audit-outage"], uids.FASTAPI, "Dropped rows", expect) == []
    assert _reads(outcomes["audit-outage"], "old-fastapi", "Dropped rows", expect) != []


def test_a_5xx_burst_20_minutes_ago_colours_the_error_ratio(outcomes: dict[str, Outcome]):
    expect = BY_NAME["5xx-burst"].panels[(uids.FASTAPI, "Error ratio (5xx)")]
    assert _reads(outcomes["5xx-burst"], uids.FASTAPI, "Error ratio (5xx)", expect) == []
    assert _reads(outcomes["5xx-burst"], "old-fastapi", "Error ratio (5xx)", expect) != []


def test_keycloak_rates_have_no_hole_where_one_scrape_failed(outcomes: dict[str, Outcome]):
    title = "Failed logins by error and realm"
    expect = BY_NAME["credential-stuffing"].panels[(uids.KEYCLOAK, title)]
    assert _reads(outcomes["credential-stuffing"], uids.KEYCLOAK, title, expect) == []
    old = _reads(outcomes["credential-stuffing"], "old-keycloak", title, expect)
    assert any(p.startswith("drops to 0 in the last 13 minutes") for p in old), old


def test_no_status_class_line_stays_empty_for_ever(outcomes: dict[str, Outcome]):
    healthy = outcomes["healthy"]
    assert healthy.panels[(uids.FASTAPI, "Responses by status class")].empty_targets == []
    # the old 1xx line never draws (nor 3xx, which this history has none of): lines of nothing, for ever
    assert healthy.panels[("old-fastapi", "Responses by status class")].empty_targets == ["A", "C"]


def test_failed_verifications_count_the_whole_range(outcomes: dict[str, Outcome]):
    expect = BY_NAME["chain-failing"].panels[(uids.AUDIT, "Failed verifications")]
    assert _reads(outcomes["chain-failing"], uids.AUDIT, "Failed verifications", expect) == []
    assert _reads(outcomes["chain-failing"], "old-audit", "Failed verifications", expect) != []
