from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.config import Config, ConfigError, load_config


def test_defaults_match_the_architecture():
    cfg = Config()
    assert cfg.datasource_uids() == {
        "prometheus": "prometheus", "loki": "loki", "postgres-audit": "grafana-postgresql-datasource"}
    assert cfg.app_selector == 'job="fastapi-app"'
    assert cfg.keycloak_selector == 'job="keycloak"'
    assert cfg.app_service == "fastapi-app"
    assert cfg.slo.availability == 0.995
    assert cfg.slo.latency_p95_seconds == 0.25


def test_yaml_overrides_nested_values_and_keeps_the_rest(tmp_path: Path):
    path = tmp_path / "c.yml"
    path.write_text("app_service: shop\ndatasources:\n  loki: logs-eu\nslo:\n  availability: 0.999\n  "
                    "latency_p95_seconds: 1\n")
    cfg = load_config(path)
    assert cfg.app_service == "shop"
    assert cfg.datasources.loki == "logs-eu"
    assert cfg.datasources.prometheus == "prometheus"
    assert cfg.slo.availability == 0.999
    assert cfg.slo.latency_p95_seconds == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app_servce: x\n", "unknown config key(s): app_servce"),
        ("slo:\n  availabilty: 0.9\n", "unknown config key(s) in slo: availabilty"),
        ("datasources: loki\n", "datasources: expected a mapping"),
        ("app_service: 3\n", "app_service: expected str, got int"),
    ],
)
def test_bad_yaml_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_a_yaml_override_reaches_every_panel(tmp_path: Path):
    from dashboards.grafana import artifacts as grafana

    path = tmp_path / "c.yml"
    path.write_text("datasources:\n  prometheus: prom-b\n")
    cfg = load_config(path)
    text = str(grafana.dashboards(cfg))
    assert "'uid': 'prom-b'" in text
    assert "'uid': 'prometheus'" not in text
