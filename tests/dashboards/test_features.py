"""Feature switches: what a service does not have leaves no panel, rule, alert, test, scrape job, datasource or
compose service behind, and what remains still validates (the build's own checks run on every variant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dashboards import build

TRACES = {
    "websocket": ("ws_connections", "ws_messages", "WebSocket"),
    "audit": ("audit_", "user_actions", "postgres-audit", "Audit"),
    "auth": ("auth_attempts", "Auth attempts", "Auth failures"),
    "rate_limit": ("rate_limit_hits", "Rate-limit"),
    "database": ("db_query_duration",),
    "keycloak": ("keycloak", "Keycloak"),
}
"""What may not appear anywhere once the feature is off (Loki's own rate-limit settings aside)."""


def render(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return {name: data.decode() for name, data in build.render_all(path).items()}


def _hits(files: dict[str, str], traces: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for name, text in files.items():
        if name.startswith("loki/"):
            continue
        found = [t for t in traces if t in text]
        if found:
            out[name] = found
    return out


@pytest.mark.parametrize("feature", sorted(TRACES))
def test_a_switched_off_feature_leaves_nothing_behind(tmp_path, feature):
    files = render(tmp_path, f"features:\n  {feature}: false\n")
    assert _hits(files, TRACES[feature]) == {}
    for other, traces in TRACES.items():  # and the others are all still there
        if other != feature and not (feature == "keycloak" and other == "auth"):
            assert any(t in text for t in traces for text in files.values()), other


def test_a_service_with_nothing_but_http_under_its_own_names(tmp_path):
    features = "".join(f"  {f}: false\n" for f in TRACES)
    files = render(tmp_path, f"app_job: shop\napp_service: shop\nfeatures:\n{features}stack:\n"
                             "  reference_service: false\nprometheus:\n  app_target: shop:8000\n"
                             "alerting:\n  pager_webhook_url: http://pager.internal/a\n"
                             "  ticket_webhook_url: http://tickets.internal/a\n")
    assert _hits(files, (*(t for ts in TRACES.values() for t in ts), "fastapi-app", "alert-webhook")) == {}
    assert sorted(n for n in files if n.startswith("grafana/dashboards/")) == [
        "grafana/dashboards/application-logs.json", "grafana/dashboards/fastapi-metrics.json"]
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert sorted(compose["services"]) == ["alertmanager", "alloy", "grafana", "loki", "prometheus", "shop"]
    datasources = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yml"])["datasources"]
    assert [d["uid"] for d in datasources] == ["prometheus", "loki"]
    fastapi = json.loads(files["grafana/dashboards/fastapi-metrics.json"])
    assert [v["name"] for v in fastapi["templating"]["list"]] == [
        "prometheus_datasource", "loki_datasource", "job", "instance", "endpoint"]
    assert all('job=~"$job"' in t["expr"] for p in fastapi["panels"] for t in p.get("targets", [])
               if t["datasource"]["type"] == "prometheus" and p["title"] != "Scrape targets up")
    assert 'job="shop"' in files["prometheus/rules/app-alerts.yml"]


def test_your_own_service_must_name_its_alert_receivers(tmp_path):
    with pytest.raises(build.ValidationFailed) as failed:
        render(tmp_path, "stack:\n  reference_service: false\n")
    assert any("still point at the reference service's alert-webhook" in p for p in failed.value.problems)
